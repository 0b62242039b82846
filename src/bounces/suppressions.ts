/**
 * What an operator or an app adds to the suppression list and takes off it, for the CLI and the
 * HTTP API alike. An entry applies to one credential, or to every credential (credential null).
 */
import { ManagementError } from '../management/error.js';
import type { Storage, Suppression } from '../queue/storage.js';
import { checkRecipientAddress } from '../submission/recipient-address.js';

const scopeName = (credential: string | null) => (credential === null ? 'every credential' : credential);

export async function addSuppression(
  storage: Pick<Storage, 'suppressions' | 'credentials'>,
  input: { address: string; reason: string; credential: string | null },
): Promise<Suppression> {
  const address = input.address.trim();
  const bad = checkRecipientAddress(address);
  if (bad) throw new ManagementError('invalid', 'address', bad.message.replace(/^\S+ /, ''));
  const { credential } = input;
  if (credential !== null && !(await storage.credentials.get(credential))) {
    throw new ManagementError('unknown', 'credential', `unknown credential ${credential}`);
  }
  if (!(await storage.suppressions.add({ address, reason: input.reason, credential }))) {
    throw new ManagementError('exists', 'address', `${address} is already on the suppression list for ${scopeName(credential)}`);
  }
  const lower = address.toLowerCase();
  const added = (await storage.suppressions.list(credential === null ? {} : { credential })).find(
    (s) => s.address === lower && s.credential === credential,
  );
  return added ?? { address: lower, reason: input.reason, credential, createdAt: Date.now() };
}

export async function removeSuppression(storage: Pick<Storage, 'suppressions'>, address: string, credential: string | null): Promise<void> {
  if (!(await storage.suppressions.remove(address.trim(), credential))) {
    throw new ManagementError('unknown', 'address', `${address.trim()} is not on the suppression list for ${scopeName(credential)}`);
  }
}
