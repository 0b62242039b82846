/**
 * The DNS records an operator publishes for a sender domain: the ownership token Relay checks,
 * the DKIM public key, and suggested SPF and DMARC records.
 */
import { randomBytes } from 'node:crypto';
import type { DomainRecord } from '../queue/storage.js';

export type RecordPurpose = 'verification' | 'dkim' | 'spf' | 'dmarc';

export interface DnsRecord {
  type: 'TXT';
  name: string;
  value: string;
  purpose: RecordPurpose;
}

/** The fields of a stored domain that its records are derived from. */
export type DomainKeys = Pick<DomainRecord, 'name' | 'selector' | 'algorithm' | 'publicKey' | 'verificationToken'>;

export function newVerificationToken(): string {
  return randomBytes(16).toString('hex');
}

export const verificationName = (domain: string) => `_relay-verification.${domain}`;
export const verificationValue = (token: string) => `relay-verification=${token}`;
export const dkimName = (domain: string, selector: string) => `${selector}._domainkey.${domain}`;
export const dkimValue = (domain: Pick<DomainKeys, 'algorithm' | 'publicKey'>) => `v=DKIM1; k=${domain.algorithm}; p=${domain.publicKey}`;
export const spfValue = (hostname: string) => `v=spf1 a:${hostname} ~all`;
export const dmarcName = (domain: string) => `_dmarc.${domain}`;
export const dmarcValue = (domain: string) => `v=DMARC1; p=none; rua=mailto:dmarc-reports@${domain}`;

/** `hostname` is the relay's own name (config `hostname`), which SPF must authorize. */
export function dnsRecords(domain: DomainKeys, hostname: string): DnsRecord[] {
  return [
    { type: 'TXT', name: verificationName(domain.name), value: verificationValue(domain.verificationToken), purpose: 'verification' },
    { type: 'TXT', name: dkimName(domain.name, domain.selector), value: dkimValue(domain), purpose: 'dkim' },
    { type: 'TXT', name: domain.name, value: spfValue(hostname), purpose: 'spf' },
    { type: 'TXT', name: dmarcName(domain.name), value: dmarcValue(domain.name), purpose: 'dmarc' },
  ];
}

/** What the return-path domain (bounces.return_path_domain) needs: mail for it comes to this relay, which also sends from it. */
export interface ReturnPathRecord {
  type: 'MX' | 'TXT';
  name: string;
  value: string;
}

export function returnPathRecords(returnPathDomain: string, hostname: string): ReturnPathRecord[] {
  return [
    { type: 'MX', name: returnPathDomain, value: `10 ${hostname}.` },
    { type: 'TXT', name: returnPathDomain, value: spfValue(hostname) },
  ];
}
