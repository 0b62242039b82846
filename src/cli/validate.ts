/** Checks and normalises names typed on the command line, with messages that say what is allowed. */
import { InvalidArgumentError } from 'commander';
import { CliError } from './context.js';

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN = new RegExp(`^(?=.{1,253}$)(?:${LABEL}\\.)+${LABEL}$`);
const SELECTOR = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const CREDENTIAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

/** Lower-cased, without a trailing dot. Internationalised names must be given in A-label (xn--) form. */
export function domainName(input: string): string {
  const name = input.trim().toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(name)) {
    throw new CliError(`"${input}" is not a domain name (expected e.g. example.com; write international names as xn--...)`);
  }
  return name;
}

export function selectorName(input: string): string {
  const name = input.trim().toLowerCase();
  if (!SELECTOR.test(name)) throw new CliError(`"${input}" is not a valid DKIM selector (letters, digits, hyphens and dots)`);
  return name;
}

export function credentialName(input: string): string {
  if (!CREDENTIAL_NAME.test(input)) {
    throw new CliError(`"${input}" is not a valid credential name (letters, digits and . _ @ + -, up to 128 characters)`);
  }
  return input;
}

export function emailAddress(input: string): string {
  const address = input.trim();
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || /\s/.test(address)) throw new CliError(`"${input}" is not an email address`);
  return address;
}

/** Commander argument parser for counts such as --limit. */
export function positiveInteger(input: string): number {
  const value = Number(input);
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return value;
}
