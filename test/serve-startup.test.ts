/**
 * `relay serve` as a real process when it cannot start: a listener that cannot bind (address in
 * use, no such address, no permission) and a configured certificate that is missing or does not
 * match its key each give one line naming what failed and exit 1; a self-signed pair is made
 * only when the config names no certificate.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import selfsigned from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN, runCli, type CliResult } from './helpers/cli.js';
import { writeTestConfig, type ConfigOverrides } from './helpers/relay.js';
import { freePort, kill, startServe } from './helpers/serve.js';

let occupied: net.Server;
let occupiedPort: number;

beforeAll(async () => {
  assertBuilt();
  occupied = net.createServer();
  await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
  occupiedPort = (occupied.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => occupied?.close(resolve));
});

/** Runs `relay serve` on a config with one implicit-TLS listener; it is expected to exit by itself. */
async function serve(listener: { host?: string; port: number }, overrides: ConfigOverrides = {}): Promise<CliResult & { dir: string }> {
  const configFile = writeTestConfig({
    listeners: [{ name: 'smtps', host: listener.host ?? '127.0.0.1', port: listener.port, tls: 'implicit' }],
    ...overrides,
  });
  const dir = path.dirname(configFile);
  return { ...(await runCli(['--config', configFile, 'serve'], { cwd: dir })), dir };
}

function expectOneLine(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(1);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('a listener that cannot bind', () => {
  it('is named with its port when the address is in use, and serve exits 1', async () => {
    const result = await serve({ port: occupiedPort });
    expectOneLine(
      result,
      new RegExp(`^relay: cannot listen on 127\\.0\\.0\\.1:${occupiedPort} \\(listener "smtps"\\): the address is already in use`),
    );
  });

  it('is named when the http listener cannot bind', async () => {
    const result = await serve({ port: await freePort() }, { http: { host: '127.0.0.1', port: occupiedPort } });
    expectOneLine(
      result,
      new RegExp(`^relay: cannot listen on 127\\.0\\.0\\.1:${occupiedPort} \\(listener "http"\\): the address is already in use`),
    );
  });

  it('is named when the address does not exist on this machine', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never assigned to a local interface.
    const port = await freePort();
    const result = await serve({ host: '192.0.2.1', port });
    expectOneLine(result, new RegExp(`^relay: cannot listen on 192\\.0\\.2\\.1:${port} \\(listener "smtps"\\): no such address`));
  });

  // Root binds low ports through CAP_NET_BIND_SERVICE: as root the relay runs without that
  // capability (setpriv drops it from the bounding set), so it is refused as a normal user is.
  const unprivilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  const asRoot = process.getuid?.() === 0;
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file));
  it.skipIf(unprivilegedStart === 0 || (asRoot && !setpriv))(
    'is named with the fix when the port needs privileges it does not have',
    async () => {
      const port = unprivilegedStart - 1;
      const configFile = writeTestConfig({ listeners: [{ name: 'smtps', host: '127.0.0.1', port, tls: 'implicit' }] });
      const dir = path.dirname(configFile);
      let command = process.execPath;
      let args = [BIN, '--config', configFile, 'serve'];
      if (asRoot) {
        args = ['--bounding-set=-net_bind_service', '--inh-caps=-net_bind_service', '--', command, ...args];
        command = setpriv!;
      }
      const result = await new Promise<CliResult>((resolve, reject) => {
        const child = spawn(command, args, { cwd: dir });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      expectOneLine(
        result,
        new RegExp(`^relay: cannot listen on 127\\.0\\.0\\.1:${port} \\(listener "smtps"\\): permission denied.*cap_net_bind_service`),
      );
    },
  );
});

describe('the TLS certificate', () => {
  it('named in the config but missing is an error naming both files; nothing is generated in its place', async () => {
    const result = await serve({ port: await freePort() }, { tls: { cert: 'certs/relay.crt', key: 'certs/relay.key' } });
    const cert = path.join(result.dir, 'certs/relay.crt');
    const key = path.join(result.dir, 'certs/relay.key');
    expectOneLine(result, /^relay: tls: /);
    expect(result.stderr).toContain(cert);
    expect(result.stderr).toContain(key);
    expect(existsSync(cert) || existsSync(key)).toBe(false);
    expect(readdirSync(result.dir).filter((f) => f.startsWith('self-signed'))).toEqual([]);
  });

  it('named with a key that is not its own is an error naming both files', async () => {
    const port = await freePort();
    const configFile = writeTestConfig({
      listeners: [{ name: 'smtps', host: '127.0.0.1', port, tls: 'implicit' }],
      tls: { cert: 'a.crt', key: 'b.key' },
    });
    const dir = path.dirname(configFile);
    const [a, b] = await Promise.all(
      [1, 2].map(() => selfsigned.generate([{ name: 'commonName', value: 'relay.test' }], { keySize: 2048 })),
    );
    writeFileSync(path.join(dir, 'a.crt'), a!.cert);
    writeFileSync(path.join(dir, 'b.key'), b!.private);
    const result = await runCli(['--config', configFile, 'serve'], { cwd: dir });
    expectOneLine(result, /^relay: tls: .* do not match/);
    expect(result.stderr).toContain(path.join(dir, 'a.crt'));
    expect(result.stderr).toContain(path.join(dir, 'b.key'));
  });

  it('is generated self-signed next to the database when the config names none, and kept across restarts', async () => {
    const port = await freePort();
    const configFile = writeTestConfig({
      listeners: [{ name: 'smtps', host: '127.0.0.1', port, tls: 'implicit' }],
      database: './data/relay.db',
    });
    const setup = { configFile, dir: path.dirname(configFile), port, database: '', creds: { username: '', password: '' } };
    const fingerprint = () => new X509Certificate(readFileSync(path.join(setup.dir, 'data/self-signed.crt'))).fingerprint256;
    const first = await startServe(setup);
    const before = fingerprint();
    expect((statSync(path.join(setup.dir, 'data/self-signed.key')).mode & 0o777).toString(8)).toBe('600');
    await kill(first);
    const second = await startServe(setup);
    expect(fingerprint()).toBe(before);
    await kill(second);
  });
});
