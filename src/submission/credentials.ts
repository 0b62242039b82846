/**
 * Managing credentials, for the CLI and the HTTP API alike: add (a random password, shown once,
 * and optionally an API key), issue another API key, change rate limits and quotas, revoke;
 * and the view of a credential's limits and usage both doors show.
 */
import { randomBytes } from 'node:crypto';
import { ManagementError } from '../management/error.js';
import { credentialName, domainName } from '../management/names.js';
import type { CredentialLimits, CredentialPolicy, Storage } from '../queue/storage.js';
import { hashApiKey, newApiKey } from './api-keys.js';
import { hashPasswordAsync } from './password.js';
import { formatRate } from './rate.js';

/** 18 random bytes: 24 base64url characters, 144 bits. */
export const newPassword = () => randomBytes(18).toString('base64url');

export interface LimitsView {
  limits: { rate: string | null; daily: number | null; monthly: number | null };
  usage: { today: number; this_month: number };
}

export async function limitsView(storage: Pick<Storage, 'limits'>, name: string, now = Date.now()): Promise<LimitsView> {
  const limits = await storage.limits.get(name);
  const usage = await storage.limits.usage(name, now);
  return {
    limits: { rate: limits.rate && formatRate(limits.rate), daily: limits.daily, monthly: limits.monthly },
    usage: { today: usage.day, this_month: usage.month },
  };
}

export interface NewCredentialSecrets {
  name: string;
  domains: string[];
  /** Shown once; only a scrypt hash is stored. */
  password: string;
  /** Shown once; only a SHA-256 is stored. */
  apiKey?: string;
}

type CredentialStorage = Pick<Storage, 'credentials' | 'domains' | 'limits' | 'credentialPolicies'>;

export async function addCredential(
  storage: CredentialStorage,
  input: {
    name: string;
    domains: string[];
    limits?: Partial<CredentialLimits>;
    /** Sender identities, Reply-To domains and sandbox (credential-policy.ts). */
    policy?: Partial<CredentialPolicy>;
    apiKey?: boolean;
  },
): Promise<NewCredentialSecrets> {
  const name = credentialName(input.name);
  if (await storage.credentials.get(name)) {
    throw new ManagementError('exists', 'name', `credential ${name} already exists (names of revoked credentials stay taken)`);
  }
  if (input.domains.length === 0) throw new ManagementError('invalid', 'domains', 'a credential needs at least one sender domain');
  const domains = [...new Set(input.domains.map((d) => domainName(d, 'domains')))];
  for (const domain of domains) {
    if (!(await storage.domains.get(domain))) throw new ManagementError('unknown', 'domains', `unknown domain ${domain}: add it first`);
  }
  const password = newPassword();
  await storage.credentials.add({ name, username: name, passwordHash: await hashPasswordAsync(password), domains });
  if (input.limits && Object.keys(input.limits).length) await storage.limits.set(name, input.limits);
  if (input.policy && Object.keys(input.policy).length) await storage.credentialPolicies.set(name, input.policy);
  const apiKey = input.apiKey ? await addApiKey(storage, name) : undefined;
  return { name, domains, password, ...(apiKey && { apiKey }) };
}

/** Another API key for an active credential; only its hash is stored. */
export async function issueApiKey(storage: Pick<Storage, 'credentials'>, name: string): Promise<string> {
  const existing = await storage.credentials.get(name);
  if (!existing) throw new ManagementError('unknown', 'name', `unknown credential ${name}`);
  if (existing.revokedAt)
    throw new ManagementError('unknown', 'name', `credential ${name} was revoked at ${new Date(existing.revokedAt).toISOString()}`);
  return addApiKey(storage, name);
}

async function addApiKey(storage: Pick<Storage, 'credentials'>, name: string): Promise<string> {
  const key = newApiKey();
  await storage.credentials.addApiKey(name, hashApiKey(key));
  return key;
}

/** Changes only the limits given (null clears one); returns the credential's limits after. */
export async function updateCredentialLimits(
  storage: CredentialStorage,
  name: string,
  limits: Partial<CredentialLimits>,
): Promise<LimitsView['limits']> {
  if (!(await storage.credentials.get(name))) throw new ManagementError('unknown', 'name', `unknown credential ${name}`);
  if (Object.keys(limits).length === 0)
    throw new ManagementError('invalid', 'limits', 'nothing to update: give a rate, daily or monthly limit');
  await storage.limits.set(name, limits);
  return (await limitsView(storage, name)).limits;
}

export async function revokeCredential(storage: Pick<Storage, 'credentials'>, name: string): Promise<void> {
  const existing = await storage.credentials.get(name);
  if (!existing) throw new ManagementError('unknown', 'name', `unknown credential ${name}`);
  if (!(await storage.credentials.revoke(name))) {
    throw new ManagementError(
      'exists',
      'name',
      `credential ${name} was already revoked at ${new Date(existing.revokedAt ?? Date.now()).toISOString()}`,
    );
  }
}
