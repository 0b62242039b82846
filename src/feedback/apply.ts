/**
 * What a report or an unsubscribe means for the original message's recipient. A report is tied
 * to its recipient by the return-path token (signed: a bad one marks the report forged, and
 * nothing else is tried), else by the Message-ID or Relay queue id it quotes together with a
 * recipient that message really had. What matches becomes an `async` event on that recipient
 * (bounced, complained, unsubscribed), which webhooks hear of, and, for a permanent bounce, a
 * complaint or an unsubscribe, a suppression for the credential that sent the message.
 * Whatever does not match is logged and dropped.
 */
import { classify, enhancedStatusOf, type BounceRules } from '../bounces/classify.js';
import type { RelayConfig } from '../config/schema.js';
import { localPartOf, domainOf, normaliseAddress } from '../envelope/address.js';
import type { Logger } from '../log.js';
import type { FeedbackStore, FeedbackTarget, NewSuppression } from '../queue/storage.js';
import { parseReport, type OriginalRef, type Report } from './parse.js';
import type { FeedbackTokens, UnsubscribeToken } from './tokens.js';

/** Feedback types that are a recipient's complaint (RFC 5965 section 7.3); auth-failure and not-spam are not. */
const COMPLAINTS = new Set(['abuse', 'fraud', 'virus', 'other']);

export type ReportKind = Report['kind'] | 'unsubscribe';
export type ReportResult = 'applied' | 'ignored' | 'unmatched' | 'forged';

export interface FeedbackObserver {
  report(kind: ReportKind, result: ReportResult): void;
}

export interface FeedbackProcessorDeps {
  config: RelayConfig;
  feedback: Pick<FeedbackStore, 'recipient' | 'messages' | 'record'>;
  tokens: FeedbackTokens;
  rules: BounceRules;
  logger: Logger;
  observer?: FeedbackObserver;
}

/** One received message: its envelope recipients (already checked by the listener) and bytes. */
export interface InboundMessage {
  recipients: string[];
  raw: Buffer;
  remoteAddress: string;
}

type Match = { ok: true; targets: FeedbackTarget[] } | { ok: false; result: 'unmatched' | 'forged'; why: string };

export class FeedbackProcessor {
  constructor(private readonly deps: FeedbackProcessorDeps) {}

  async process(message: InboundMessage): Promise<void> {
    const domain = this.deps.config.bounces.return_path_domain;
    const ownDomain = (address: string) => domain !== undefined && domainOf(address) === domain;
    const local = (address: string) => localPartOf(address).toLowerCase();
    const unsubscribes = message.recipients.filter((r) => ownDomain(r) && local(r).startsWith('u+'));
    for (const address of unsubscribes) await this.unsubscribeByMail(local(address).slice(2), message.remoteAddress);
    if (unsubscribes.length === message.recipients.length) return;

    const envelopeTokens = message.recipients.filter((r) => ownDomain(r) && local(r).startsWith('b+')).map((r) => local(r).slice(2));
    const report = await parseReport(message.raw, domain);
    const log = this.deps.logger.child({ report: report.kind, client: message.remoteAddress });
    switch (report.kind) {
      case 'auto-reply':
        log.info({ reason: report.reason }, 'auto-reply ignored');
        return this.observe(report.kind, 'ignored');
      case 'other':
        log.info('inbound message is no report: dropped');
        return this.observe(report.kind, 'ignored');
      case 'delivery-status': {
        const failed = report.recipients.filter((r) => r.action === 'failed');
        if (failed.length === 0) {
          log.info({ actions: report.recipients.map((r) => r.action) }, 'delivery status without failures ignored');
          return this.observe(report.kind, 'ignored');
        }
        const match = await this.match(
          envelopeTokens,
          report.original,
          failed.map((r) => r.address),
        );
        if (!match.ok) return this.drop(log, report.kind, match);
        for (const target of match.targets) {
          const entry = failed.find((r) => sameAddress(r.address, target.recipient)) ?? failed[0]!;
          const text = entry.diagnostic ?? `${entry.status ?? '5.0.0'} delivery failed (reported by the receiving side)`;
          const code = /^([245]\d\d)\b/.exec(entry.diagnostic ?? '')?.[1];
          await this.bounce(target, code === undefined ? undefined : Number(code), text, entry.status);
        }
        return this.observe(report.kind, 'applied');
      }
      case 'bounce': {
        const match = await this.match(envelopeTokens, report.original, report.addresses);
        if (!match.ok) return this.drop(log, report.kind, match);
        for (const target of match.targets) await this.bounce(target, report.code, report.text, undefined);
        return this.observe(report.kind, 'applied');
      }
      case 'feedback-report': {
        if (!COMPLAINTS.has(report.feedbackType)) {
          log.info({ feedbackType: report.feedbackType }, 'feedback report of a kind that is no complaint: ignored');
          return this.observe(report.kind, 'ignored');
        }
        const match = await this.match(envelopeTokens, report.original, report.originalRecipients);
        if (!match.ok) return this.drop(log, report.kind, match);
        for (const target of match.targets) {
          const by = report.userAgent ? ` from ${report.userAgent}` : '';
          await this.apply(
            target,
            'complained',
            null,
            `feedback report: ${report.feedbackType}${by}`,
            report.feedbackType,
            `complaint: ${report.feedbackType}${by}`,
          );
        }
        return this.observe(report.kind, 'applied');
      }
    }
  }

