/**
 * Who is calling: `Authorization: Bearer KEY` is either the admin token (http.admin_token: all
 * data, admin endpoints, the dashboard) or an app's API key (one credential: sending, and only
 * that credential's messages, events and stats). Each route declares the access it needs.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RelayConfig } from '../config/schema.js';
import type { CredentialRecord, Store } from '../queue/store.js';
import { hashApiKey } from './api-keys.js';
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

export function authenticate(request: FastifyRequest, access: Access, config: RelayConfig, store: Store): Principal {
  const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  const adminToken = config.http.admin_token;
  if (access === 'admin' && !adminToken) {
    throw new ApiError(403, 'admin endpoints are disabled: set http.admin_token in the config to enable them');
  }
  if (!token) throw new ApiError(401, 'missing credentials: send "Authorization: Bearer KEY"', 'authorization');
  if (adminToken && timingSafeEqual(digest(token), digest(adminToken))) {
    if (access === 'send') throw new ApiError(403, 'sending needs an app API key (relay credential add NAME --api-key), not the admin token', 'authorization');
    return { admin: true };
  }
  const credential = store.credentialByApiKey(hashApiKey(token));
  if (!credential) throw new ApiError(401, 'invalid or revoked API key', 'authorization');
  if (access === 'admin') throw new ApiError(403, 'this endpoint needs the admin token, not an app API key', 'authorization');
  return { admin: false, credential };
}

/** The credential whose data an app key may see; undefined for the admin (everything). */
export const scopeOf = (principal: Principal) => (principal.admin ? undefined : principal.credential.name);
