/**
 * The HTTP listener (config.http): the JSON API under /v1, its OpenAPI document, health,
 * metrics and the dashboard, on fastify. Each route declares the access it needs (auth.ts);
 * request validation failures and pipeline refusals come back as ApiError JSON naming the field.
 */
import type { AddressInfo } from 'node:net';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { bindError } from '../bind-error.js';
import { authenticate } from './auth.js';
import { ApiError, RETRY_AFTER_SECONDS } from './errors.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerEventRoutes } from './routes/events.js';
import { registerMessageRoutes } from './routes/messages.js';
import { registerOperationRoutes } from './routes/operations.js';
import { registerStatsRoutes } from './routes/stats.js';
import { registerSuppressionRoutes } from './routes/suppressions.js';
import { registerUnsubscribeRoutes } from './routes/unsubscribe.js';
import type { ApiContext } from './context.js';

export class HttpServer {
  private readonly app: FastifyInstance;
  private readonly ready: Promise<void>;

  constructor(private readonly ctx: ApiContext) {
    this.app = Fastify({
      bodyLimit: Math.ceil(ctx.config.limits.max_message_bytes * 1.4) + 65_536, // base64 plus JSON around it
      // Errors, not fixes: an unknown member is a mistake worth naming.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
      trustProxy: false,
    });
    this.ready = this.setup();
  }

  private async setup(): Promise<void> {
    const { app, ctx } = this;
    app.addSchema({
      $id: 'ApiError',
      type: 'object',
      properties: {
        error: {
          type: 'object',
          properties: {
            status: { type: 'integer' },
            field: { type: ['string', 'null'], description: 'The request member the error is about' },
            message: { type: 'string' },
            smtp_reply: { type: 'string', description: 'The SMTP reply the same refusal gets on the SMTP listeners' },
          },
        },
      },
    });
    await app.register(swagger, {
      openapi: {
        info: { title: 'Relay HTTP API', version: '1', description: 'Send mail through Relay and read what became of it.' },
        components: {
          securitySchemes: {
            bearer: {
              type: 'http',
              scheme: 'bearer',
              description: 'An app API key (relay credential add NAME --api-key) or the admin token (http.admin_token)',
            },
          },
        },
        security: [{ bearer: [] }],
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    });
    app.decorateRequest('principal', null as never);
    app.addHook('onRequest', async (request) => {
      const access = request.routeOptions.config.access;
      if (access) request.principal = await authenticate(request, access, ctx.config, ctx.storage);
    });
    app.addHook('onSend', async (_request, reply, payload) => {
      reply.header('x-content-type-options', 'nosniff');
      // API answers carry tokens' data: no cache, shared or private, may keep them.
      if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) reply.header('cache-control', 'no-store');
      return payload;
    });
    app.setErrorHandler((err: FastifyError | ApiError, _request, reply) => {
      const apiError = toApiError(err);
      if (apiError.status >= 500) ctx.logger.error({ err }, 'HTTP API error');
      if (apiError.status === 429 || apiError.status === 503)
        reply.header('retry-after', String(apiError.retryAfter ?? RETRY_AFTER_SECONDS));
      if (apiError.status === 401) reply.header('www-authenticate', 'Bearer');
      return reply.code(apiError.status).send(apiError.toJSON());
    });
    app.setNotFoundHandler((request, reply) =>
      reply.code(404).send(new ApiError(404, `no route ${request.method} ${request.url.split('?')[0]}`).toJSON()),
    );
    registerMessageRoutes(app, ctx);
    registerEventRoutes(app, ctx);
    registerSuppressionRoutes(app, ctx);
    registerStatsRoutes(app, ctx);
    registerAdminRoutes(app, ctx);
    registerOperationRoutes(app, ctx);
    registerDashboardRoutes(app);
    registerUnsubscribeRoutes(app, ctx);
  }

  async listen(): Promise<number> {
    await this.ready;
    const { host, port } = this.ctx.config.http;
    try {
      await this.app.listen({ host, port });
    } catch (err) {
      throw bindError(err as NodeJS.ErrnoException, { name: 'http', host, port });
    }
    return (this.app.server.address() as AddressInfo).port;
  }

  /** Also when listen() was never called or failed: fastify's close() waits forever on a setup still in progress. */
  async close(): Promise<void> {
    await this.ready.catch(() => undefined);
    await this.app.close();
  }
}

/** Validation errors name the member (`to`, `attachments.0.content`); anything unexpected is a 503, never a bare 500. */
function toApiError(err: FastifyError | ApiError): ApiError {
  if (err instanceof ApiError) return err;
  if (err.validation?.length) {
    const first = err.validation[0]!;
    const params = first.params as { missingProperty?: string; additionalProperty?: string };
    const path = [
      err.validationContext === 'body' ? '' : err.validationContext,
      ...first.instancePath.split('/'),
      params.missingProperty ?? params.additionalProperty,
    ]
      .filter((p) => p !== undefined && p !== '')
      .join('.');
    const what = params.additionalProperty ? 'is not a known member' : (first.message ?? 'is invalid');
    return new ApiError(422, `${path || err.validationContext} ${what}`, path || undefined);
  }
  if (err.statusCode && err.statusCode < 500) return new ApiError(err.statusCode, err.message);
  return new ApiError(503, 'temporary internal error: try again later');
}
