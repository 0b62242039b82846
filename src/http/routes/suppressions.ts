/**
 * `GET|POST|DELETE /v1/suppressions`. An app key sees and changes only its own credential's
 * entries (its hard bounces and what it added); an operator sees all, and with sender-admin adds
 * global entries (or, with `credential`, one credential's) and removes any. A global entry
 * applies to every credential.
 */
import type { FastifyInstance } from 'fastify';
import { addSuppression, removeSuppression } from '../../bounces/suppressions.js';
import { isoTime } from '../../envelope/time.js';
import type { Suppression } from '../../queue/storage.js';
import { scopeOf } from '../auth.js';
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
  const { storage } = ctx;

  app.get(
    '/v1/suppressions',
    {
      config: { role: 'viewer', apps: true },
      schema: {
        summary: 'Suppressed addresses',
        response: { 200: { type: 'object', properties: { suppressions: { type: 'array', items: suppressionSchema } } } },
      },
    },
    async (request) => {
      const credential = scopeOf(request.principal);
      return { suppressions: (await storage.suppressions.list(credential === undefined ? {} : { credential })).map(toJson) };
    },
  );

  app.post<{ Body: { address: string; reason?: string; credential?: string } }>(
    '/v1/suppressions',
    {
      config: { role: 'sender-admin', apps: true, audit: 'suppression.add' },
      schema: {
        summary: 'Stop sending to an address',
        body: {
          type: 'object',
          required: ['address'],
          additionalProperties: false,
          properties: {
            address: { type: 'string' },
            reason: { type: 'string', default: 'added through the API' },
            credential: { type: 'string', description: 'Operators only: the credential it applies to (default: every credential)' },
          },
        },
        response: { 201: suppressionSchema, '4xx': { $ref: 'ApiError#' } },
      },
    },
    async (request, reply) => {
      const scope = scopeOf(request.principal);
      if (scope !== undefined && request.body.credential !== undefined && request.body.credential !== scope) {
        throw new ApiError(403, 'an app key adds suppressions for its own credential only', 'credential');
      }
      const added = await addSuppression(storage, {
        address: request.body.address,
        reason: request.body.reason!,
        credential: scope ?? request.body.credential ?? null,
      });
      return reply.code(201).send(toJson(added));
    },
  );

  app.delete<{ Params: { address: string }; Querystring: { credential?: string } }>(
    '/v1/suppressions/:address',
    {
      config: { role: 'sender-admin', apps: true, audit: 'suppression.remove' },
      schema: {
        summary: 'Allow sending to an address again',
        params: { type: 'object', properties: { address: { type: 'string' } } },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            credential: { type: 'string', description: 'Operators only: remove the entry of this credential instead of the global one' },
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
      await removeSuppression(storage, request.params.address, scope ?? request.query.credential ?? null);
      return reply.code(204).send();
    },
  );
}
