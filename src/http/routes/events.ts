/** `GET /v1/events`: the event log, filtered and cursor-paged (the cursor is the last event id seen). */
import type { FastifyInstance } from 'fastify';
import { isoTime } from '../../envelope/time.js';
import { EVENT_STATUSES, type EventRecord, type RecipientStatus } from '../../queue/storage.js';
import { scopeOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../context.js';
import { parseTime } from '../time.js';

export const STATUSES = [...EVENT_STATUSES];

export const eventSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    queue_id: { type: 'string' },
    message_id: { type: 'string' },
    recipient: { type: 'string' },
    domain: { type: 'string' },
    status: { type: 'string', enum: STATUSES },
    smtp_code: { type: ['integer', 'null'] },
    response: { type: ['string', 'null'] },
    category: { type: ['string', 'null'] },
    tls: {
      type: ['object', 'null'],
      description:
        'How the session was protected: TLS version and cipher (null in cleartext), whether the MX certificate was authenticated, and the policy that applied',
      properties: {
        version: { type: ['string', 'null'] },
        cipher: { type: ['string', 'null'] },
        verified: { type: 'boolean' },
        policy: { type: 'string', enum: ['none', 'sts', 'dane'] },
      },
    },
    at: { type: 'string', format: 'date-time' },
    tags: { type: 'array', items: { type: 'string' } },
    phase: { type: 'string', enum: ['async'], description: 'Present when the receiving side reported it after accepting the message' },
  },
} as const;

export const apiEvent = (e: EventRecord) => ({
  id: e.id,
  queue_id: e.queueId,
  message_id: e.messageId,
  recipient: e.recipient,
  domain: e.domain,
  status: e.status,
  smtp_code: e.smtpCode,
  response: e.response,
  category: e.category,
  tls: e.tls ?? null,
  at: isoTime(e.at),
  tags: e.tags,
  ...(e.phase && { phase: e.phase }),
});

interface EventsQuery {
  since?: string;
  status?: RecipientStatus;
  domain?: string;
  recipient?: string;
  cursor?: number;
  limit: number;
  order: 'asc' | 'desc';
}

export function registerEventRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: EventsQuery }>(
    '/v1/events',
    {
      config: { role: 'viewer', apps: true },
      schema: {
        summary: 'Events (queued, delivered, deferred, bounced, expired, suppressed), oldest first, cursor-paged',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            since: { type: 'string', description: 'ISO 8601 time or epoch milliseconds' },
            status: { type: 'string', enum: STATUSES },
            domain: { type: 'string' },
            recipient: { type: 'string' },
            cursor: { type: 'integer', minimum: 0, description: 'next_cursor of the previous page' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            order: {
              type: 'string',
              enum: ['asc', 'desc'],
              default: 'asc',
              description: 'desc: newest first (then the cursor is not used)',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              events: { type: 'array', items: eventSchema },
              next_cursor: {
                type: ['integer', 'null'],
                description: 'Pass as cursor to get the events after this page (also to poll for new ones)',
              },
              has_more: { type: 'boolean' },
            },
          },
          '4xx': { $ref: 'ApiError#' },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const newestFirst = q.order === 'desc';
      if (newestFirst && q.cursor !== undefined) throw new ApiError(422, 'cursor pages oldest first: drop order=desc', 'cursor');
      const rows = await ctx.storage.events.query({
        afterId: q.cursor,
        since: q.since === undefined ? undefined : parseTime(q.since, 'since'),
        status: q.status,
        domain: q.domain,
        recipient: q.recipient,
        credential: scopeOf(request.principal),
        newestFirst,
        limit: q.limit + 1,
      });
      const page = rows.slice(0, q.limit);
      return {
        events: page.map(apiEvent),
        next_cursor: newestFirst ? null : (page.at(-1)?.id ?? q.cursor ?? 0),
        has_more: rows.length > q.limit,
      };
    },
  );
}
