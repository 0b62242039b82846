/** `GET /v1/shaping` (role viewer): the traffic shaping rules and this node's budgets, as `relay shaping status` shows them. */
import type { FastifyInstance } from 'fastify';
import { shapingJson } from '../../shaping/status.js';
import type { ApiContext } from '../context.js';

const limits = {
  type: 'object',
  properties: {
    max_connections: { type: ['integer', 'null'] },
    messages_per_second: { type: ['number', 'null'] },
    messages_per_minute: { type: ['number', 'null'] },
    messages_per_hour: { type: ['number', 'null'] },
  },
};

const change = {
  type: 'object',
  properties: {
    destination: { type: 'string' },
    reason: { type: 'string', enum: ['slowdown', 'restore'] },
    at: { type: 'string' },
    from_level: { type: 'number' },
    to_level: { type: 'number' },
    suspended_until: { type: ['string', 'null'] },
    reply: { type: ['string', 'null'] },
  },
};

export function registerShapingRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/shaping',
    {
      config: { role: 'viewer' },
      schema: {
        summary: "Traffic shaping destinations: configured limits and this node's current budget",
        response: {
          200: {
            type: 'object',
            properties: {
              sources: { type: 'array', items: { type: 'string' } },
              adaptive: {
                type: 'object',
                properties: {
                  cut: { type: 'number' },
                  floor: { type: 'number' },
                  suspend_ms: { type: 'integer' },
                  restore_after: { type: 'integer' },
                  restore_step: { type: 'number' },
                },
              },
              destinations: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    domains: { type: 'array', items: { type: 'string' } },
                    mx_suffixes: { type: 'array', items: { type: 'string' } },
                    tls: { type: ['string', 'null'] },
                    messages_per_connection: { type: ['integer', 'null'] },
                    configured: limits,
                    current: {
                      type: 'object',
                      description: 'The limits at the current level (1 = as configured), the suspension and the deliveries in flight',
                      properties: {
                        ...limits.properties,
                        level: { type: 'number' },
                        suspended_until: { type: ['string', 'null'] },
                        in_flight: { type: 'integer' },
                        waiting: { type: 'integer' },
                        successes_since_change: { type: 'integer' },
                        slowdowns: { type: 'integer' },
                        last_change: { anyOf: [change, { type: 'null' }] },
                      },
                    },
                  },
                },
              },
              changes: { type: 'array', description: 'The latest budget changes, oldest first', items: change },
            },
          },
          '4xx': { $ref: 'ApiError#' },
        },
      },
    },
    async () => shapingJson(ctx.shaper.current, ctx.shaper),
  );
}
