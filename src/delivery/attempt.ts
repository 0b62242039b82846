/**
 * One delivery attempt for one DeliveryJob (a message's recipients at one domain), as ordered
 * steps with early exits: resolve the domain's mail hosts, get a session host by host, run one
 * MAIL/RCPT.../DATA transaction, then turn each recipient's reply into an outcome.
 */
import { isAscii } from 'node:buffer';
import { Readable } from 'node:stream';
import { classify, type BounceRules } from '../bounces/classify.js';
import type { RelayConfig } from '../config/schema.js';
import { joinParts, partsSize, type MessageParts } from '../envelope/header.js';
import type { Clock } from '../envelope/time.js';
import type { Logger } from '../log.js';
import { tlsModeOf, type HostTls, type OutboundTls } from '../outbound-tls/policy.js';
import type { DeliveryJob, RecipientOutcome, TlsInfo } from '../queue/storage.js';
import type { ShapingRoute } from '../shaping/shaper.js';
import type { DestinationCache } from './destination-cache.js';
import type { Destination } from './mx.js';
import { SessionError, type ConnectionPool, type Session } from './pool.js';
import { isSuccess, parseReply, replyFromError, type Reply } from './reply.js';
import { scheduleRetry } from './retry.js';
import { rcptRefusals, tlsSocketOf } from './smtp-connection-internals.js';
import { smtpUtf8Refusals } from './smtputf8.js';

export interface AttemptContext {
  config: RelayConfig;
  /** The recipient domains' mail hosts, from DNS. */
  destinations: DestinationCache;
  pool: ConnectionPool;
  /** Recipient domains' MTA-STS and DANE policies, and the check of each session against them. */
  tls: OutboundTls;
  rules: BounceRules;
  logger: Logger;
  /** When retries fall due is counted from it. */
  now: Clock;
}

/** `route`: the traffic shaping destination the job belongs to, when one does (its TLS mode and messages per connection). */
export async function attemptDelivery(
  job: DeliveryJob,
  body: MessageParts,
  ctx: AttemptContext,
  route?: ShapingRoute,
): Promise<RecipientOutcome[]> {
  const mx = await ctx.destinations.lookup(job.domain);
  if (!mx.ok) return outcomesFor(job, () => ({ code: mx.failure.code, text: mx.failure.response }), ctx);

  const connected = await connect(mx.destinations, job, ctx, route);
  if ('failure' in connected) return outcomesFor(job, () => connected.failure, ctx);
  const { tls } = connected.session;

  // Recipients the host cannot take (RFC 6531) bounce; the others still go in this session.
  const refused = smtpUtf8Refusals(job, connected.session);
  const sendable = { ...job, recipients: job.recipients.filter((r) => !refused.has(r.address)) };
  if (sendable.recipients.length === 0) {
    ctx.pool.release(connected.session, true);
    return outcomesFor(job, (address) => refused.get(address)!, ctx, tls);
  }
  const replies = await transact(connected.session, sendable, body, ctx.pool, route?.messagesPerConnection);
  return outcomesFor(job, (address) => refused.get(address) ?? replies.get(address)!, ctx, tls);
}

/** A reused session to any of the hosts, else a new one, trying hosts and their addresses in order. */
async function connect(
  destinations: Destination[],
  job: DeliveryJob,
  ctx: AttemptContext,
  route: ShapingRoute | undefined,
): Promise<{ session: Session } | { failure: Reply }> {
  // A shaping destination's TLS mode stands in for delivery.tls.
  const domainTls = await ctx.tls.domain(job.domain, route?.tls ?? tlsModeOf(ctx.config));
  let failure: Reply = { text: `4.4.1 no mail host for ${job.domain} could be reached` };
  const unusable = (host: string, address: string | undefined, reply: Reply) => {
    failure = reply;
    ctx.logger.info(
      { queueId: job.queueId, recipientDomain: job.domain, host, address, reply: reply.text },
      'mail host unusable, trying the next',
    );
  };
  // Each host's TLS demands (MTA-STS listing, DANE records) are known before any session is used.
  const usable: { host: HostTls; addresses: string[] }[] = [];
  for (const [i, plan] of (await Promise.all(destinations.map((d) => ctx.tls.host(domainTls, d.host)))).entries()) {
    if (plan.ok) usable.push({ host: plan.host, addresses: destinations[i]!.addresses });
    else unusable(destinations[i]!.host, undefined, plan.reply);
  }
  for (const { host } of usable) {
    const reused = await ctx.pool.reuse([host.host], (s) => ctx.tls.reusable(host, s.tls));
    if (reused) return { session: reused };
  }
  for (const { host, addresses } of usable) {
    for (const address of addresses) {
      let session: Session;
      try {
        session = await ctx.pool.open(host.host, address, ctx.tls.sessionOptions(domainTls), route);
      } catch (err) {
        if (!(err instanceof SessionError)) throw err;
        unusable(host.host, address, err.reply);
        continue;
      }
      const checked = ctx.tls.check(domainTls, host, tlsSocketOf(session.connection));
      session.tls = checked.info;
      if (!checked.refusal) return { session };
      ctx.pool.release(session, false);
      unusable(host.host, address, checked.refusal);
    }
  }
  return { failure };
}

