/**
 * `GET /v1/stats`: counts per hour or day and per recipient domain over a window, from the
 * event log: accepted (queued), delivered, deferred, bounced, expired, suppressed; plus the
 * domains failing most with their last reply, and (admin) the queue right now.
 */
import type { FastifyInstance } from 'fastify';
import { isoTime } from '../../envelope/time.js';
import type { RecipientStatus } from '../../queue/storage.js';
import { scopeOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { ApiContext } from '../context.js';
import { parseTime } from '../time.js';

const HOUR = 3_600_000;
const BUCKET_MS = { hour: HOUR, day: 24 * HOUR };
/** Keeps a response (and the query behind it) bounded. */
const MAX_BUCKETS = 2000;
const TOP_FAILING = 10;

/** Event status → the name the API counts it under. */
const COUNTED: Record<RecipientStatus, string> = {
  queued: 'accepted',
  delivered: 'delivered',
  deferred: 'deferred',
  bounced: 'bounced',
  expired: 'expired',
  suppressed: 'suppressed',
  complained: 'complained',
  unsubscribed: 'unsubscribed',
};
const COUNT_NAMES = Object.values(COUNTED);

type Counts = Record<string, number>;
const zero = (): Counts => Object.fromEntries(COUNT_NAMES.map((n) => [n, 0]));
const countsSchema = { type: 'object', properties: Object.fromEntries(COUNT_NAMES.map((n) => [n, { type: 'integer' }])) };

export function registerStatsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { from?: string; to?: string; granularity: 'hour' | 'day'; tag?: string } }>(
    '/v1/stats',
    {
      config: { role: 'viewer', apps: true },
      schema: {
        summary: 'Counts over time and by recipient domain (default: the last 24 hours, hourly)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            from: { type: 'string', description: 'ISO 8601 or epoch ms; default: to minus 24 hours' },
            to: { type: 'string', description: 'ISO 8601 or epoch ms; default: now' },
            granularity: { type: 'string', enum: ['hour', 'day'], default: 'hour' },
            tag: { type: 'string', description: 'Only messages carrying this tag (X-Relay-Tag or tags)' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'string' },
              to: { type: 'string' },
              granularity: { type: 'string' },
              totals: countsSchema,
              series: { type: 'array', items: { ...countsSchema, properties: { start: { type: 'string' }, ...countsSchema.properties } } },
              by_domain: { type: 'object', additionalProperties: countsSchema },
              by_tag: {
                type: 'object',
                additionalProperties: countsSchema,
                description: 'Counts per tag over the window (a message with several tags counts under each)',
              },
              failing_domains: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    domain: { type: 'string' },
                    bounced: { type: 'integer' },
                    deferred: { type: 'integer' },
                    expired: { type: 'integer' },
                    last_code: { type: ['integer', 'null'] },
                    last_response: { type: ['string', 'null'] },
                    last_at: { type: 'string' },
                  },
                },
              },
              queue: {
                type: ['object', 'null'],
                properties: {
                  messages: { type: 'integer' },
                  recipients_pending: { type: 'integer' },
                  oldest_received_at: { type: ['string', 'null'] },
                },
              },
            },
          },
          '4xx': { $ref: 'ApiError#' },
        },
      },
    },
    async (request) => {
      const { granularity } = request.query;
      const bucket = BUCKET_MS[granularity];
      const to = request.query.to === undefined ? Date.now() : parseTime(request.query.to, 'to');
      const from = request.query.from === undefined ? to - 24 * HOUR : parseTime(request.query.from, 'from');
      if (from >= to) throw new ApiError(422, 'from must be before to', 'from');
      if ((to - from) / bucket > MAX_BUCKETS)
        throw new ApiError(422, `at most ${MAX_BUCKETS} ${granularity}s per request: narrow from/to or use granularity=day`, 'from');
      const scope = scopeOf(request.principal);
      const { tag } = request.query;

      const totals = zero();
      const series = new Map<string, Counts>();
      // Every bucket of the window, empty ones too, so a chart has a continuous axis.
      for (let t = Math.floor(from / bucket) * bucket; t < to; t += bucket) series.set(isoTime(t), zero());
      const byDomain: Record<string, Counts> = {};
      for (const row of await ctx.storage.events.buckets(from, to, bucket, scope, tag)) {
        const name = COUNTED[row.status];
        totals[name]! += row.count;
        series.get(isoTime(row.start))![name]! += row.count;
        (byDomain[row.domain] ??= zero())[name]! += row.count;
      }
      const byTag: Record<string, Counts> = {};
      for (const row of await ctx.storage.events.tagCounts(from, to, scope)) {
        if (tag === undefined || row.tag === tag) (byTag[row.tag] ??= zero())[COUNTED[row.status]]! += row.count;
      }
      const failing = (await ctx.storage.events.lastFailures(from, to, scope, tag))
        .map((last) => ({ last, counts: byDomain[last.domain]! }))
        .sort(
          (a, b) =>
            b.counts.bounced! + b.counts.expired! - (a.counts.bounced! + a.counts.expired!) || b.counts.deferred! - a.counts.deferred!,
        )
        .slice(0, TOP_FAILING)
        .map(({ last, counts }) => ({
          domain: last.domain,
          bounced: counts.bounced,
          deferred: counts.deferred,
          expired: counts.expired,
          last_code: last.smtpCode,
          last_response: last.response,
          last_at: isoTime(last.at),
        }));
      const queue = scope === undefined ? (await ctx.storage.queue.stats()).queue : undefined;
      return {
        from: isoTime(from),
        to: isoTime(to),
        granularity,
        totals,
        series: [...series].map(([start, counts]) => ({ start, ...counts })),
        by_domain: byDomain,
        by_tag: byTag,
        failing_domains: failing,
        queue: queue
          ? { messages: queue.messages, recipients_pending: queue.recipientsPending, oldest_received_at: isoTime(queue.oldestReceivedAt) }
          : null,
      };
    },
  );
}