  /** One-click unsubscribe (the HTTP POST, or mail to the mailto address) with a token already verified. */
  async unsubscribe(token: UnsubscribeToken, how: string): Promise<void> {
    const found = token.queueId ? await this.deps.feedback.messages({ queueId: token.queueId }) : [];
    const message = found.find((m) => m.credential === token.credential);
    await this.apply(
      { queueId: token.queueId, messageId: message?.messageId ?? '', credential: token.credential, recipient: token.address },
      'unsubscribed',
      null,
      `unsubscribed (${how})`,
      'unsubscribe',
      `unsubscribe: ${how}`,
    );
    this.deps.logger.info({ queueId: token.queueId, credential: token.credential, how }, 'recipient unsubscribed');
    this.observe('unsubscribe', 'applied');
  }

  private async unsubscribeByMail(text: string, client: string): Promise<void> {
    const token = this.deps.tokens.readUnsubscribe(text);
    if (!token) {
      this.deps.logger.warn({ client }, 'unsubscribe mail with a bad token: dropped');
      return this.observe('unsubscribe', 'forged');
    }
    await this.unsubscribe(token, 'mailto');
  }

  /**
   * The recipients a report is about. A return-path token decides alone; without one, the
   * quoted original must name a message of ours, and only its own recipients can be reported.
   */
  private async match(envelopeTokens: string[], original: OriginalRef, reported: string[]): Promise<Match> {
    const tokens = [...new Set([...envelopeTokens, ...original.returnPathTokens])];
    if (tokens.length > 0) {
      const targets: FeedbackTarget[] = [];
      for (const text of tokens) {
        const token = this.deps.tokens.readReturnPath(text);
        if (!token) return { ok: false, result: 'forged', why: 'return-path token does not verify' };
        const target = await this.deps.feedback.recipient(token.queueId, token.recipientId);
        if (!target) return { ok: false, result: 'unmatched', why: `no message ${token.queueId} with that recipient (purged?)` };
        if (!targets.some((t) => t.queueId === target.queueId && sameAddress(t.recipient, target.recipient))) targets.push(target);
      }
      return { ok: true, targets };
    }
    if (!original.messageId && !original.queueId)
      return { ok: false, result: 'unmatched', why: 'no token, Message-ID or queue id in the report' };
    const messages = await this.deps.feedback.messages({ queueId: original.queueId, messageId: original.messageId });
    if (messages.length === 0) return { ok: false, result: 'forged', why: 'the report names no message Relay sent' };
    const targets = messages.flatMap((m) => {
      const named = m.recipients.filter((r) => reported.some((x) => sameAddress(x, r)));
      // A provider that redacts the recipient (ARF) still identifies it when the message had only one.
      const chosen = named.length > 0 ? named : reported.length === 0 && m.recipients.length === 1 ? m.recipients : [];
      return chosen.map((recipient) => ({ queueId: m.queueId, messageId: m.messageId, credential: m.credential, recipient }));
    });
    if (targets.length === 0) return { ok: false, result: 'forged', why: 'the reported recipient was not a recipient of that message' };
    return { ok: true, targets };
  }

  private async bounce(target: FeedbackTarget, code: number | undefined, text: string, status: string | undefined): Promise<void> {
    const { category, permanent } = classify(this.deps.rules, code, status && !enhancedStatusOf(text) ? `${status} ${text}` : text);
    await this.apply(target, 'bounced', code ?? null, text, category, permanent ? `bounce: ${text}` : null);
  }

  private async apply(
    target: FeedbackTarget,
    status: 'bounced' | 'complained' | 'unsubscribed',
    smtpCode: number | null,
    response: string,
    category: string,
    suppressReason: string | null,
  ): Promise<void> {
    const suppression: NewSuppression | null = suppressReason
      ? { address: target.recipient, credential: target.credential, reason: suppressReason.slice(0, 500) }
      : null;
    await this.deps.feedback.record(
      {
        queueId: target.queueId,
        messageId: target.messageId,
        credential: target.credential,
        recipient: target.recipient,
        status,
        smtpCode,
        response,
        category,
      },
      suppression,
    );
    this.deps.logger.info(
      { queueId: target.queueId, credential: target.credential, status, category, suppressed: suppression !== null },
      `recipient ${status} (reported later)`,
    );
  }

  private drop(log: Logger, kind: ReportKind, match: Extract<Match, { ok: false }>): void {
    if (match.result === 'forged') log.warn({ why: match.why }, 'forged or foreign report: dropped');
    else log.info({ why: match.why }, 'report matches no message: dropped');
    this.observe(kind, match.result);
  }

  private observe(kind: ReportKind, result: ReportResult): void {
    this.deps.observer?.report(kind, result);
  }
}

const sameAddress = (a: string, b: string) => normaliseAddress(a) === normaliseAddress(b);
