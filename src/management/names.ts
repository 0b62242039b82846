/** Checks and normalises the names a management action is given, with messages that say what is allowed. */
import { ManagementError } from './error.js';

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN = new RegExp(`^(?=.{1,253}$)(?:${LABEL}\\.)+${LABEL}$`);
const SELECTOR = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
/** Credentials and operators: letters, digits and . _ @ + -, up to 128 characters. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

/** Lower-cased, without a trailing dot. Internationalised names must be given in A-label (xn--) form. */
export function domainName(input: string, field = 'domain'): string {
  const name = input.trim().toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(name)) {
    throw new ManagementError(
      'invalid',
      field,
      `"${input}" is not a domain name (expected e.g. example.com; write international names as xn--...)`,
    );
  }
  return name;
}

export function selectorName(input: string): string {
  const name = input.trim().toLowerCase();
  if (!SELECTOR.test(name)) {
    throw new ManagementError('invalid', 'selector', `"${input}" is not a valid DKIM selector (letters, digits, hyphens and dots)`);
  }
  return name;
}

export function credentialName(input: string): string {
  if (!NAME.test(input)) {
    throw new ManagementError(
      'invalid',
      'name',
      `"${input}" is not a valid credential name (letters, digits and . _ @ + -, up to 128 characters)`,
    );
  }
  return input;
}

export function operatorName(input: string): string {
  if (!NAME.test(input)) {
    throw new ManagementError(
      'invalid',
      'name',
      `"${input}" is not a valid operator name (letters, digits and . _ @ + -, up to 128 characters)`,
    );
  }
  return input;
}

/** An address as given for a sender identity or a sandbox allowlist: something@something, no spaces. */
export function emailAddress(input: string, field = 'address'): string {
  const address = input.trim();
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || /\s/.test(address))
    throw new ManagementError('invalid', field, `"${input}" is not an email address`);
  return address;
}
