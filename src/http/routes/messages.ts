/**
 * Sending through the API: `POST /v1/messages` (JSON or a template, composed here) and
 * `POST /v1/messages/raw` (RFC 5322 bytes and an envelope) both go through the same
 * SubmissionPipeline as SMTP: sender policy, recipient checks and quotas, signing, the durable
 * queue. `GET /v1/messages/{id}` is each recipient's status with its events.
 */
import { isoTime } from '../../envelope/time.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { newQueueId } from '../../queue/ids.js';
import type { CredentialRecord } from '../../queue/storage.js';
import { refusalKind } from '../../submission/refusal-reasons.js';
import { SmtpReply, type ReplySubject } from '../../submission/replies.js';
import { MissingVariableError, renderTemplate } from '../../templates/render.js';
import { checkTags, MAX_TAGS, TAG_HEADER } from '../../submission/tags.js';
import { scopeOf } from '../auth.js';
import { checkEnvelopeAddress } from '../../submission/envelope-address.js';
import { checkRecipientAddress } from '../../submission/recipient-address.js';
import { composeMessage, envelopeOf, invalidAddress, type MessageRequest } from '../compose.js';
import { ApiError, refusalToApiError } from '../errors.js';
import { apiEvent, eventSchema } from './events.js';
import type { ApiContext } from '../context.js';

const addressList = {
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
  ],
};
const idempotencyKey = {
  'idempotency-key': {
    type: 'string',
    maxLength: 255,
    description: 'Retries with the same key within limits.idempotency_window are not queued again',
  },
};

const acceptedSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'Queue id' },
    recipients: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          address: { type: 'string' },
          status: { type: 'string', enum: ['queued', 'rejected'] },
          reason: { type: 'string' },
          smtp_reply: { type: 'string' },
        },
      },
    },
  },
};
const errorSchema = { $ref: 'ApiError#' };

type RecipientResult = { address: string; status: 'queued' | 'rejected'; reason?: string; smtp_reply?: string };

/** The request member a refusal is about, for each door. */
const FIELDS: Record<'json' | 'raw', Record<ReplySubject, string>> = {
  json: {
    'envelope sender': 'from',
    'header From': 'from',
    'header Sender': 'headers.Sender',
    'header Reply-To': 'reply_to',
    recipients: 'to',
    'sandbox recipient': 'to',
    tags: 'tags',
  },
  raw: {
    'envelope sender': 'envelope.from',
    'header From': 'raw',
    'header Sender': 'raw',
    'header Reply-To': 'raw',
    recipients: 'envelope.to',
    'sandbox recipient': 'envelope.to',
    tags: 'tags',
  },
};

const tagsSchema = {
  type: 'array',
  items: { type: 'string' },
  description: `Up to ${MAX_TAGS} short tokens (letters, digits, . _ : -) for events and stats, as the ${TAG_HEADER} header over SMTP`,
};

/** The tags of a request, checked as the pipeline checks the header (400 naming `tags`). */
function checkedTags(tags: string[] | undefined): string[] | undefined {
  const refusal = tags && checkTags(tags);
  if (refusal) throw refusalToApiError(refusal, FIELDS.json);
  return tags;
}

