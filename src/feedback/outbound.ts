/**
 * What the feedback stage adds to outgoing mail, one recipient at a time: the VERP return path
 * (b+TOKEN@bounces.return_path_domain) that brings a later bounce back to this recipient, and
 * the one-click unsubscribe headers (RFC 8058) with this recipient's token, signed again with
 * the From domain's DKIM key so that the signature covers them. A message wants unsubscribe
 * headers when its credential has --list-unsubscribe or the submitter asked for them (the API's
 * `unsubscribe: true` leaves List-Unsubscribe-Post in the signed message for this stage to complete).
 */
import { MAILER_DAEMON } from '../bounces/notifier.js';
import type { RelayConfig } from '../config/schema.js';
import { domainOf } from '../envelope/address.js';
import { prependHeaderField, readHeader, type MessageParts } from '../envelope/header.js';
import type { DeliveryJob, DomainStore, FeedbackStore } from '../queue/storage.js';
import type { DkimSigner } from '../signing/dkim.js';
import { parseMailboxList } from '../submission/header-address.js';
import type { FeedbackTokens } from './tokens.js';

/** How long a credential's --list-unsubscribe setting is trusted before it is read again. */
const SETTING_TTL_MS = 2000;
export const ONE_CLICK = 'List-Unsubscribe=One-Click';

export interface OutboundFeedbackDeps {
  config: RelayConfig;
  tokens: FeedbackTokens;
  storage: { domains: Pick<DomainStore, 'get'>; feedback: Pick<FeedbackStore, 'listUnsubscribe'> };
  signer: DkimSigner;
}

export class OutboundFeedback {
  private readonly settings = new Map<string, { on: boolean; until: number }>();

  constructor(private readonly deps: OutboundFeedbackDeps) {}

  /** True when the job's recipients must each get their own transaction (their own return path or headers). */
  async perRecipient(job: DeliveryJob, body: MessageParts): Promise<boolean> {
    return this.verp(job) || (await this.unsubscribe(job, body));
  }

  /** The envelope sender and message for one recipient of the job. */
  async prepare(
    job: DeliveryJob,
    recipient: DeliveryJob['recipients'][number],
    body: MessageParts,
  ): Promise<{ mailFrom: string; body: MessageParts }> {
    const { config, tokens } = this.deps;
    const domain = config.bounces.return_path_domain;
    const mailFrom = this.verp(job)
      ? `b+${tokens.returnPath({ queueId: job.queueId, recipientId: recipient.id })}@${domain}`
      : job.mailFrom;
    if (!(await this.unsubscribe(job, body))) return { mailFrom, body };
    const token = tokens.unsubscribe({ queueId: job.queueId, credential: job.credential, address: recipient.address });
    const targets = unsubscribeTargets(config, token);
    if (targets.length === 0) return { mailFrom, body };
    const fields = readHeader(body.head).fields;
    let head = prependHeaderField(body.head, `List-Unsubscribe: ${targets.map((t) => `<${t}>`).join(', ')}`);
    if (!fields.some((f) => f.name === 'list-unsubscribe-post')) head = prependHeaderField(head, `List-Unsubscribe-Post: ${ONE_CLICK}`);
    return { mailFrom, body: await this.sign({ head, rest: body.rest }, fields.find((f) => f.name === 'from')?.value) };
  }

  private verp(job: DeliveryJob): boolean {
    return this.deps.config.bounces.return_path_domain !== undefined && job.mailFrom !== '';
  }

  /** A message gets unsubscribe headers unless it carries its own List-Unsubscribe. */
  private async unsubscribe(job: DeliveryJob, body: MessageParts): Promise<boolean> {
    // Relay's own notifications never get unsubscribe headers.
    if (job.credential === MAILER_DAEMON) return false;
    const fields = readHeader(body.head).fields;
    if (fields.some((f) => f.name === 'list-unsubscribe')) return false;
    if (fields.some((f) => f.name === 'list-unsubscribe-post' && f.value === ONE_CLICK)) return true;
    return this.credentialWants(job.credential);
  }

  private async credentialWants(credential: string): Promise<boolean> {
    const cached = this.settings.get(credential);
    if (cached && cached.until > Date.now()) return cached.on;
    const on = await this.deps.storage.feedback.listUnsubscribe(credential);
    this.settings.set(credential, { on, until: Date.now() + SETTING_TTL_MS });
    return on;
  }

  /** Signed with the From domain's key, as at submission; the submission signature stays valid beside it. */
  private async sign(message: MessageParts, from: string | undefined): Promise<MessageParts> {
    const parsed = from === undefined ? undefined : parseMailboxList(from);
    const address = parsed && 'addresses' in parsed ? parsed.addresses[0] : undefined;
    const domain = address ? await this.deps.storage.domains.get(domainOf(address)) : undefined;
    if (!domain) return message;
    return this.deps.signer.signAllAsync(message, [
      { domain: domain.name, selector: domain.selector, algorithm: domain.algorithm, privateKeyPem: domain.privateKeyPem },
    ]);
  }
}

/** The https link (http.public_url) and the mailto address (the return-path domain), those configured. */
export function unsubscribeTargets(config: RelayConfig, token: string): string[] {
  const targets: string[] = [];
  if (config.http.public_url) targets.push(`${config.http.public_url}/u/${token}`);
  if (config.bounces.return_path_domain) targets.push(`mailto:u+${token}@${config.bounces.return_path_domain}`);
  return targets;
}
