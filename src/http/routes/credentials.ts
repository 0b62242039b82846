/**
 * Credentials: list them with their limits and usage (viewer); add one (its password, and an API
 * key if asked, returned once), issue another API key, change limits, revoke (sender-admin).
 * Password hashes and keys are never returned.
 */
import type { FastifyInstance } from 'fastify';
import { isoTime } from '../../envelope/time.js';
import type { CredentialLimits } from '../../queue/storage.js';
import { addCredential, issueApiKey, limitsView, revokeCredential, updateCredentialLimits } from '../../submission/credentials.js';
import { parseRate } from '../../submission/rate.js';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../context.js';

const errors = { '4xx': { $ref: 'ApiError#' } };
const nameParams = { type: 'object', properties: { name: { type: 'string' } } };
const limitsSchema = {
  type: 'object',
  properties: { rate: { type: ['string', 'null'] }, daily: { type: ['integer', 'null'] }, monthly: { type: ['integer', 'null'] } },
};
const limitProperties = {
  rate: { type: ['string', 'null'], description: 'Recipients per second, minute or hour, e.g. 20/s; null: no limit' },
  daily: { type: ['integer', 'null'], minimum: 1, description: 'Recipients per UTC day; null: no limit' },
  monthly: { type: ['integer', 'null'], minimum: 1, description: 'Recipients per UTC month; null: no limit' },
};

interface LimitsBody {
  rate?: string | null;
  daily?: number | null;
  monthly?: number | null;
}

/** Only the limits the request gives; null clears one. */
function limitsOf(body: LimitsBody): Partial<CredentialLimits> {
  const limits: Partial<CredentialLimits> = {};
  if (body.rate !== undefined) {
    try {
      limits.rate = body.rate === null ? null : parseRate(body.rate);
    } catch (err) {
      throw new ApiError(422, (err as Error).message.replace(', or none', ', or null'), 'rate');
    }
  }
  if (body.daily !== undefined) limits.daily = body.daily;
  if (body.monthly !== undefined) limits.monthly = body.monthly;
  return limits;
}

export function registerCredentialRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { storage } = ctx;

  app.get(
    '/v1/credentials',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Credentials, the domains each may send for, their limits and usage',
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
                    limits: limitsSchema,
                    usage: { type: 'object', properties: { today: { type: 'integer' }, this_month: { type: 'integer' } } },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async () => ({
      credentials: await Promise.all(
        (await storage.credentials.list()).map(async (c) => ({
          name: c.name,
          domains: c.domains,
          created_at: isoTime(c.createdAt),
          revoked_at: isoTime(c.revokedAt),
          ...(await limitsView(storage, c.name)),
        })),
      ),
    }),
  );

  app.post<{ Body: { name: string; domains: string[]; api_key?: boolean } & LimitsBody }>(
    '/v1/credentials',
    {
      config: { role: 'sender-admin', audit: 'credential.add' },
      schema: {
        summary: 'Create a credential (username = name); returns its password, and an API key if asked, once',
        body: {
          type: 'object',
          required: ['name', 'domains'],
          additionalProperties: false,
          properties: {
            name: { type: 'string' },
            domains: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Sender domains it may use' },
            api_key: { type: 'boolean', default: false, description: 'Also issue an HTTP API key' },
            ...limitProperties,
          },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              username: { type: 'string' },
              password: { type: 'string' },
              api_key: { type: 'string' },
              domains: { type: 'array', items: { type: 'string' } },
              limits: limitsSchema,
            },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const { name, domains, api_key: apiKey } = request.body;
      const added = await addCredential(storage, { name, domains, limits: limitsOf(request.body), apiKey });
      return reply.code(201).send({
        name: added.name,
        username: added.name,
        password: added.password,
        ...(added.apiKey && { api_key: added.apiKey }),
        domains: added.domains,
        limits: (await limitsView(storage, added.name)).limits,
      });
    },
  );

  app.post<{ Params: { name: string } }>(
    '/v1/credentials/:name/api-keys',
    {
      config: { role: 'sender-admin', audit: 'credential.api-key' },
      schema: {
        summary: 'Issue the credential another API key, returned once',
        params: nameParams,
        response: { 201: { type: 'object', properties: { name: { type: 'string' }, api_key: { type: 'string' } } }, ...errors },
      },
    },
    async (request, reply) => reply.code(201).send({ name: request.params.name, api_key: await issueApiKey(storage, request.params.name) }),
  );

  app.patch<{ Params: { name: string }; Body: LimitsBody }>(
    '/v1/credentials/:name',
    {
      config: { role: 'sender-admin', audit: 'credential.update' },
      schema: {
        summary: "Change a credential's rate limit and quotas (counted in recipients)",
        params: nameParams,
        body: { type: 'object', additionalProperties: false, properties: limitProperties },
        response: { 200: { type: 'object', properties: { name: { type: 'string' }, limits: limitsSchema } }, ...errors },
      },
    },
    async (request) => ({
      name: request.params.name,
      limits: await updateCredentialLimits(storage, request.params.name, limitsOf(request.body)),
    }),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/credentials/:name',
    {
      config: { role: 'sender-admin', audit: 'credential.revoke' },
      schema: {
        summary: 'Revoke a credential: its logins and API keys fail from now on (the name stays taken)',
        params: nameParams,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      await revokeCredential(storage, request.params.name);
      return reply.code(204).send();
    },
  );
}
