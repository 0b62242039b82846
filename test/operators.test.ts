/**
 * `relay operator` as a real process beside a running relay: a token is printed once (only a
 * hash is stored), works at once with its role, and stops working when rotated or revoked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli } from './helpers/cli.js';
import { apiClient } from './helpers/http.js';
import { startTestRelay, type TestRelay } from './helpers/relay.js';

let relay: TestRelay;
const cli = (...args: string[]) => runCli(['--config', relay.configFile, ...args], { cwd: relay.dir });
const api = (token: string) => apiClient(relay.ports.http!, token);

beforeAll(async () => {
  assertBuilt();
  relay = await startTestRelay();
});

afterAll(() => relay?.stop());

describe('relay operator', { timeout: 60_000 }, () => {
  let token: string;

  it('adds an operator and prints its token once; only a hash is stored', async () => {
    const added = await cli('operator', 'add', 'ann', '--role', 'template-editor');
    expect(added.code, added.stderr).toBe(0);
    token = /Token: (ro_\S+)/.exec(added.stdout)?.[1] ?? '';
    expect(token).toMatch(/^ro_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(added.stdout).toContain('will not be shown again');
    const stored = await relay.storage.operators.get('ann');
    expect(stored).toMatchObject({ role: 'template-editor', revokedAt: null });
    expect(JSON.stringify(stored)).not.toContain(token.split('.')[1]);

    const me = await api(token)('GET', '/v1/me');
    expect(me.body).toMatchObject({ name: 'ann', role: 'template-editor' });
    expect((await api(token)('PUT', '/v1/templates/hello', { subject: 'Hi', text: 'Hello' })).status).toBe(201);
    const refused = await api(token)('POST', '/v1/domains', { domain: 'acme.test' });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ required_role: 'sender-admin' });
  });

  it('refuses an unknown role, a taken name and the admin token’s name', async () => {
    const badRole = await cli('operator', 'add', 'bob', '--role', 'root');
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toContain('Allowed choices are admin, sender-admin, template-editor, viewer');
    expect((await cli('operator', 'add', 'bob')).code).toBe(2);
    const taken = await cli('operator', 'add', 'ann', '--role', 'viewer');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toBe('relay: operator ann already exists (names of revoked operators stay taken)\n');
    expect((await cli('operator', 'add', 'admin-token', '--role', 'viewer')).stderr).toMatch(/names the admin token/);
  });

  it('rotates a token: the new one works, the old one stops at once', async () => {
    const rotated = await cli('operator', 'rotate', 'ann', '--json');
    expect(rotated.code, rotated.stderr).toBe(0);
    const fresh = (JSON.parse(rotated.stdout) as { token: string; role: string }).token;
    expect(fresh).not.toBe(token);
    expect((await api(token)('GET', '/v1/me')).status).toBe(401);
    expect((await api(fresh)('GET', '/v1/me')).status).toBe(200);
    token = fresh;
  });

  it('lists operators without tokens, and revokes one', async () => {
    expect((await cli('operator', 'add', 'zed', '--role', 'viewer', '--json')).code).toBe(0);
    const revoked = await cli('operator', 'revoke', 'ann');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await api(token)('GET', '/v1/me')).status).toBe(401);
    const again = await cli('operator', 'revoke', 'ann');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^relay: operator ann was revoked at /);
    expect((await cli('operator', 'rotate', 'ghost')).stderr).toBe('relay: unknown operator ghost\n');

    const list = await cli('operator', 'list', '--json');
    expect(list.stdout).not.toMatch(/ro_|token_hash/);
    const operators = JSON.parse(list.stdout) as { name: string; role: string; revoked: string | null }[];
    expect(operators.map((o) => [o.name, o.role, o.revoked !== null])).toEqual([
      ['ann', 'template-editor', true],
      ['zed', 'viewer', false],
    ]);
    const table = await cli('operator', 'list');
    expect(table.stdout).toMatch(/^NAME\s+ROLE\s+CREATED\s+TOKEN ISSUED\s+REVOKED\n/);
  });
});
