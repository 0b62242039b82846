/**
 * The HTTP listener (config.http): the JSON API under /v1, its OpenAPI document, health,
 * metrics and the dashboard, on fastify. Each route declares the role it needs (auth.ts), which
 * the OpenAPI document shows per operation; request validation failures, refusals of the
 * pipeline and of management actions come back as ApiError JSON naming the field.
 */
import type { AddressInfo } from 'node:net';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { bindError } from '../bind-error.js';
import { ManagementError } from '../management/error.js';
import { displayUrl } from '../webhooks/manage.js';
import { actorOf, authenticate, describeAccess, type RouteAccess } from './auth.js';
import { ApiError, RETRY_AFTER_SECONDS } from './errors.js';
import { registerCredentialRoutes } from './routes/credentials.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerDomainRoutes } from './routes/domains.js';
import { registerEventRoutes } from './routes/events.js';
import { registerMeRoute } from './routes/me.js';
import { registerExportRoutes } from './routes/export.js';
import { registerMessageRoutes } from './routes/messages.js';
import { registerOperationRoutes } from './routes/operations.js';
import { registerStatsRoutes } from './routes/stats.js';
import { registerShapingRoutes } from './routes/shaping.js';
import { registerSuppressionRoutes } from './routes/suppressions.js';
import { registerTemplateRoutes } from './routes/templates.js';
import { registerWebhookRoutes } from './routes/webhooks.js';
import { registerUnsubscribeRoutes } from './routes/unsubscribe.js';
import type { ApiContext } from './context.js';

/** A registered route and the access it declares. */
export interface RouteInfo extends RouteAccess {
  method: string;
  url: string;
}

export class HttpServer {
  private readonly app: FastifyInstance;
  private readonly ready: Promise<void>;
  private readonly routeList: RouteInfo[] = [];

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
            required_role: { type: 'string', description: 'On a 403 for want of a role: the role the operation needs' },
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
              description:
                'An operator token (relay operator add NAME --role ROLE), the admin token (http.admin_token), or an app API key (relay credential add NAME --api-key)',
            },
          },
        },
        security: [{ bearer: [] }],
      },
      // Each operation names the role it needs: x-relay-role, and a line in its description.
      transform: ({ schema, url, route }) => {
        const access: RouteAccess = route.config ?? {};
        const description = [schema?.description, describeAccess(access)].filter(Boolean).join('\n\n');
        return {
          url,
          schema: {
            ...schema,
            description,
            'x-relay-role': access.role ?? null,
            ...(access.apps && { 'x-relay-app-keys': true }),
            ...(access.role === 'public' && { security: [] }),
          },
        };
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    });
    app.decorateRequest('principal', null);
    app.addHook('onRoute', (route) => {
      const { role, apps } = (route.config ?? {}) as RouteAccess;
      for (const method of [route.method].flat()) this.routeList.push({ method, url: route.url, role, apps });
    });
    app.addHook('onRequest', async (request) => {
      if (request.is404) return;
      const { role, apps } = request.routeOptions.config;
      if (role !== 'public') request.principal = await authenticate(request, { role, apps }, ctx.config, ctx.storage, ctx.logger);
    });
    app.addHook('onSend', async (request, reply, payload) => {
      const action = request.routeOptions.config?.audit;
      if (action && request.principal && reply.statusCode < 400) await ctx.audit.record(auditEntry(action, request));
      reply.header('x-content-type-options', 'nosniff');
      // API answers carry tokens' data: no cache, shared or private, may keep them.
      if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) reply.header('cache-control', 'no-store');
      return payload;
    });
    app.setErrorHandler((err: FastifyError | ApiError | ManagementError, _request, reply) => {
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
    registerExportRoutes(app, ctx);
    registerSuppressionRoutes(app, ctx);
    registerStatsRoutes(app, ctx);
    registerDomainRoutes(app, ctx);
    registerCredentialRoutes(app, ctx);
    registerTemplateRoutes(app, ctx);
    registerWebhookRoutes(app, ctx);
    registerMeRoute(app);
    registerAuditRoutes(app, ctx);
    registerOperationRoutes(app, ctx);
    registerShapingRoutes(app, ctx);
    registerDashboardRoutes(app);
    registerUnsubscribeRoutes(app, ctx);
  }

  /** Every registered route and the access it declares. */
  async routes(): Promise<RouteInfo[]> {
    await this.ready;
    return [...this.routeList];
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

const MANAGEMENT_STATUS = { invalid: 422, unknown: 404, exists: 409 } as const;

/** Validation errors name the member (`to`, `attachments.0.content`); anything unexpected is a 503, never a bare 500. */
function toApiError(err: FastifyError | ApiError | ManagementError): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ManagementError) return new ApiError(MANAGEMENT_STATUS[err.because], err.message, err.field);
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

/**
 * What the audit trail records of a management call: its target (the path's name or id, else the
 * body's) and its body, long texts (template parts) by length and a URL's password masked;
 * AuditTrail drops secret-like keys.
 */
function auditEntry(action: string, request: FastifyRequest) {
  const params = (request.params ?? {}) as Record<string, string>;
  const raw = (request.body && typeof request.body === 'object' ? request.body : {}) as Record<string, unknown>;
  const body: Record<string, unknown> = { ...raw, ...(typeof raw.url === 'string' && { url: displayUrl(raw.url) }) };
  const target = params.domain ?? params.name ?? params.id ?? params.address ?? body.domain ?? body.name ?? body.url ?? body.address ?? '';
  const change = Object.fromEntries(
    Object.entries(body).map(([key, value]) => [key, typeof value === 'string' && value.length > 200 ? { length: value.length } : value]),
  );
  return { actor: actorOf(request.principal!), action, target: String(target), change };
}
