/** `GET /v1/events/export`: a window of events as CSV or JSON Lines, streamed (src/exports). */
import type { FastifyInstance } from 'fastify';
import { EXPORT_CONTENT_TYPES, EXPORT_FORMATS, exportEvents, type ExportFormat } from '../../exports/events.js';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../context.js';
import { parseTime } from '../time.js';

export function registerExportRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { from: string; to?: string; format: ExportFormat; credential?: string } }>(
    '/v1/events/export',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Events of a window, with their tags, as CSV or JSON Lines, streamed',
        querystring: {
          type: 'object',
          required: ['from'],
          additionalProperties: false,
          properties: {
            from: { type: 'string', description: 'ISO 8601 or epoch ms, inclusive' },
            to: { type: 'string', description: 'ISO 8601 or epoch ms, exclusive; default: now' },
            format: { type: 'string', enum: [...EXPORT_FORMATS], default: 'jsonl' },
            credential: { type: 'string', description: 'Only events of messages this credential submitted' },
          },
        },
        response: {
          200: { description: 'One event per line (CSV with a header line)', type: 'string' },
          '4xx': { $ref: 'ApiError#' },
        },
      },
    },
    async (request, reply) => {
      const { format, credential } = request.query;
      const from = parseTime(request.query.from, 'from');
      const to = request.query.to === undefined ? Date.now() : parseTime(request.query.to, 'to');
      if (from >= to) throw new ApiError(422, 'from must be before to', 'from');
      const stream = exportEvents(ctx.storage.events, { from, to, credential }, format);
      // Headers are sent by now: a storage failure midway can only cut the body short.
      stream.on('error', (err) => ctx.logger.error({ err }, 'event export failed'));
      return reply
        .type(EXPORT_CONTENT_TYPES[format])
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="relay-events.${format}"`)
        .send(stream);
    },
  );
}
