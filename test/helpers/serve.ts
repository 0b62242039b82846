/**
 * `relay serve` as a real process on loopback for the fault tests: a config in a temp dir with
 * an implicit-TLS listener on a free port, a verified sender domain and a credential set up in
 * its database, and start/kill/restart helpers that wait for the listener.
 */
import net from 'node:net';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/load.js';
import { openStorage } from '../../src/queue/open.js';
import { spawnCli } from './cli.js';
import { addCredential, addSenderDomain, writeTestConfig, type ConfigOverrides } from './relay.js';
import { waitFor } from './wait.js';

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ServeSetup {
  configFile: string;
  dir: string;
  database: string;
  port: number;
  creds: { username: string; password: string };
}

/** Writes the config (merged over the test defaults) and sets up acme.test and the credential "app". */
export async function prepareServe(overrides: ConfigOverrides = {}): Promise<ServeSetup> {
  const port = await freePort();
  const configFile = writeTestConfig({ listeners: [{ name: 'smtps', host: '127.0.0.1', port, tls: 'implicit' }], ...overrides });
  const config = loadConfig(configFile);
  const storage = await openStorage(config);
  try {
    await addSenderDomain(storage, 'acme.test');
    const creds = await addCredential(storage, 'app', ['acme.test']);
    return { configFile, dir: path.dirname(configFile), database: config.database, port, creds };
  } finally {
    await storage.close();
  }
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });

export type ServeProcess = ReturnType<typeof spawnCli>;

/**
 * Starts `relay serve` and resolves once its listener accepts connections. A start that fails
 * or takes longer than `timeoutMs` (a loaded machine starts slowly) kills the process, so no
 * relay outlives its test.
 */
export async function startServe(setup: ServeSetup, timeoutMs = 60_000): Promise<ServeProcess> {
  const serve = spawnCli(['--config', setup.configFile, 'serve'], { cwd: setup.dir });
  let exited = false;
  void serve.exited.then(() => (exited = true));
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`relay serve exited: ${serve.output()}`);
        return listening(setup.port);
      },
      'relay serve to listen',
      timeoutMs,
    );
  } catch (err) {
    if (!exited) await kill(serve);
    throw new Error(`${(err as Error).message} (output: ${serve.output()})`);
  }
  return serve;
}

export async function kill(serve: ServeProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  serve.child.kill(signal);
  return serve.exited;
}

/** A client app's transport to the relay (implicit TLS, AUTH). */
export function transport(setup: ServeSetup, options: { pool?: boolean } = {}) {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port: setup.port,
    secure: true,
    auth: { user: setup.creds.username, pass: setup.creds.password },
    tls: { rejectUnauthorized: false },
    pool: options.pool ?? false,
    maxConnections: 1,
  });
  t.on('error', () => {});
  return t;
}
