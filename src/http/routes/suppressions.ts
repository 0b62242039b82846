/**
 * `GET|POST|DELETE /v1/suppressions`. An app key sees and changes only its own credential's
 * entries (its hard bounces and what it added); the admin token sees all, adds global entries
 * (or, with `credential`, one credential's) and removes any. A global entry applies to every
 * credential.
 */
import type { FastifyInstance } from 'fastify';
import { isoTime } from '../../envelope/time.js';
import type { Suppression } from '../../queue/storage.js';
import { checkRecipientAddress } from '../../submission/recipient-address.js';
import { actorOf, scopeOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../context.js';

const suppressionSchema = {
  type: 'object',
  properties: {
    address: { type: 'string' },
    reason: { type: 'string' },
    credential: { type: ['string', 'null'], description: 'The credential it applies to; null for every credential' },
    created_at: { type: 'string' },
  },
};

const toJson = (s: Suppression) => ({ address: s.address, reason: s.reason, credential: s.credential, created_at: isoTime(s.createdAt) });

export function registerSuppressionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { suppressions } = ctx.storage;

  app.get(
    '/v1/suppressions',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Suppressed addresses',
        response: { 200: { type: 'object', properties: { suppressions: { type: 'array', items: suppressionSchema } } } },
      },
    },
    async (request) => {
      const credential = scopeOf(request.principal);
      return { suppressions: (await suppressions.list(credential === undefined ? {} : { credential })).map(toJson) };
    },
  );

  app.post<{ Body: { address: string; reason?: string; credential?: string } }>(
    '/v1/suppressions',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Stop sending to an address',
        body: {
          type: 'object',
          required: ['address'],
          additionalProperties: false,
          properties: {
            address: { type: 'string' },
            reason: { type: 'string', default: 'added through the API' },
            credential: { type: 'string', description: 'Admin only: the credential it applies to (default: every credential)' },
          },
        },
        response: { 201: suppressionSchema, '4xx': { $ref: 'ApiError#' } },
      },
    },
    async (request, reply) => {
      const { address, reason } = request.body;
      const scope = scopeOf(request.principal);
      if (scope !== undefined && request.body.credential !== undefined && request.body.credential !== scope) {
        throw new ApiError(403, 'an app key adds suppressions for its own credential only', 'credential');
      }
      const credential = scope ?? request.body.credential ?? null;
      const bad = checkRecipientAddress(address);
      if (bad) throw new ApiError(422, bad.message.replace(/^\S+ /, ''), 'address');
      if (!(await suppressions.add({ address, reason: reason!, credential }))) {
        throw new ApiError(409, `${address} is already on the suppression list`, 'address');
      }
      await ctx.audit.record({
        actor: actorOf(request.principal),
        action: 'suppression.add',
        target: address,
        change: { credential, reason },
      });
      const added = (await suppressions.list(credential === null ? {} : { credential })).find(
        (s) => s.address === address.trim().toLowerCase() && s.credential === credential,
      )!;
      return reply.code(201).send(toJson(added));
    },
  );

  app.delete<{ Params: { address: string }; Querystring: { credential?: string } }>(
    '/v1/suppressions/:address',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Allow sending to an address again',
        params: { type: 'object', properties: { address: { type: 'string' } } },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            credential: { type: 'string', description: 'Admin only: remove the entry of this credential instead of the global one' },
          },
        },
        response: { 204: { type: 'null' }, '4xx': { $ref: 'ApiError#' } },
      },
    },
    async (request, reply) => {
      const scope = scopeOf(request.principal);
      if (scope !== undefined && request.query.credential !== undefined && request.query.credential !== scope) {
        throw new ApiError(403, "an app key cannot remove another credential's suppressions", 'credential');
      }
      const credential = scope ?? request.query.credential ?? null;
      if (!(await suppressions.remove(request.params.address, credential))) {
        throw new ApiError(404, `${request.params.address} is not on the suppression list`, 'address');
      }
      await ctx.audit.record({
        actor: actorOf(request.principal),
        action: 'suppression.remove',
        target: request.params.address,
        change: { credential },
      });
      return reply.code(204).send();
    },
  );
}
