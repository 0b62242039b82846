/** Message templates: list and read them (viewer); add a version, remove one with all its versions (template-editor). */
import type { FastifyInstance } from 'fastify';
import { isoTime } from '../../envelope/time.js';
import type { TemplateRecord } from '../../queue/storage.js';
import { removeTemplate, saveTemplate } from '../../templates/manage.js';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../context.js';

const errors = { '4xx': { $ref: 'ApiError#' } };
const nameParams = { type: 'object', properties: { name: { type: 'string' } } };
const templateSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    subject: { type: 'string' },
    text: { type: ['string', 'null'] },
    html: { type: ['string', 'null'] },
    created_at: { type: 'string' },
  },
};

const toJson = (t: TemplateRecord) => ({
  name: t.name,
  version: t.version,
  subject: t.subject,
  text: t.text,
  html: t.html,
  created_at: isoTime(t.createdAt),
});

export function registerTemplateRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { templates } = ctx.storage;

  app.get(
    '/v1/templates',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Templates, the latest version of each',
        response: { 200: { type: 'object', properties: { templates: { type: 'array', items: templateSchema } } }, ...errors },
      },
    },
    async () => ({ templates: (await templates.list()).map(toJson) }),
  );

  app.get<{ Params: { name: string }; Querystring: { version?: number } }>(
    '/v1/templates/:name',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'A template: its latest version, or the one asked for',
        params: nameParams,
        querystring: { type: 'object', additionalProperties: false, properties: { version: { type: 'integer', minimum: 1 } } },
        response: { 200: templateSchema, ...errors },
      },
    },
    async (request) => {
      const found = await templates.get(request.params.name, request.query.version);
      if (!found) throw new ApiError(404, `unknown template ${request.params.name}`, request.query.version ? 'version' : 'name');
      return toJson(found);
    },
  );

  app.put<{ Params: { name: string }; Body: { subject: string; text?: string; html?: string } }>(
    '/v1/templates/:name',
    {
      config: { role: 'template-editor', audit: 'template.add' },
      schema: {
        summary: 'Add a template, or the next version of an existing one (Mustache: {{name}}, HTML-escaped in the html part)',
        params: nameParams,
        body: {
          type: 'object',
          required: ['subject'],
          additionalProperties: false,
          properties: { subject: { type: 'string', minLength: 1 }, text: { type: 'string' }, html: { type: 'string' } },
        },
        response: { 201: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' } } }, ...errors },
      },
    },
    async (request, reply) => {
      const { subject, text, html } = request.body;
      const version = await saveTemplate(templates, { name: request.params.name, subject, text: text ?? null, html: html ?? null });
      return reply.code(201).send({ name: request.params.name, version });
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/templates/:name',
    {
      config: { role: 'template-editor', audit: 'template.remove' },
      schema: {
        summary: 'Remove a template and all its versions',
        params: nameParams,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      await removeTemplate(templates, request.params.name);
      return reply.code(204).send();
    },
  );
}
