/** Human-readable output for `relay domain`: the DNS records to copy, and verification results. */
import type { DnsRecord, DomainKeys, RecordPurpose, ReturnPathRecord } from '../domains/records.js';
import type { DomainChecks } from '../domains/verify.js';
import { print, printTable } from './output.js';

const TITLES: Record<RecordPurpose, string> = {
  verification: 'Ownership (required before Relay accepts mail from the domain)',
  dkim: 'DKIM signing key (required for DKIM to pass)',
  spf: 'SPF (suggested; if the domain already has an SPF record, add the a: term to it instead of publishing a second one)',
  dmarc: 'DMARC (suggested starting policy)',
};

const CHECK_NAMES: Record<RecordPurpose, string> = { verification: 'ownership', dkim: 'dkim', spf: 'spf', dmarc: 'dmarc' };

export function printRecords(domain: DomainKeys, records: DnsRecord[], heading?: string): void {
  if (heading) print(heading);
  print(`Publish these DNS records for ${domain.name}, then run \`relay domain verify ${domain.name}\`:`);
  for (const record of records) {
    print();
    print(`  ${TITLES[record.purpose]}`);
    print(`    Type:  ${record.type}`);
    print(`    Name:  ${record.name}`);
    print(`    Value: ${record.value}`);
  }
  print();
  print('Some DNS providers want the name without the domain (e.g. _dmarc), and values over 255 characters');
  print('split into several quoted strings; both are equivalent.');
}

export function printVerification(domain: DomainKeys, verified: boolean, checks: DomainChecks, lookupFailed: boolean): void {
  if (verified) print(`${domain.name} is verified: Relay accepts mail from it.`);
  else if (lookupFailed) print(`${domain.name}: the ownership record could not be looked up, so its verification state is unchanged.`);
  else print(`${domain.name} is not verified: Relay refuses mail from it until the ownership record is published.`);
  print();
  printTable(
    ['CHECK', 'STATUS', 'DETAILS'],
    (Object.keys(CHECK_NAMES) as RecordPurpose[]).map((purpose) => [CHECK_NAMES[purpose], checks[purpose].status, checks[purpose].message]),
    '',
  );
}

/** The return path's records: once per relay, not per sender domain, but shown with each so they are not forgotten. */
export function printReturnPathRecords(domain: string, records: ReturnPathRecord[]): void {
  print();
  print(`Return path ${domain} (bounces.return_path_domain; once for the relay, already done if published before):`);
  for (const record of records) {
    print();
    print(
      `  ${record.type === 'MX' ? 'MX: bounces, feedback reports and unsubscribes come to the inbound listener' : 'SPF for the envelope sender'}`,
    );
    print(`    Type:  ${record.type}`);
    print(`    Name:  ${record.name}`);
    print(`    Value: ${record.value}`);
  }
}
