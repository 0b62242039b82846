/**
 * For operators and their tools, without an API key: `/healthz` (the process answers),
 * `/readyz` (the database takes writes and every listener is up), Prometheus `/metrics`, and
 * `/openapi.json`. The http listener binds to 127.0.0.1 by default for this reason.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../server.js';

export function registerOperationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const hidden = { hide: true };
  app.get('/healthz', { schema: { summary: 'Liveness' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { summary: 'Readiness: database writable, listeners up' } }, async (_request, reply) => {
    const problems: string[] = [];
    try {
      await ctx.storage.checkWritable();
    } catch (err) {
      problems.push(`database not writable: ${(err as Error).message}`);
    }
    problems.push(...ctx.listenersDown().map((name) => `listener ${name} is not listening`));
    return reply.code(problems.length ? 503 : 200).send({ status: problems.length ? 'unavailable' : 'ready', problems });
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics' } }, async (_request, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.get('/openapi.json', { schema: hidden }, async () => app.swagger());
}