export function registerMessageRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: MessageRequest; Headers: { 'idempotency-key'?: string } }>(
    '/v1/messages',
    {
      config: { role: 'app' },
      schema: {
        summary: 'Send a message (JSON fields or a stored template)',
        headers: { type: 'object', properties: idempotencyKey },
        body: {
          type: 'object',
          required: ['from'],
          additionalProperties: false,
          properties: {
            from: { type: 'string', minLength: 3 },
            to: addressList,
            cc: addressList,
            bcc: addressList,
            reply_to: addressList,
            subject: { type: 'string' },
            text: { type: 'string' },
            html: { type: 'string' },
            attachments: {
              type: 'array',
              items: {
                type: 'object',
                required: ['filename', 'content'],
                additionalProperties: false,
                properties: {
                  filename: { type: 'string', minLength: 1 },
                  content: { type: 'string', contentEncoding: 'base64' },
                  content_type: { type: 'string' },
                },
              },
            },
            headers: { type: 'object', additionalProperties: { type: 'string' } },
            unsubscribe: { type: 'boolean', description: 'Add one-click unsubscribe headers (RFC 8058) for each recipient' },
            template: {
              type: 'object',
              required: ['name'],
              additionalProperties: false,
              properties: { name: { type: 'string' }, version: { type: 'integer', minimum: 1 }, variables: { type: 'object' } },
            },
            tags: tagsSchema,
          },
        },
        response: { 202: acceptedSchema, '4xx': errorSchema, '5xx': errorSchema },
      },
    },
    async (request, replyTo) => {
      const body = request.body;
      const { mailFrom, recipients, recipientFields } = envelopeOf(body);
      const content = body.template
        ? await fromTemplate(ctx, body.template, unsubscribeVariables(ctx, request, recipients))
        : { subject: body.subject, text: body.text, html: body.html };
      if (content.subject === undefined) throw new ApiError(422, 'subject is required (or use a template)', 'subject');
      if (content.text === undefined && content.html === undefined) throw new ApiError(422, 'give text, html or a template', 'text');
      if (recipients.length === 0) throw new ApiError(422, 'at least one recipient is required in to, cc or bcc', 'to');
      checkedTags(body.tags);
      const result = await submit(ctx, request, {
        mailFrom,
        recipients,
        recipientFields,
        fields: FIELDS.json,
        build: async () => [await composeMessage({ ...body, ...content, subject: content.subject! }, request.headers['idempotency-key'])],
      });
      return replyTo.code(202).send(result);
    },
  );

  app.post<{
    Body: { envelope: { from: string; to: string[] }; raw: string; encoding?: 'base64' | 'utf8'; tags?: string[] };
    Headers: { 'idempotency-key'?: string };
  }>(
    '/v1/messages/raw',
    {
      config: { role: 'app' },
      schema: {
        summary: 'Send an RFC 5322 message as it is, with its envelope',
        headers: { type: 'object', properties: idempotencyKey },
        body: {
          type: 'object',
          required: ['envelope', 'raw'],
          additionalProperties: false,
          properties: {
            envelope: {
              type: 'object',
              required: ['from', 'to'],
              additionalProperties: false,
              properties: { from: { type: 'string' }, to: { type: 'array', items: { type: 'string' }, minItems: 1 } },
            },
            raw: { type: 'string', minLength: 1, description: 'The message, as text or base64 (see encoding)' },
            encoding: { type: 'string', enum: ['base64', 'utf8'], default: 'utf8' },
            tags: tagsSchema,
          },
        },
        response: { 202: acceptedSchema, '4xx': errorSchema, '5xx': errorSchema },
      },
    },
    async (request, replyTo) => {
      const { envelope, raw, encoding } = request.body;
      const tags = checkedTags(request.body.tags);
      // The null sender is valid syntax; the sender policy refuses it.
      const senderRefusal = envelope.from === '' ? undefined : checkEnvelopeAddress(envelope.from, 'sender');
      if (senderRefusal) throw invalidAddress('envelope.from', senderRefusal);
      envelope.to.forEach((address, i) => {
        const refusal = checkEnvelopeAddress(address, 'recipient') ?? checkRecipientAddress(address);
        if (refusal) throw invalidAddress(`envelope.to[${i}]`, refusal);
      });
      const bytes = Buffer.from(raw, encoding === 'base64' ? 'base64' : 'utf8');
      const key = request.headers['idempotency-key'];
      const result = await submit(ctx, request, {
        mailFrom: envelope.from,
        recipients: envelope.to,
        recipientFields: envelope.to.map((_, i) => `envelope.to[${i}]`),
        fields: FIELDS.raw,
        // As if the client had put the headers in the message itself; the pipeline strips them.
        // They go as a chunk of their own, so the message is not copied to add them.
        build: async () => {
          const fields = [...(tags?.length ? [`${TAG_HEADER}: ${tags.join(', ')}`] : []), ...(key ? [`Idempotency-Key: ${key}`] : [])];
          return fields.length ? [Buffer.from(fields.map((field) => `${field}\r\n`).join('')), bytes] : [bytes];
        },
      });
      return replyTo.code(202).send(result);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/messages/:id',
    {
      config: { role: 'viewer', apps: true },
      schema: {
        summary: "A message's recipients, their status and events with the remote replies",
        params: { type: 'object', properties: { id: { type: 'string' } } },
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              message_id: { type: 'string' },
              credential: { type: 'string' },
              mail_from: { type: 'string' },
              size: { type: 'integer' },
              received_at: { type: 'string' },
              recipients: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    address: { type: 'string' },
                    status: { type: 'string' },
                    attempts: { type: 'integer' },
                    next_attempt_at: { type: ['string', 'null'] },
                    last_code: { type: ['integer', 'null'] },
                    last_response: { type: ['string', 'null'] },
                    events: { type: 'array', items: eventSchema },
                  },
                },
              },
            },
          },
          '4xx': errorSchema,
        },
      },
    },
    async (request) => {
      const message = await ctx.storage.queue.message(request.params.id);
      const scope = scopeOf(request.principal);
      if (!message || (scope !== undefined && message.credential !== scope)) {
        throw new ApiError(404, `no message ${request.params.id}`, 'id');
      }
      const events = (await ctx.storage.events.query({ queueId: message.queueId, limit: 10_000 })).map(apiEvent);
      return {
        id: message.queueId,
        message_id: message.messageId,
        credential: message.credential,
        mail_from: message.mailFrom,
        size: message.size,
        received_at: isoTime(message.receivedAt),
        recipients: message.recipients.map((r) => ({
          address: r.address,
          status: r.status,
          attempts: r.attempts,
          next_attempt_at: isoTime(r.nextAttemptAt),
          last_code: r.lastCode,
          last_response: r.lastResponse,
          events: events.filter((e) => e.recipient.toLowerCase() === r.address.toLowerCase()),
        })),
      };
    },
  );
}

