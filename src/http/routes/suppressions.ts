/** `GET|POST|DELETE /v1/suppressions`: the suppression list (one list for all credentials, as in the CLI). */
import type { FastifyInstance } from 'fastify';
import { checkRecipientAddress } from '../../submission/recipient-address.js';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../server.js';

const suppressionSchema = {
  type: 'object',
  properties: { address: { type: 'string' }, reason: { type: 'string' }, created_at: { type: 'string' } },
};

export function registerSuppressionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/suppressions',
    {
      config: { access: 'read' },
      schema: { summary: 'Suppressed addresses', response: { 200: { type: 'object', properties: { suppressions: { type: 'array', items: suppressionSchema } } } } },
    },
    async () => ({
      suppressions: ctx.store.listSuppressions().map((s) => ({ address: s.address, reason: s.reason, created_at: s.createdAt })),
    }),
  );

  app.post<{ Body: { address: string; reason?: string } }>(
    '/v1/suppressions',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Stop sending to an address',
        body: {
          type: 'object',
          required: ['address'],
          additionalProperties: false,
          properties: { address: { type: 'string' }, reason: { type: 'string', default: 'added through the API' } },
        },
        response: { 201: suppressionSchema, '4xx': { $ref: 'ApiError#' } },
      },
    },
    async (request, reply) => {
      const { address, reason } = request.body;
      const bad = checkRecipientAddress(address);
      if (bad) throw new ApiError(422, bad.message.replace(/^\S+ /, ''), 'address');
      if (!ctx.store.addSuppression(address, reason!)) throw new ApiError(409, `${address} is already on the suppression list`, 'address');
      const added = ctx.store.listSuppressions().find((s) => s.address === address.trim().toLowerCase())!;
      return reply.code(201).send({ address: added.address, reason: added.reason, created_at: added.createdAt });
    },
  );

  app.delete<{ Params: { address: string } }>(
    '/v1/suppressions/:address',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Allow sending to an address again',
        params: { type: 'object', properties: { address: { type: 'string' } } },
        response: { 204: { type: 'null' }, '4xx': { $ref: 'ApiError#' } },
      },
    },
    async (request, reply) => {
      if (!ctx.store.removeSuppression(request.params.address)) {
        throw new ApiError(404, `${request.params.address} is not on the suppression list`, 'address');
      }
      return reply.code(204).send();
    },
  );
}
