/**
 * Credential rotation without an outage: after `relay credential rotate --api-key`, the old
 * password (over real SMTP AUTH) and the old API key keep working beside the new ones until the
 * grace ends, each use of them is counted and logged, and `relay credential list` shows the count
 * and the grace's end; then the old ones are refused and the new ones still work.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli } from './helpers/cli.js';
import { apiClient } from './helpers/http.js';
import { addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { waitFor } from './helpers/wait.js';

let relay: TestRelay;
const logLines: string[] = [];
const cli = (...args: string[]) => runCli(['--config', relay.configFile, ...args], { cwd: relay.dir });

beforeAll(async () => {
  assertBuilt();
  relay = await startTestRelay({ log: { level: 'warn' } }, { destination: { write: (line: string) => void logLines.push(line) } });
  await addSenderDomain(relay.storage, 'acme.test');
});

afterAll(() => relay?.stop());

/** An SMTP AUTH login over implicit TLS: true when accepted, false on 535. */
async function login(password: string): Promise<boolean> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: relay.ports.smtps,
    secure: true,
    auth: { user: 'app', pass: password },
    tls: { rejectUnauthorized: false },
  });
  try {
    return await transport.verify();
  } catch (err) {
    if ((err as { responseCode?: number }).responseCode === 535) return false;
    throw err;
  } finally {
    transport.close();
  }
}

interface Listed {
  name: string;
  old_secret: { grace_until: string; active: boolean; logins: number; last_login: string | null } | null;
}
const listed = async () => (JSON.parse((await cli('credential', 'list', '--json')).stdout) as Listed[]).find((c) => c.name === 'app')!;

describe('relay credential rotate', { timeout: 180_000 }, () => {
  it('keeps the old password and key working until the grace ends, counting their use', async () => {
    const added = await cli('credential', 'add', 'app', '--domain', 'acme.test', '--api-key', '--json');
    expect(added.code, added.stderr).toBe(0);
    const old = JSON.parse(added.stdout) as { password: string; api_key: string };
    expect((await listed()).old_secret).toBeNull();

    // Long enough for the CLI to return on a loaded machine; the end is waited for, not slept through.
    const rotated = await cli('credential', 'rotate', 'app', '--grace', '15s', '--api-key', '--json');
    expect(rotated.code, rotated.stderr).toBe(0);
    const fresh = JSON.parse(rotated.stdout) as { password: string; api_key: string; old_secret_until: string };
    expect(fresh.password).not.toBe(old.password);
    expect(fresh.api_key).not.toBe(old.api_key);

    expect(await login(old.password)).toBe(true);
    expect(await login(fresh.password)).toBe(true);
    expect((await apiClient(relay.ports.http!, old.api_key)('GET', '/v1/events')).status).toBe(200);
    expect((await apiClient(relay.ports.http!, fresh.api_key)('GET', '/v1/events')).status).toBe(200);
    expect(logLines.join('')).toMatch(/"credential":"app".*login with the password a rotation replaced/);
    expect(logLines.join('')).toMatch(/API call with a key a rotation replaced/);

    const during = await listed();
    expect(during.old_secret).toMatchObject({ grace_until: fresh.old_secret_until, active: true, logins: 2 });
    expect((await cli('credential', 'list')).stdout).toMatch(/works until \S+ \S+, 2 logins/);

    // Until the grace ends the old password still logs in (and is counted); then it is refused.
    let oldLogins = 2;
    await waitFor(async () => {
      if (!(await login(old.password))) return true;
      oldLogins++;
      return false;
    }, 'the old password to be refused after the grace');
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(fresh.old_secret_until));
    expect((await apiClient(relay.ports.http!, old.api_key)('GET', '/v1/events')).status).toBe(401);
    expect(await login(fresh.password)).toBe(true);
    expect((await apiClient(relay.ports.http!, fresh.api_key)('GET', '/v1/events')).status).toBe(200);

    const after = await listed();
    expect(after.old_secret).toMatchObject({ active: false, logins: oldLogins });
    expect((await cli('credential', 'list')).stdout).toMatch(new RegExp(`ended \\S+ \\S+, ${oldLogins} logins`));
  });

  it('refuses an unknown credential and a grace that is not a duration', async () => {
    expect((await cli('credential', 'rotate', 'nobody')).stderr).toMatch(/unknown credential nobody/);
    expect((await cli('credential', 'rotate', 'app', '--grace', 'soon')).stderr).toMatch(/"soon" is not a duration/);
  });
});
