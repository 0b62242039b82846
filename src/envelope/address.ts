/**
 * Envelope and header addresses: the one home for what every stage asks of an address (its
 * domain, the form it is compared and stored in).
 */

/** The domain part, lower-cased ('' when there is no @). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}

/** The local part, as written ('' when there is no @). */
export function localPartOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(0, at);
}

/** The form addresses are compared and stored in (suppression list, login keys). */
export function normaliseAddress(address: string): string {
  return address.trim().toLowerCase();
}
