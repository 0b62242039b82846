/** `GET /v1/audit` (admin token): the audit log of management actions, oldest first, paged by `seq`. */
import type { FastifyInstance } from 'fastify';
import { auditView } from '../../audit/trail.js';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../context.js';

export function registerAuditRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { since?: string; actor?: string; after?: number; limit: number } }>(
    '/v1/audit',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Management actions: who, what, target and change (admin token)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            since: { type: 'string', description: 'ISO 8601 time, inclusive' },
            actor: { type: 'string', description: 'Only actions by this actor (cli:USER, admin-token, credential:NAME)' },
            after: { type: 'integer', minimum: 0, description: 'Cursor: only rows with a greater seq (pass next_after back)' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              entries: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    seq: { type: 'integer' },
                    at: { type: 'string' },
                    actor: { type: 'string' },
                    action: { type: 'string' },
                    target: { type: 'string' },
                    change: { type: 'object', additionalProperties: true },
                    hash: { type: 'string' },
                  },
                },
              },
              next_after: { type: ['integer', 'null'] },
            },
          },
          '4xx': { $ref: 'ApiError#' },
        },
      },
    },
    async (request) => {
      const { since, actor, after, limit } = request.query;
      const sinceMs = since === undefined ? undefined : Date.parse(since);
      if (sinceMs !== undefined && Number.isNaN(sinceMs)) throw new ApiError(422, 'since is not an ISO 8601 time', 'since');
      const entries = await ctx.storage.audit.list({ afterSeq: after, since: sinceMs, actor, limit });
      return { entries: entries.map(auditView), next_after: entries.length === limit ? entries.at(-1)!.seq : null };
    },
  );
}