/** Runs the transaction and hands the session back, for reuse only when it ended cleanly and has messages left. */
async function transact(
  session: Session,
  job: DeliveryJob,
  body: MessageParts,
  pool: ConnectionPool,
  messagesPerConnection = Infinity,
): Promise<Map<string, Reply>> {
  let reusable = false;
  try {
    const replies = await exchange(session, job, body);
    session.transactions++;
    reusable = session.alive && session.transactions < messagesPerConnection;
    return replies;
  } finally {
    pool.release(session, reusable);
  }
}

/**
 * One transaction with every recipient of the job. Each recipient ends up with its own RCPT
 * reply when the server refused it there, else with the reply that decided the message
 * (the final reply after DATA, or the failure of MAIL, DATA or the connection).
 */
async function exchange(session: Session, job: DeliveryJob, body: MessageParts): Promise<Map<string, Reply>> {
  const to = job.recipients.map((r) => r.address);
  const envelope = {
    from: job.mailFrom,
    to,
    size: partsSize(body),
    use8BitMime: ![body.head, ...body.rest].every((piece) => isAscii(piece)),
  };
  const replies = new Map<string, Reply>();
  try {
    const info = await send(session, envelope, body);
    const final = parseReply(info.response);
    for (const address of to) replies.set(address, final);
    for (const err of info.rejectedErrors ?? []) replies.set(recipientOf(err), replyFromError(err, session.peer));
  } catch (err) {
    const senderRefused = (err as { command?: string }).command === 'MAIL FROM';
    const whole = { ...replyFromError(err, session.peer), ...(senderRefused && { senderRefused }) };
    for (const address of to) replies.set(address, whole);
    // After a refused MAIL FROM the RCPT replies only say "no transaction" (with PIPELINING).
    if (!senderRefused) {
      for (const rcptErr of rcptRefusals(session.connection)) replies.set(recipientOf(rcptErr), replyFromError(rcptErr, session.peer));
    }
  }
  return replies;
}

type SendInfo = { response: string; rejectedErrors?: Error[] };

/** A message up to this size is written in one go; a bigger one is streamed, so the socket's backpressure bounds what is buffered. */
const WRITTEN_WHOLE_BYTES = 1 << 20;

function send(
  session: Session,
  envelope: { from: string; to: string[]; size: number; use8BitMime: boolean },
  body: MessageParts,
): Promise<SendInfo> {
  const message = envelope.size <= WRITTEN_WHOLE_BYTES ? joinParts(body) : Readable.from([body.head, ...body.rest], { objectMode: false });
  return new Promise((resolve, reject) => session.connection.send(envelope, message, (err, info) => (err ? reject(err) : resolve(info))));
}

const recipientOf = (err: Error) => (err as Error & { recipient: string }).recipient;

/** Maps each recipient's reply to delivered, bounced, deferred or expired. */
function outcomesFor(job: DeliveryJob, replyFor: (address: string) => Reply, ctx: AttemptContext, tls?: TlsInfo): RecipientOutcome[] {
  const now = ctx.now();
  return job.recipients.map((recipient) => {
    const reply = replyFor(recipient.address);
    const base = {
      recipientId: recipient.id,
      smtpCode: reply.code,
      response: reply.text,
      ...(reply.senderRefused && { senderRefused: true }),
      ...(tls && { tls }),
    };
    if (isSuccess(reply)) return { ...base, status: 'delivered' };
    const { category, permanent } = classify(ctx.rules, reply.code, reply.text);
    if (permanent) return { ...base, status: 'bounced', category };
    const retry = scheduleRetry({
      schedule: ctx.config.delivery.retry_schedule,
      attempt: recipient.attempts + 1,
      now,
      expiresAt: job.expiresAt,
    });
    return { ...base, category, ...retry };
  });
}

/** Every recipient with the same failure reply, for failures outside the delivery steps. */
export function outcomesForReply(job: DeliveryJob, reply: Reply, ctx: AttemptContext): RecipientOutcome[] {
  return outcomesFor(job, () => reply, ctx);
}
