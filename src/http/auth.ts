/**
 * Who is calling, and whether they may. `Authorization: Bearer TOKEN` is one of:
 * - an operator token (`relay operator add NAME --role R`), acting under its name and role;
 * - the admin token (http.admin_token), acting as operator `admin-token` with role admin;
 * - an app's API key (one credential): sending, and that credential's own data where a route allows it.
 * Each route declares what it needs in its config, in one place: `role` (an operator role, `app`
 * for an app key only, or `public`), and `apps: true` where an app key may call it too, scoped to
 * its own credential. A token without the role needed is a 403 naming that role.
 * Failed tokens count against the client IP like failed SMTP logins (limits.auth_failures_per_ip,
 * shared by every door and node); past the limit the API answers 429 until the lockout ends.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RelayConfig } from '../config/schema.js';
import { ADMIN_TOKEN_OPERATOR } from '../operators/manage.js';
import { mayActAs, type Role } from '../operators/roles.js';
import { looksLikeOperatorToken, operatorOfToken } from '../operators/tokens.js';
import type { Logger } from '../log.js';
import type { CredentialRecord, CredentialStore, LimitStore, OperatorStore } from '../queue/storage.js';
import { hashApiKey } from '../submission/api-keys.js';
import { ApiError } from './errors.js';

export type RouteRole = Role | 'app' | 'public';

export interface RouteAccess {
  role?: RouteRole;
  /** An app's API key may call it too, and sees or changes only its own credential's data. */
  apps?: boolean;
  /** A management action: a successful call is written to the audit trail under this name (server.ts). */
  audit?: string;
}

/**
 * The caller of a request past authentication: an operator by name and role (`admin-token` for
 * http.admin_token), or an app by its credential's name. What the audit trail records as "who".
 */
export type Principal = { name: string; role: Role; credential?: undefined } | { name: string; role: 'app'; credential: CredentialRecord };

declare module 'fastify' {
  interface FastifyRequest {
    /** Null on public routes. */
    principal: Principal | null;
  }
  interface FastifyContextConfig extends RouteAccess {}
}

/** A 403 for want of a role; `required_role` in the JSON names it for scripts. */
export class RoleRequiredError extends ApiError {
  constructor(
    readonly role: Exclude<RouteRole, 'public'>,
    message: string,
  ) {
    super(403, message, 'authorization');
  }

  override toJSON() {
    const json = super.toJSON();
    return { error: { ...json.error, required_role: this.role } };
  }
}

/** How a route's access reads in its OpenAPI description. */
export function describeAccess(access: RouteAccess): string {
  const { role, apps } = access;
  if (role === undefined) return 'Access: not declared';
  if (role === 'public') return 'Access: no token';
  if (role === 'app') return "Access: an app's API key";
  const appKeys = apps ? "; or an app's API key, for its own credential's data" : '';
  return `Access: role ${role} (an operator token with a role that includes it, or the admin token)${appKeys}`;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

type AuthStorage = {
  credentials: Pick<CredentialStore, 'byApiKey' | 'recordOldSecretLogin'>;
  operators: Pick<OperatorStore, 'byTokenId'>;
  limits: LimitStore;
};

export async function authenticate(
  request: FastifyRequest,
  access: RouteAccess,
  config: RelayConfig,
  storage: AuthStorage,
  logger?: Logger,
): Promise<Principal> {
  const needed = access.role;
  // A route without a declared role is refused to everyone rather than open to anyone.
  if (needed === undefined || needed === 'public') throw new ApiError(403, 'this route declares no role', 'authorization');
  const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (!token) throw new ApiError(401, 'missing credentials: send "Authorization: Bearer TOKEN"', 'authorization');
  const { auth_failure_window: window, auth_lockout: lockout, auth_failures_per_ip: limit } = config.limits;
  const ipKey = `ip:${request.ip}`;
  const now = Date.now();
  const failures = (await storage.limits.loginFailures([ipKey], now - window - lockout))[0]!;
  if (failures.count >= limit && failures.lastAt !== null && failures.lastAt + lockout > now) {
    throw new ApiError(
      429,
      'too many failed authentications from this address: try again later',
      'authorization',
      undefined,
      Math.ceil((failures.lastAt + lockout - now) / 1000),
    );
  }
  const principal = await principalOf(token, config, storage, now, logger);
  if (!principal) {
    await storage.limits.recordLoginFailure(ipKey, now, now - window);
    const kind = looksLikeOperatorToken(token) ? 'operator token' : 'API key or token';
    throw new ApiError(401, `invalid or revoked ${kind}`, 'authorization');
  }
  authorize(principal, { ...access, role: needed });
  return principal;
}

async function principalOf(
  token: string,
  config: RelayConfig,
  storage: AuthStorage,
  now: number,
  logger?: Logger,
): Promise<Principal | undefined> {
  const adminToken = config.http.admin_token;
  if (adminToken && timingSafeEqual(digest(token), digest(adminToken))) return { name: ADMIN_TOKEN_OPERATOR, role: 'admin' };
  if (looksLikeOperatorToken(token)) {
    const operator = await operatorOfToken(storage.operators, token);
    return operator && { name: operator.name, role: operator.role };
  }
  const keyHash = hashApiKey(token);
  const credential = await storage.credentials.byApiKey(keyHash);
  if (!credential) return undefined;
  if (credential.rotation && credential.rotation.until > now && credential.rotation.oldApiKeyHashes.includes(keyHash)) {
    logger?.warn(
      { credential: credential.name, graceUntil: new Date(credential.rotation.until).toISOString() },
      'API call with a key a rotation replaced',
    );
    await storage.credentials.recordOldSecretLogin(credential.name, now);
  }
  return { name: credential.name, role: 'app', credential };
}

function authorize(principal: Principal, access: { role: Exclude<RouteRole, 'public'>; apps?: boolean }): void {
  const needed = access.role;
  if (needed === 'app') {
    if (principal.role === 'app') return;
    throw new RoleRequiredError('app', 'sending needs an app API key (relay credential add NAME --api-key), not an operator token');
  }
  if (principal.role === 'app') {
    if (access.apps) return;
    throw new RoleRequiredError(
      needed,
      `this endpoint needs an operator token with role ${needed} (or the admin token), not an app API key`,
    );
  }
  if (!mayActAs(principal.role, needed)) {
    throw new RoleRequiredError(needed, `this endpoint needs role ${needed}; operator ${principal.name} has role ${principal.role}`);
  }
}

/** Who the audit log names for a request: the operator (`admin-token` for http.admin_token), or the credential of an app key. */
export const actorOf = (principal: Principal) => (principal.role === 'app' ? `credential:${principal.credential.name}` : principal.name);

/** The credential whose data an app key may see; undefined for an operator (everything). */
export const scopeOf = (principal: Principal | null) => principal?.credential?.name;
