/**
 * `npm start` as an operator runs it, a real npm process: SIGTERM to npm reaches `relay serve`,
 * which drains and exits, instead of being left running without its parent.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assertBuilt, ROOT } from './helpers/cli.js';
import { writeTestConfig } from './helpers/relay.js';
import { freePort } from './helpers/serve.js';
import { waitFor } from './helpers/wait.js';

let configFile: string | undefined;

/** Processes started with our config, left over if the relay was orphaned. */
function relaysOf(config: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`RELAY_CONFIG=${config}`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

afterEach(() => {
  if (configFile) for (const pid of relaysOf(configFile)) process.kill(pid, 'SIGKILL');
  configFile = undefined;
});

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });

describe('npm start', { timeout: 60_000 }, () => {
  it.skipIf(process.platform !== 'linux')('passes SIGTERM to relay serve, which stops: nothing is left listening', async () => {
    assertBuilt();
    const port = await freePort();
    configFile = writeTestConfig({ listeners: [{ name: 'smtps', host: '127.0.0.1', port, tls: 'implicit' }], log: { level: 'info' } });
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: { ...process.env, RELAY_CONFIG: configFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.on('data', (chunk: Buffer) => (output += chunk));
    npm.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const exited = new Promise<void>((resolve) => npm.on('exit', () => resolve()));
    await waitFor(() => output.includes('relay started'), `relay serve to start under npm (output: ${output})`, 30_000);
    expect(await accepts(port)).toBe(true);

    npm.kill('SIGTERM');
    await exited;
    await waitFor(async () => !(await accepts(port)), 'the relay to stop listening after npm got SIGTERM');
    await waitFor(() => relaysOf(path.resolve(configFile!)).length === 0, 'no relay process left');
    expect(output).toContain('relay stopped');
  });
});
