/**
 * Who is calling: `Authorization: Bearer KEY` is either the admin token (http.admin_token: all
 * data, admin endpoints, the dashboard) or an app's API key (one credential: sending, and only
 * that credential's messages, events and stats). Each route declares the access it needs.
 * Failed tokens count against the client IP like failed SMTP logins (limits.auth_failures_per_ip,
 * shared by every door and node); past the limit the API answers 429 until the lockout ends.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CredentialRecord, CredentialStore, LimitStore } from '../queue/storage.js';
import { hashApiKey } from '../submission/api-keys.js';
import { ApiError } from './errors.js';

/** `send`: an API key; `read`: an API key (scoped) or the admin token; `admin`: the admin token. */
export type Access = 'send' | 'read' | 'admin';

export type Principal = { admin: true } | { admin: false; credential: CredentialRecord };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    access?: Access;
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();

export async function authenticate(
  request: FastifyRequest,
  access: Access,
  config: RelayConfig,
  storage: { credentials: Pick<CredentialStore, 'byApiKey' | 'recordOldSecretLogin'>; limits: LimitStore },
  logger?: Logger,
): Promise<Principal> {
  const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  const adminToken = config.http.admin_token;
  if (access === 'admin' && !adminToken) {
    throw new ApiError(403, 'admin endpoints are disabled: set http.admin_token in the config to enable them');
  }
  if (!token) throw new ApiError(401, 'missing credentials: send "Authorization: Bearer KEY"', 'authorization');
  const { auth_failure_window: window, auth_lockout: lockout, auth_failures_per_ip: limit } = config.limits;
  const ipKey = `ip:${request.ip}`;
  const now = Date.now();
  const failures = await storage.limits.loginFailures(ipKey, now - window - lockout);
  if (failures.count >= limit && failures.lastAt !== null && failures.lastAt + lockout > now) {
    throw new ApiError(
      429,
      'too many failed authentications from this address: try again later',
      'authorization',
      undefined,
      Math.ceil((failures.lastAt + lockout - now) / 1000),
    );
  }
  if (adminToken && timingSafeEqual(digest(token), digest(adminToken))) {
    if (access === 'send')
      throw new ApiError(403, 'sending needs an app API key (relay credential add NAME --api-key), not the admin token', 'authorization');
    return { admin: true };
  }
  const keyHash = hashApiKey(token);
  const credential = await storage.credentials.byApiKey(keyHash);
  if (!credential) {
    await storage.limits.recordLoginFailure(ipKey, now, now - window);
    throw new ApiError(401, 'invalid or revoked API key', 'authorization');
  }
  if (credential.rotation && credential.rotation.until > now && credential.rotation.oldApiKeyHashes.includes(keyHash)) {
    logger?.warn(
      { credential: credential.name, graceUntil: new Date(credential.rotation.until).toISOString() },
      'API call with a key a rotation replaced',
    );
    await storage.credentials.recordOldSecretLogin(credential.name, now);
  }
  if (access === 'admin') throw new ApiError(403, 'this endpoint needs the admin token, not an app API key', 'authorization');
  return { admin: false, credential };
}

/** Who the audit log names for a request: the admin token, or the credential of an app key. */
export const actorOf = (principal: Principal) => (principal.admin ? 'admin-token' : `credential:${principal.credential.name}`);

/** The credential whose data an app key may see; undefined for the admin (everything). */
export const scopeOf = (principal: Principal) => (principal.admin ? undefined : principal.credential.name);
