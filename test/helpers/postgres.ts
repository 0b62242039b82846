/**
 * A real PostgreSQL for tests. RELAY_TEST_PG_URL names a server to use; without it, a private
 * cluster is initialised once in os.tmpdir()/relay-test-pg-<uid> and started on a free loopback
 * port (as the `postgres` OS user when running as root, since postgres refuses to run as root),
 * then reused by every test file and later run while it keeps running. Vitest's fork workers
 * start together, so the check-init-start sequence runs under a mkdir lock. The server is a
 * daemon (pg_ctl), so it never holds vitest open; CI machines are thrown away with it.
 *
 * createTestDatabase() gives each suite its own database and drops it afterwards.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

let server: Promise<string> | undefined;
let databases = 0;

/** A new, empty database on the test server; drop() removes it (closing any connection left). */
export async function createTestDatabase(): Promise<TestDatabase> {
  server ??= process.env.RELAY_TEST_PG_URL ? Promise.resolve(process.env.RELAY_TEST_PG_URL) : startPrivateServer();
  const adminUrl = await server;
  const name = `relay_test_${process.pid}_${++databases}_${randomBytes(3).toString('hex')}`;
  try {
    await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  } catch (err) {
    const where = new URL(adminUrl);
    if (where.password) where.password = '***';
    throw new Error(`PostgreSQL test server ${where}: could not create a database: ${(err as Error).message}`, { cause: err });
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---- The private cluster ------------------------------------------------------------------------

const BIN_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/local/bin', '/usr/bin'];
const LOCK_WAIT_MS = 120_000;

function pgBinary(name: string): string {
  for (const dir of BIN_DIRS) {
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  throw new Error(`PostgreSQL test server: ${name} not found in ${BIN_DIRS.join(', ')} (install PostgreSQL 15, or set RELAY_TEST_PG_URL)`);
}

interface Cluster {
  dir: string;
  data: string;
  log: string;
  /** The OS user to run postgres as when we are root (postgres will not run as root). */
  asUser: { name: string; uid: number; gid: number } | undefined;
}

function cluster(): Cluster {
  const uid = process.getuid?.() ?? 0;
  const dir = path.join(tmpdir(), `relay-test-pg-${uid}`);
  return { dir, data: path.join(dir, 'data'), log: path.join(dir, 'server.log'), asUser: uid === 0 ? postgresUser() : undefined };
}

function postgresUser(): { name: string; uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('PostgreSQL test server: running as root but there is no `postgres` OS user to run the server as');
  const [, , uid, gid] = line.split(':');
  return { name: 'postgres', uid: Number(uid), gid: Number(gid) };
}

/** Runs a PostgreSQL program, as the postgres user when we are root. */
async function pgRun(c: Cluster, program: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const file = pgBinary(program);
  const [cmd, cmdArgs] = c.asUser ? ['runuser', ['-u', c.asUser.name, '--', file, ...args]] : [file, args];
  return run(cmd, cmdArgs, { encoding: 'utf8', timeout: 120_000 });
}

function describeFailure(err: unknown): string {
  const e = err as { stderr?: string; stdout?: string; message?: string };
  return [e.stderr, e.stdout].filter(Boolean).join('\n').trim() || String(e.message);
}

function logTail(c: Cluster): string {
  try {
    return readFileSync(c.log, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no server log)';
  }
}

async function startPrivateServer(): Promise<string> {
  const c = cluster();
  mkdirSync(c.dir, { recursive: true, mode: 0o700 });
  if (c.asUser) chownSync(c.dir, c.asUser.uid, c.asUser.gid);
  const release = await lock(`${c.dir}.lock`);
  try {
    const port = (await runningPort(c)) ?? (await initAndStart(c));
    return `postgres://postgres@127.0.0.1:${port}/postgres`;
  } finally {
    release();
  }
}

/** The port of the cluster's server if it is up and answering. */
async function runningPort(c: Cluster): Promise<number | undefined> {
  const pidFile = path.join(c.data, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  // postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
  const port = Number(readFileSync(pidFile, 'utf8').split('\n')[3]);
  if (!Number.isInteger(port) || port <= 0) return undefined;
  try {
    await pgRun(c, 'pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(port), '-t', '5']);
    return port;
  } catch {
    return undefined;
  }
}

async function initAndStart(c: Cluster): Promise<number> {
  if (!existsSync(path.join(c.data, 'PG_VERSION'))) {
    rmSync(c.data, { recursive: true, force: true });
    try {
      await pgRun(c, 'initdb', ['-D', c.data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C']);
    } catch (err) {
      const who = c.asUser ? ' (the postgres user must be able to reach it: set TMPDIR, or RELAY_TEST_PG_URL)' : '';
      throw new Error(`PostgreSQL test server: initdb into ${c.data} failed${who}:\n${describeFailure(err)}`);
    }
  }
  // A stale server still holding the directory (e.g. answering on no port) is stopped first.
  await pgRun(c, 'pg_ctl', ['-D', c.data, '-m', 'fast', 'stop']).catch(() => undefined);
  // The free port can be taken between the probe and the bind: try a few.
  let failure = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const options = [
      `-p ${port}`,
      `-c listen_addresses=127.0.0.1`,
      `-c unix_socket_directories=${c.dir}`,
      `-c max_connections=300`,
      `-c synchronous_commit=on`,
      // Statement counts for the benchmark's database load per message.
      `-c shared_preload_libraries=pg_stat_statements`,
    ].join(' ');
    if (c.asUser) writeFileSync(c.log, '');
    if (c.asUser) chownSync(c.log, c.asUser.uid, c.asUser.gid);
    try {
      await pgRun(c, 'pg_ctl', ['-D', c.data, '-l', c.log, '-w', '-t', '60', '-o', options, 'start']);
      return port;
    } catch (err) {
      failure = `${describeFailure(err)}\n--- ${c.log} ---\n${logTail(c)}`;
    }
  }
  throw new Error(`PostgreSQL test server: could not start the cluster in ${c.data}:\n${failure}`);
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * A lock shared by processes: a directory holding the holder's pid, put in place by an atomic
 * rename, so a lock left by a process that died is broken instead of waited on.
 */
async function lock(dir: string): Promise<() => void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    const mine = `${dir}.${process.pid}.${randomBytes(3).toString('hex')}`;
    mkdirSync(mine);
    writeFileSync(path.join(mine, 'pid'), String(process.pid));
    try {
      renameSync(mine, dir);
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      rmSync(mine, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
    if (holderIsDead(dir)) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`PostgreSQL test server: ${dir} still locked after ${LOCK_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function holderIsDead(dir: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(dir, 'pid'), 'utf8'));
  } catch {
    return false; // released meanwhile
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
