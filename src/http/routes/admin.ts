/**
 * Admin endpoints (the admin token only): sending domains with their DNS check status (the last
 * `relay domain verify`), and credentials. Keys and password hashes are never returned.
 */
import { isoTime } from '../../envelope/time.js';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';

export function registerAdminRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/domains',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Sending domains and the status of their DNS records (admin token)',
        response: {
          200: {
            type: 'object',
            properties: {
              domains: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    selector: { type: 'string' },
                    algorithm: { type: 'string' },
                    verified: { type: 'boolean' },
                    verified_at: { type: ['string', 'null'] },
                    created_at: { type: 'string' },
                    checks: {
                      type: ['object', 'null'],
                      description:
                        'Per record (verification, dkim, spf, dmarc): status found|missing|mismatched|error and a message; null before the first verify',
                      additionalProperties: true,
                    },
                  },
                },
              },
            },
          },
          '4xx': { $ref: 'ApiError#' },
        },
      },
    },
    async () => ({
      domains: (await ctx.storage.domains.list()).map((d) => ({
        name: d.name,
        selector: d.selector,
        algorithm: d.algorithm,
        verified: d.verified,
        verified_at: isoTime(d.verifiedAt),
        created_at: isoTime(d.createdAt),
        checks: d.checks,
      })),
    }),
  );

  app.get(
    '/v1/credentials',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Credentials and the domains each may send for (admin token)',
        response: {
          200: {
            type: 'object',
            properties: {
              credentials: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    domains: { type: 'array', items: { type: 'string' } },
                    created_at: { type: 'string' },
                    revoked_at: { type: ['string', 'null'] },
                  },
                },
              },
            },
          },
          '4xx': { $ref: 'ApiError#' },
        },
      },
    },
    async () => ({
      credentials: (await ctx.storage.credentials.list()).map((c) => ({
        name: c.name,
        domains: c.domains,
        created_at: isoTime(c.createdAt),
        revoked_at: isoTime(c.revokedAt),
      })),
    }),
  );
}
