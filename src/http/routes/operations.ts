/**
 * For operators and their tools, without an API key: `/healthz` (the process answers),
 * `/readyz` (the database takes writes and every listener is up), Prometheus `/metrics` (behind
 * http.metrics_token when set: it names recipient domains), and `/openapi.json`. The http
 * listener binds to 127.0.0.1 by default for this reason.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../context.js';

export function registerOperationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const hidden = { hide: true };
  const config = { role: 'public' } as const;
  app.get('/healthz', { config, schema: { summary: 'Liveness' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config, schema: { summary: 'Readiness: database writable, listeners up' } }, async (_request, reply) => {
    const problems: string[] = [];
    try {
      await ctx.storage.checkWritable();
    } catch (err) {
      problems.push(`database not writable: ${(err as Error).message}`);
    }
    problems.push(...ctx.listenersDown().map((name) => `listener ${name} is not listening`));
    return reply.code(problems.length ? 503 : 200).send({ status: problems.length ? 'unavailable' : 'ready', problems });
  });

  app.get(
    '/metrics',
    { config, schema: { summary: 'Prometheus metrics (Authorization: Bearer http.metrics_token when that is set)' } },
    async (request, reply) => {
      const token = ctx.config.http.metrics_token;
      if (token && !bearerIs(request.headers.authorization, token)) {
        throw new ApiError(401, 'metrics need "Authorization: Bearer TOKEN" with http.metrics_token', 'authorization');
      }
      reply.type(ctx.metrics.registry.contentType);
      return ctx.metrics.registry.metrics();
    },
  );

  app.get('/openapi.json', { config, schema: hidden }, async () => app.swagger());
}

const digest = (text: string) => createHash('sha256').update(text).digest();

function bearerIs(header: string | undefined, token: string): boolean {
  const given = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
  return given !== undefined && timingSafeEqual(digest(given), digest(token));
}
