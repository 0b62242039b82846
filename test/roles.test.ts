/**
 * Every role against every route, against a running relay: the route list comes from the HTTP
 * server itself, so a route added without a declared role fails here, and so does one whose role
 * the server does not enforce or the OpenAPI document does not show.
 */
import { AuditTrail } from '../src/audit/trail.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpServer, type RouteInfo } from '../src/http/server.js';
import { createLogger } from '../src/log.js';
import { addOperator } from '../src/operators/manage.js';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import type { OperatorRole } from '../src/queue/storage.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';

const ADMIN_TOKEN = 'admin-token-for-role-tests-0123456789';
type Caller = 'admin-token' | OperatorRole | 'app' | 'anonymous';
const CALLERS: Caller[] = ['admin-token', 'admin', 'sender-admin', 'template-editor', 'viewer', 'app', 'anonymous'];

/** The rules as the README states them, written out independently of src/operators/roles.ts. */
const INCLUDES: Record<OperatorRole, string[]> = {
  admin: ['admin', 'sender-admin', 'template-editor', 'viewer'],
  'sender-admin': ['sender-admin', 'viewer'],
  'template-editor': ['template-editor', 'viewer'],
  viewer: ['viewer'],
};

function allowed(route: RouteInfo, caller: Caller): boolean {
  if (route.role === 'public') return true;
  if (caller === 'anonymous') return false;
  if (route.role === 'app') return caller === 'app';
  if (caller === 'app') return route.apps === true;
  return INCLUDES[caller === 'admin-token' ? 'admin' : caller].includes(route.role!);
}

/** A concrete path for a route: parameters name things that do not exist, so no allowed call changes anything. */
const concrete = (url: string) =>
  url
    .replace(':address', 'nobody@example.test')
    .replace(':domain', 'nope.test')
    .replace(/:[a-z]+/g, 'nope');

let relay: TestRelay;
let routes: RouteInfo[];
const tokens = new Map<Caller, string | undefined>();

beforeAll(async () => {
  relay = await startTestRelay({ http: { admin_token: ADMIN_TOKEN } });
  await addSenderDomain(relay.storage, 'acme.test');
  await addCredential(relay.storage, 'billing', ['acme.test']);
  const key = newApiKey();
  await relay.storage.credentials.addApiKey('billing', hashApiKey(key));
  tokens.set('admin-token', ADMIN_TOKEN).set('app', key).set('anonymous', undefined);
  for (const role of ['admin', 'sender-admin', 'template-editor', 'viewer'] as const) {
    tokens.set(role, (await addOperator(relay.storage.operators, { name: `op-${role}`, role })).token);
  }
  // The same routes as the running relay's, read from a server built alike (it never listens).
  const server = new HttpServer({
    config: relay.config,
    storage: relay.storage,
    pipeline: undefined as never,
    metrics: undefined as never,
    logger: createLogger('silent'),
    listenersDown: () => [],
    audit: new AuditTrail(relay.storage.audit),
    shaper: undefined as never,
  });
  routes = (await server.routes()).filter((r) => r.method !== 'HEAD');
  await server.close();
});

afterAll(() => relay?.stop());

describe('roles', () => {
  it('every route declares its role', () => {
    expect(routes.length).toBeGreaterThan(20);
    const undeclared = routes.filter((r) => r.role === undefined).map((r) => `${r.method} ${r.url}`);
    expect(undeclared).toEqual([]);
  });

  it('each role gets into the routes it may use and gets a 403 naming the role needed elsewhere', async () => {
    const failures: string[] = [];
    for (const route of routes) {
      for (const caller of CALLERS) {
        const call = apiClient(relay.ports.http!, tokens.get(caller));
        const body = ['POST', 'PUT', 'PATCH'].includes(route.method) ? {} : undefined;
        const res = await call(route.method, concrete(route.url), body);
        const where = `${caller} ${route.method} ${route.url} (role ${route.role}) → ${res.status} ${JSON.stringify(res.body).slice(0, 160)}`;
        if (allowed(route, caller)) {
          if (res.status === 401 || res.status === 403) failures.push(`refused: ${where}`);
        } else if (caller === 'anonymous') {
          if (res.status !== 401) failures.push(`not 401: ${where}`);
        } else if (
          res.status !== 403 ||
          res.body.error?.required_role !== route.role ||
          !String(res.body.error?.message).includes(String(route.role))
        ) {
          failures.push(`not a 403 naming the role: ${where}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('the OpenAPI document names the role of every operation it lists', async () => {
    const doc = (await apiClient(relay.ports.http!)('GET', '/openapi.json')).body;
    let listed = 0;
    for (const route of routes) {
      const path = route.url.replace(/:([a-z]+)/g, '{$1}');
      const operation = doc.paths[path]?.[route.method.toLowerCase()];
      if (!operation) continue; // hidden: the OpenAPI document itself and the dashboard's files
      listed++;
      expect(operation['x-relay-role'], `${route.method} ${route.url}`).toBe(route.role);
      expect(operation.description, `${route.method} ${route.url}`).toMatch(
        route.role === 'public' ? /Access: no token/ : route.role === 'app' ? /app's API key/ : new RegExp(`Access: role ${route.role}\\b`),
      );
    }
    expect(listed).toBeGreaterThan(20);
    expect(doc.paths['/v1/domains'].post['x-relay-role']).toBe('sender-admin');
    expect(doc.paths['/v1/templates/{name}'].put['x-relay-role']).toBe('template-editor');
    expect(doc.paths['/healthz'].get.security).toEqual([]);
  });

  it('tells a token who it is and what it may do', async () => {
    const me = (caller: Caller) => apiClient(relay.ports.http!, tokens.get(caller))('GET', '/v1/me');
    expect((await me('admin-token')).body).toEqual({
      name: 'admin-token',
      role: 'admin',
      grants: ['admin', 'sender-admin', 'template-editor', 'viewer'],
    });
    expect((await me('sender-admin')).body).toEqual({ name: 'op-sender-admin', role: 'sender-admin', grants: ['sender-admin', 'viewer'] });
    expect((await me('app')).body).toEqual({ name: 'billing', role: 'app', grants: ['app'] });
  });

  it('a revoked or rotated operator token, or a forged secret, is a 401', async () => {
    const { token } = await addOperator(relay.storage.operators, { name: 'short-lived', role: 'viewer' });
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await apiClient(relay.ports.http!, forged)('GET', '/v1/stats')).status).toBe(401);
    expect((await apiClient(relay.ports.http!, token)('GET', '/v1/stats')).status).toBe(200);
    await relay.storage.operators.revoke('short-lived', Date.now());
    const revoked = await apiClient(relay.ports.http!, token)('GET', '/v1/stats');
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.message).toBe('invalid or revoked operator token');
  });
});
