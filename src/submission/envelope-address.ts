/**
 * The syntax an envelope address must have: what smtp-server enforces on MAIL FROM and RCPT TO
 * for the SMTP listeners, for the doors that do not go through it (the HTTP API). No control,
 * invisible or space characters, no angle brackets, exactly one @ between a non-empty local
 * part (no dot at either end, no two in a row) and a hostname or IP literal, at most 253
 * octets. Recipients are held to recipient-address.ts on top of this, as over SMTP.
 */
import { isIP } from 'node:net';
import { reply, type SmtpReply } from './replies.js';

// Controls (CR and LF among them), C1 controls, zero-width space, word joiner, BOM: as smtp-server refuses them.
const UNSAFE = /[\x00-\x1F\x7F-\x9F\u200B\u2060\uFEFF]/;
const DOMAIN = /^[a-zA-Z0-9\u0080-\uFFFF.-]+$/;

function syntaxError(address: string): string | undefined {
  if (UNSAFE.test(address)) return 'has a control or invisible character';
  if (/\s/.test(address)) return 'has a space';
  if (/[<>]/.test(address)) return 'has angle brackets: give the bare address';
  const parts = address.split('@');
  if (parts.length !== 2) return 'must have exactly one @';
  const [local, domain] = parts as [string, string];
  if (!local) return 'has an empty local part';
  if (!domain) return 'has no domain';
  if (Buffer.byteLength(address) > 253) return 'is longer than 253 octets';
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return 'has a malformed local part';
  if (domain.startsWith('[') && domain.endsWith(']')) {
    const literal = domain.slice(1, -1);
    const ip = /^ipv6:/i.test(literal) ? literal.slice(5) : literal;
    return isIP(ip) === (/^ipv6:/i.test(literal) ? 6 : 4) ? undefined : 'has a malformed address literal';
  }
  if (
    domain.startsWith('.') ||
    domain.endsWith('.') ||
    domain.includes('..') ||
    domain.includes('.-') ||
    domain.includes('-.') ||
    !DOMAIN.test(domain)
  ) {
    return 'has a malformed domain';
  }
  return undefined;
}

/** Undefined when the syntax is one SMTP would accept, else the refusal SMTP gives (501 5.1.7 sender, 501 5.1.3 recipient). */
export function checkEnvelopeAddress(address: string, role: 'sender' | 'recipient'): SmtpReply | undefined {
  const problem = syntaxError(address);
  if (!problem) return undefined;
  const shown = JSON.stringify(address).slice(1, -1);
  return role === 'sender'
    ? reply(501, '5.1.7', `bad sender address syntax: <${shown}> ${problem}`, 'envelope sender')
    : reply(501, '5.1.3', `bad recipient address syntax: <${shown}> ${problem}`, 'recipients');
}