/**
 * `{{unsubscribe_url}}` for a template: the recipient's own one-click link, so only for a message
 * with one recipient (with several, a template that uses it is refused as missing the variable).
 */
function unsubscribeVariables(ctx: ApiContext, request: FastifyRequest, recipients: string[]): Record<string, string> {
  const base = ctx.config.http.public_url;
  if (!ctx.feedback || !base || recipients.length !== 1) return {};
  const credential = (request.principal as { credential: CredentialRecord }).credential;
  const token = ctx.feedback.tokens.unsubscribe({ queueId: '', credential: credential.name, address: recipients[0]! });
  return { unsubscribe_url: `${base}/u/${token}` };
}

async function fromTemplate(ctx: ApiContext, ref: NonNullable<MessageRequest['template']>, extra: Record<string, string> = {}) {
  const template = await ctx.storage.templates.get(ref.name, ref.version);
  if (!template) {
    throw new ApiError(
      422,
      `no template ${ref.name}${ref.version ? ` version ${ref.version}` : ''}: add it with \`relay template add\``,
      'template.name',
    );
  }
  try {
    return renderTemplate(template, { ...extra, ...ref.variables });
  } catch (err) {
    if (err instanceof MissingVariableError) throw new ApiError(422, err.message, `template.variables.${err.variable}`);
    throw err;
  }
}

/**
 * The SMTP transaction, done for the API: the envelope sender, each recipient (a permanent
 * refusal rejects that recipient; a temporary one, such as a quota, fails the request so a
 * retry sends to all), then the message through accept().
 */
async function submit(
  ctx: ApiContext,
  request: FastifyRequest,
  options: {
    mailFrom: string;
    recipients: string[];
    /** The request member of each recipient (`to[0]`, `envelope.to[1]`). */
    recipientFields: string[];
    fields: Record<ReplySubject, string>;
    /** The message, in chunks. */
    build: () => Promise<Buffer[]>;
  },
): Promise<{ id: string; recipients: RecipientResult[] }> {
  const { pipeline } = ctx;
  const credential = (request.principal as { credential: CredentialRecord }).credential;
  const senderRefusal = await pipeline.checkEnvelopeSender(credential, options.mailFrom);
  if (senderRefusal) throw refusalToApiError(senderRefusal, options.fields);
  const queueId = newQueueId();
  try {
    const results: RecipientResult[] = [];
    const accepted: string[] = [];
    for (const [i, address] of options.recipients.entries()) {
      const refusal = await pipeline.checkRecipient(credential, queueId, address, accepted.length);
      // A sandbox credential's request is a mistake to fix, not a partial send: the whole request is refused.
      if (refusal?.subject === 'sandbox recipient') {
        throw refusalToApiError(refusal, { ...options.fields, 'sandbox recipient': options.recipientFields[i]! });
      }
      if (!refusal) {
        accepted.push(address);
        results.push({ address, status: 'queued' });
      } else if (refusal.message.startsWith('5.')) {
        results.push({
          address,
          status: 'rejected',
          reason: refusalKind(refusal).reason,
          smtp_reply: `${refusal.responseCode} ${refusal.message}`,
        });
      } else {
        throw refusalToApiError(refusal, options.fields);
      }
    }
    if (accepted.length === 0) {
      const first = results[0]!;
      throw new ApiError(422, `no recipient was accepted: ${first.address} (${first.reason})`, 'to', first.smtp_reply);
    }
    const id = await pipeline.accept({
      queueId,
      credential,
      mailFrom: options.mailFrom,
      recipients: accepted,
      chunks: await options.build(),
      trace: { heloName: 'api', clientAddress: request.ip, clientHostname: request.ip, tls: request.protocol === 'https' },
    });
    return { id, recipients: results };
  } catch (err) {
    pipeline.abandon(queueId);
    if (err instanceof SmtpReply) {
      if (refusalKind(err).httpStatus === 503) ctx.logger.warn({ queueId, refused: err.message }, 'API submission failed temporarily');
      throw refusalToApiError(err, options.fields);
    }
    throw err;
  }
}
