/**
 * Postfix 3.7 + OpenDKIM + Dovecot SASL, the bench's point of comparison (`--server postfix|both`;
 * install them once with test/bench/postfix/setup.sh). Each scenario gets a private instance in a
 * temp directory of its own: Postfix with its own config, queue and data directories, run as
 * `master` in the foreground; a Dovecot that only serves SASL (AUTH PLAIN and LOGIN) to it; and
 * an OpenDKIM milter signing RSA-2048 relaxed/relaxed for the bench's sender domain. Postfix
 * listens on loopback with the certificates the relays get, STARTTLS (or implicit TLS) and AUTH
 * required, and hands every message to the bench sink as its relayhost, so "delivered" means what
 * it means for the relay. Its logs go to files in the directory, as the relay's do.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BenchEnv } from './env.js';
import { SENDER_DOMAIN } from './messages.js';
import { clearPeaks, cpuMsOf, processTree, statusMb, type RelayProcess } from './relay-process.js';

export interface PostfixInstance extends Omit<RelayProcess, 'pid'> {
  user: string;
  pass: string;
}

const MISSING = 'Postfix, OpenDKIM or Dovecot is not installed: run test/bench/postfix/setup.sh as root';
const USER = 'bench-app';
const SELECTOR = 'bench';
/** The DKIM key of each bench run: made once (RSA-2048 takes a moment), shared by its instances. */
const dkimKeys = new Map<BenchEnv, string>();

