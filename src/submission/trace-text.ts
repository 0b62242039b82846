/**
 * Client-supplied values written into trace headers (the HELO name, the client's reverse DNS
 * name) are reduced to hostname and address-literal characters, so a malicious value cannot
 * split the Received header or inject one of its own.
 */
const UNSAFE = /[^A-Za-z0-9.\-_:[\]]/g;

export function traceToken(value: string | false | undefined | null): string {
  const text = typeof value === 'string' ? value.replace(UNSAFE, '?').slice(0, 255) : '';
  return text || 'unknown';
}
