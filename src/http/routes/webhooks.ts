/**
 * Webhooks: list them (viewer; secrets never, passwords in URLs masked); add one (its signing
 * secret returned once) and remove one (admin).
 */
import type { FastifyInstance } from 'fastify';
import { isoTime } from '../../envelope/time.js';
import { WEBHOOK_STATUSES, type WebhookRecord } from '../../queue/storage.js';
import { addWebhook, displayUrl, removeWebhook } from '../../webhooks/manage.js';
import type { ApiContext } from '../context.js';

const errors = { '4xx': { $ref: 'ApiError#' } };
const webhookProperties = {
  id: { type: 'integer' },
  url: { type: 'string' },
  events: { type: 'array', items: { type: 'string' } },
  created_at: { type: 'string' },
};

const toJson = (w: WebhookRecord) => ({ id: w.id, url: displayUrl(w.url), events: w.events, created_at: isoTime(w.createdAt) });

export function registerWebhookRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { webhooks } = ctx.storage;

  app.get(
    '/v1/webhooks',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Webhooks (secrets are not shown, nor passwords in URLs)',
        response: {
          200: { type: 'object', properties: { webhooks: { type: 'array', items: { type: 'object', properties: webhookProperties } } } },
          ...errors,
        },
      },
    },
    async () => ({ webhooks: (await webhooks.list()).map(toJson) }),
  );

  app.post<{ Body: { url: string; events?: string[] } }>(
    '/v1/webhooks',
    {
      config: { role: 'admin', audit: 'webhook.add' },
      schema: {
        summary: 'Send events to a URL; returns the signing secret once',
        body: {
          type: 'object',
          required: ['url'],
          additionalProperties: false,
          properties: {
            url: { type: 'string' },
            events: { type: 'array', items: { type: 'string' }, description: `Default: all of ${WEBHOOK_STATUSES.join(', ')}` },
          },
        },
        response: {
          201: { type: 'object', properties: { ...webhookProperties, secret: { type: 'string' } } },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const added = await addWebhook(webhooks, request.body);
      return reply.code(201).send({ ...toJson(added), secret: added.secret });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    {
      config: { role: 'admin', audit: 'webhook.remove' },
      schema: {
        summary: 'Stop sending events to a webhook (its undelivered events are dropped)',
        params: { type: 'object', properties: { id: { type: 'string' } } },
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      await removeWebhook(webhooks, request.params.id);
      return reply.code(204).send();
    },
  );
}