export async function startPostfix(env: BenchEnv, name: string): Promise<PostfixInstance> {
  // Its own directory, not under env.root (mode 0700): Dovecot's auth process and Postfix's
  // daemons run as unprivileged users and must reach their files and sockets.
  const dir = mkdtempSync(path.join(tmpdir(), `relay-bench-postfix-${name}-`));
  chmodSync(dir, 0o755);
  // Config apart from the queue and data directories: `postfix check` wants all of it owned by root.
  const config = path.join(dir, 'etc');
  const queue = path.join(dir, 'queue');
  mkdirSync(config);
  mkdirSync(queue);
  const pass = `pw-${Math.random().toString(36).slice(2)}`;
  const ports = { submission: await freePort(), smtps: await freePort() };
  const children: ChildProcess[] = [];
  // Postfix first, so no smtpd is still talking to its milter or auth service.
  const killAll = async () => {
    for (const child of [...children].reverse()) await kill(child);
  };
  try {
    const mainCf = {
      compatibility_level: '3.6',
      queue_directory: queue,
      data_directory: path.join(dir, 'data'),
      maillog_file: path.join(dir, 'maillog'),
      maillog_file_prefixes: dir,
      myhostname: 'postfix.bench',
      inet_interfaces: '127.0.0.1',
      inet_protocols: 'ipv4',
      // Nothing is delivered locally; everything goes to the sink, without DNS.
      mydestination: '',
      local_transport: 'error:no local delivery',
      alias_maps: '',
      alias_database: '',
      relayhost: `[127.0.0.1]:${env.sink.port}`,
      smtp_dns_support_level: 'disabled',
      // The sink offers no STARTTLS, so the relay delivers to it in plain text too.
      smtp_tls_security_level: 'none',
      smtpd_peername_lookup: 'no',
      smtpd_tls_security_level: 'encrypt',
      smtpd_tls_auth_only: 'yes',
      smtpd_tls_chain_files: env.cert.flatMap((pair) => [pair.key, pair.cert]).join(', '),
      smtpd_sasl_auth_enable: 'yes',
      smtpd_sasl_type: 'dovecot',
      smtpd_sasl_path: 'private/auth',
      smtpd_client_restrictions: '',
      smtpd_helo_restrictions: '',
      // The relay's sender-domain policy: the credential may send for the bench domain only.
      smtpd_sender_login_maps: `inline:{ @${SENDER_DOMAIN}=${USER} }`,
      smtpd_sender_restrictions: 'reject_authenticated_sender_login_mismatch',
      smtpd_relay_restrictions: 'permit_sasl_authenticated, reject',
      smtpd_recipient_restrictions: '',
      smtpd_milters: `unix:${path.join(dir, 'opendkim.sock')}`,
      // A milter that fails fails the submission, so an unsigned message cannot count as accepted.
      milter_default_action: 'tempfail',
    };
    writeFileSync(
      path.join(config, 'main.cf'),
      Object.entries(mainCf)
        .map(([key, value]) => `${key} = ${value}\n`)
        .join(''),
    );
    // The stock master.cf's services this setup uses, none chrooted (so no copies of files in the queue).
    const services = [
      `${ports.submission} inet n - n - - smtpd`,
      `${ports.smtps} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes`,
      'cleanup unix n - n - 0 cleanup',
      'qmgr unix n - n 300 1 qmgr',
      'tlsmgr unix - - n 1000? 1 tlsmgr',
      'rewrite unix - - n - - trivial-rewrite',
      'bounce unix - - n - 0 bounce',
      'defer unix - - n - 0 bounce',
      'trace unix - - n - 0 bounce',
      'verify unix - - n - 1 verify',
      'flush unix n - n 1000? 0 flush',
      'proxymap unix - - n - - proxymap',
      'smtp unix - - n - - smtp',
      'relay unix - - n - - smtp',
      'error unix - - n - - error',
      'retry unix - - n - - error',
      'discard unix - - n - - discard',
      'anvil unix - - n - 1 anvil',
      'scache unix - - n - 1 scache',
      'postlog unix-dgram n - n - 1 postlogd',
    ];
    writeFileSync(path.join(config, 'master.cf'), services.map((line) => `${line}\n`).join(''));
    // Creates the queue's directories with their owners and modes.
    execFileSync('postfix', ['-c', config, 'check']);

    // The relay verifies a password once and then caches the login, so a login costs it almost
    // nothing; a PLAIN passwd-file entry keeps Dovecot's check as cheap. Readable by Dovecot's
    // auth process (user dovecot); a throwaway credential on loopback.
    writeFileSync(path.join(dir, 'passwd'), `${USER}:{PLAIN}${pass}\n`, { mode: 0o644 });
    writeFileSync(
      path.join(dir, 'dovecot.conf'),
      `base_dir = ${dir}/dovecot
state_dir = ${dir}/dovecot-state
log_path = ${dir}/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = ${dir}/passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=/nonexistent
}
service auth {
  unix_listener ${queue}/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
`,
    );
    children.push(daemon(dir, 'dovecot', ['-F', '-c', path.join(dir, 'dovecot.conf')]));

    // RequireSafeKeys: OpenDKIM refuses a key with a world-writable directory above it, as /tmp is.
    writeFileSync(
      path.join(dir, 'opendkim.conf'),
      `Syslog no
Mode s
Domain ${SENDER_DOMAIN}
Selector ${SELECTOR}
KeyFile ${dkimKey(env)}
RequireSafeKeys false
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
Socket local:${dir}/opendkim.sock
UMask 000
`,
    );
    children.push(daemon(dir, 'opendkim', ['-f', '-x', path.join(dir, 'opendkim.conf')]));
    await waitFor(() => existsSync(path.join(dir, 'opendkim.sock')) && existsSync(path.join(queue, 'private/auth')), children, dir);

    const daemonDirectory = execFileSync('postconf', ['-c', config, '-h', 'daemon_directory'], { encoding: 'utf8' }).trim();
    // master without -w stays in the foreground: a child of this process, stopped by SIGTERM.
    children.push(daemon(dir, 'postfix', ['-c', config], path.join(daemonDirectory, 'master')));
    await waitFor(() => connects(ports.submission), children, dir);
  } catch (err) {
    // The directory stays, with the daemons' logs.
    await killAll();
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`postfix bench: ${MISSING}`, { cause: err });
    throw err;
  }

  // CPU: each daemon's whole process tree. Postfix's master forks smtpd, cleanup, smtp and the
  // rest, and they exit (max_idle, max_use) while it runs; an exited child's CPU time moves into
  // its parent's cutime/cstime once the parent reaps it, which Postfix's and Dovecot's masters
  // do at once. So live processes' utime+stime plus every process's reaped children's is the
  // instance's CPU since it started, whichever processes came and went. OpenDKIM is one process
  // with threads. Memory is summed over the live processes (shared pages counted in each).
  const roots = children.map((child) => child.pid!);
  const processes = () => roots.flatMap(processTree);
  return {
    ports,
    user: USER,
    pass,
    cpuMs: () => processes().reduce((sum, p) => sum + cpuMsOf(p, true), 0),
    rssMb: () => statusMb(processes(), 'VmRSS'),
    peakRssMb: () => statusMb(processes(), 'VmHWM'),
    resetPeak: () => clearPeaks(processes()),
    async stop() {
      await killAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The bench run's DKIM key, made by opendkim-genkey the first time it is needed. */
function dkimKey(env: BenchEnv): string {
  let key = dkimKeys.get(env);
  if (!key) {
    const keyDir = path.join(env.root, 'opendkim');
    mkdirSync(keyDir, { recursive: true });
    execFileSync('opendkim-genkey', ['-b', '2048', '-d', SENDER_DOMAIN, '-s', SELECTOR, '-D', keyDir]);
    key = path.join(keyDir, `${SELECTOR}.private`);
    dkimKeys.set(env, key);
  }
  return key;
}

/** A daemon in the foreground, its output in DIR/NAME.out. */
function daemon(dir: string, name: string, args: string[], command = name): ChildProcess {
  const out = openSync(path.join(dir, `${name}.out`), 'w');
  const child = spawn(command, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  child.on('error', () => {});
  return child;
}

async function waitFor(ready: () => boolean | Promise<boolean>, children: ChildProcess[], dir: string): Promise<void> {
  for (let waited = 0; waited < 30_000; waited += 50) {
    const exited = children.find((child) => child.pid === undefined || child.exitCode !== null || child.signalCode !== null);
    if (exited)
      throw new Error(
        exited.pid === undefined
          ? `postfix bench: cannot start ${exited.spawnfile}. ${MISSING}`
          : `postfix bench: ${exited.spawnfile} exited with ${exited.exitCode}; see ${dir}`,
      );
    if (await ready()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`postfix bench: not ready within 30 s; see ${dir}`);
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
