/**
 * Relay relies on parts of smtp-server and nodemailer that are not their documented API: a
 * patched SMTPConnection#send, private connection state (`_ready`, `_closing`, `_closed`,
 * `_supportedExtensions`, `_envelope`, `_socket`), and behaviour such as "a 421 closes the session" and
 * "options are read per session". Both packages are pinned exactly; this file checks each of
 * those parts against real peers on loopback, so an upgrade that changes one fails here, by
 * name, instead of in production. The adapters are src/submission/smtp-server-internals.ts and
 * src/delivery/smtp-connection-internals.ts; each names the upstream option that would replace
 * its use.
 */
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { TLSSocket } from 'node:tls';
import SMTPConnection, { type SMTPConnectionOptions, type SMTPConnectionSendInfo, type SMTPEnvelope } from 'nodemailer/lib/smtp-connection';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection as ServerSideConnection } from 'smtp-server/lib/smtp-connection.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { offeredExtensions, rcptRefusals, tlsSocketOf } from '../src/delivery/smtp-connection-internals.js';
import {
  closeWith421,
  greetAtOnce,
  isGreeted,
  useExactEnhancedCodes,
  type ServerConnection,
} from '../src/submission/smtp-server-internals.js';
import { dkimBody, generateCanonicalizedHeader, tools } from '../src/signing/mailauth.js';
import { ROOT } from './helpers/cli.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { waitFor } from './helpers/wait.js';

const servers: SMTPServer[] = [];
const clients: { close(): void }[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

/** An smtp-server on a free loopback port, closed after the test. */
async function listen(options: SMTPServerOptions): Promise<{ server: SMTPServer; port: number }> {
  const server = new SMTPServer({ logger: false, closeTimeout: 100, ...options });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, port: (server.server.address() as AddressInfo).port };
}

/** A receiving MTA as Relay's delivery meets one: no AUTH, plain SMTP unless `starttls`. */
const mx = (options: SMTPServerOptions & { starttls?: boolean } = {}) => {
  const { starttls, ...rest } = options;
  return listen({ authOptional: true, disabledCommands: starttls ? ['AUTH'] : ['AUTH', 'STARTTLS'], ...rest });
};

async function rawClient(port: number) {
  const connected = await RawSmtpClient.connect(port);
  clients.push(connected.client);
  return connected;
}

/** nodemailer's SMTPConnection, connected, as src/delivery/pool.ts opens it. */
async function smtpConnection(port: number, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const connection = new SMTPConnection({ host: '127.0.0.1', port, logger: false, tls: { rejectUnauthorized: false }, ...options });
  connection.on('error', () => {});
  clients.push(connection);
  await new Promise<void>((resolve, reject) => connection.connect((err) => (err ? reject(err) : resolve())));
  return connection;
}

type SendResult =
  | { info: SMTPConnectionSendInfo; err?: undefined }
  | { err: Error & { rejectedErrors?: Error[]; responseCode?: number }; info?: undefined };

const send = (connection: SMTPConnection, envelope: SMTPEnvelope, body: string) =>
  new Promise<SendResult>((resolve) => connection.send(envelope, body, (err, info) => resolve(err ? { err } : { info })));

const refusal = (responseCode: number, text: string) => Object.assign(new Error(text), { responseCode });

/** The one connection of a server that has one client. */
const onlyConnection = (server: SMTPServer): ServerConnection => {
  expect(server.connections.size).toBe(1);
  return [...server.connections][0]!;
};

describe('pinned versions', () => {
  const manifest = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { version: string; dependencies: Record<string, string> };
  it.each(['smtp-server', 'nodemailer', 'mailauth'])('%s is pinned to one exact version, the one installed', (name) => {
    const pinned = manifest(path.join(ROOT, 'package.json')).dependencies[name];
    expect(pinned, `package.json must pin ${name} exactly (Relay uses its internals)`).toMatch(/^\d+\.\d+\.\d+$/);
    expect(manifest(path.join(ROOT, 'node_modules', name, 'package.json')).version).toBe(pinned);
  });
});

describe('mailauth: the DKIM building blocks src/signing/mailauth.ts loads', () => {
  it('exports the header tools, the header canonicalization and the body hasher', () => {
    expect(typeof tools.defaultDKIMFieldNames).toBe('string');
    expect([tools.parseHeaders, tools.getSigningHeaderLines, tools.formatSignatureHeaderLine].map((f) => typeof f)).toEqual([
      'function',
      'function',
      'function',
    ]);
    expect(typeof generateCanonicalizedHeader).toBe('function');
    expect(typeof dkimBody).toBe('function');
  });

  it('the relaxed body hasher gives one hash whether the body comes whole or in pieces of whole lines (dkim.ts feeds it so)', () => {
    const body = Buffer.from('Hi  there \r\n\tindented\r\n\r\nlast line without end');
    const hash = (pieces: Buffer[]) => {
      const hasher = dkimBody('relaxed', 'sha256', false);
      for (const piece of pieces) hasher.update(piece);
      return hasher.digest('base64');
    };
    const lineEnds = [12, 23, 25];
    const pieces = [0, ...lineEnds].map((start, i) => body.subarray(start, [...lineEnds, body.length][i]));
    expect(Buffer.concat(pieces).equals(body)).toBe(true);
    expect(hash(pieces)).toBe(hash([body]));
  });
});

// Runs before anything in this file patches SMTPConnection#send (the patch is process-wide).
describe('smtp-server: SMTPConnection#send and useExactEnhancedCodes (src/submission/smtp-server-internals.ts)', () => {
  /** Offers STARTTLS and AUTH on a plain connection, as Relay's 587 listener does. */
  const starttlsListener = () =>
    listen({ hideENHANCEDSTATUSCODES: false, onAuth: (_auth, _session, callback) => callback(null, { user: 'app' }) });
  /** Refuses MAIL FROM as Relay's policy does (text starting with its enhanced code) or without a code. */
  const policyListener = () =>
    listen({
      hideENHANCEDSTATUSCODES: false,
      authOptional: true,
      onMailFrom: (address, _session, callback) =>
        callback(address.address.startsWith('policy') ? refusal(550, '5.7.1 sender domain not verified') : refusal(550, 'no such sender')),
    });
  const authBeforeStarttls = async () => {
    const { client } = await rawClient((await starttlsListener()).port);
    await client.command('EHLO client.test');
    const reply = await client.command('AUTH PLAIN AGFwcABwYXNz');
    return `${reply.code} ${reply.text}`;
  };

  it('upstream, unpatched: a default enhanced code goes in front of the text, and AUTH before STARTTLS is 538', async () => {
    // What the patch is for. If this fails, smtp-server changed how it words replies: check
    // whether the patch is still needed, and what it must do now.
    expect(await authBeforeStarttls()).toBe('538 5.7.0 Error: Must issue a STARTTLS command first');
    const { server, port } = await policyListener();
    const { client } = await rawClient(port);
    await client.command('EHLO client.test');
    const refused = await client.command('MAIL FROM:<policy@acme.test>');
    expect(`${refused.code} ${refused.text}`).toBe('550 5.1.1 5.7.1 sender domain not verified');

    // The patch replaces SMTPConnection.prototype.send, the class of every session, and relies
    // on send's `context` false meaning "no enhanced code".
    const connection = onlyConnection(server);
    expect(connection).toBeInstanceOf(ServerSideConnection);
    expect(Object.prototype.hasOwnProperty.call(ServerSideConnection.prototype, 'send')).toBe(true);
    connection.send(250, 'as written', false);
    expect(await client.read()).toMatchObject({ code: 250, text: 'as written' });
  });

  it('patched: a reply that starts with an enhanced code goes out as written, others keep the default, 538 becomes 530 5.7.0', async () => {
    useExactEnhancedCodes();
    useExactEnhancedCodes(); // patches once per process, however often it is called
    expect(await authBeforeStarttls()).toBe('530 5.7.0 Must issue a STARTTLS command first');
    const { client } = await rawClient((await policyListener()).port);
    await client.command('EHLO client.test');
    const policy = await client.command('MAIL FROM:<policy@acme.test>');
    expect(`${policy.code} ${policy.text}`).toBe('550 5.7.1 sender domain not verified');
    const plain = await client.command('MAIL FROM:<other@acme.test>');
    expect(`${plain.code} ${plain.text}`).toBe('550 5.1.1 no such sender');
  });
});

/** The first line a server sends on a new plain connection. */
function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    clients.push({ close: () => socket.destroy() });
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n')) resolve(text.slice(0, text.indexOf('\r\n')));
    });
    socket.on('error', reject);
  });
}

describe('smtp-server: the early-talker pause that greetAtOnce removes (src/submission/smtp-server-internals.ts)', () => {
  it('upstream, SMTPConnection#init holds the greeting on a 100 ms timer; a server marked by greetAtOnce greets without one', async () => {
    const held = await listen({ disableReverseLookup: true });
    const atOnce = await listen({ disableReverseLookup: true });
    greetAtOnce(atOnce.server);
    // Only the global setTimeout is faked: sockets keep their own timers.
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      let heldGreeted = false;
      const heldGreeting = firstLine(held.port).then((line) => ((heldGreeted = true), line));
      expect(await firstLine(atOnce.port)).toMatch(/^220 /);
      expect(heldGreeted).toBe(false);
      // Its timer is set when the server takes the connection.
      while (held.server.connections.size === 0) await new Promise((resolve) => setImmediate(resolve));
      await vi.advanceTimersByTimeAsync(100);
      expect(await heldGreeting).toMatch(/^220 /);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('smtp-server: what coalesceReplies reads (src/submission/smtp-server-internals.ts)', () => {
  it('a connection writes its replies to _socket, the TLS socket on an implicit-TLS listener, and reads its server options from _server', async () => {
    const { server, port } = await listen({ secure: true, authOptional: true, disableReverseLookup: true });
    server.on('error', () => {});
    const { client } = await RawSmtpClient.connect(port, { implicitTls: true });
    clients.push(client);
    await client.command('EHLO client.test');
    const connection = onlyConnection(server) as unknown as { _socket: unknown; _server: { options: unknown } };
    expect(connection._socket).toBeInstanceOf(TLSSocket);
    expect(connection._server.options).toBe(server.options);
    // The session's replies go through that socket: one written there reaches the client.
    (connection._socket as TLSSocket).write('250 2.0.0 written to _socket\r\n');
    expect(await client.read()).toMatchObject({ code: 250, text: '2.0.0 written to _socket' });
  });
});

describe('smtp-server: connection state and 421 (src/submission/smtp-server-internals.ts, drain.ts, step-deadline.ts)', () => {
  it('isGreeted (_ready, _closing, _closed) is false in onConnect, true once greeted, false once a 421 closed the session', async () => {
    let admit!: () => void;
    let inOnConnect!: (session: SMTPServerSession) => void;
    const connecting = new Promise<SMTPServerSession>((resolve) => (inOnConnect = resolve));
    const { server, port } = await mx({
      onConnect: (session, callback) => {
        admit = () => callback();
        inOnConnect(session);
      },
    });
    const greeted = RawSmtpClient.connect(port);
    const session = await connecting;
    const connection = onlyConnection(server);
    // step-deadline.ts finds a session's connection by the id the handlers see.
    expect(connection.id).toBe(session.id);
    expect(isGreeted(connection)).toBe(false);

    admit();
    const { client, greeting } = await greeted;
    clients.push(client);
    expect(greeting.code).toBe(220);
    expect(isGreeted(connection)).toBe(true);

    closeWith421(connection, '4.3.2 service shutting down, try again later');
    expect(isGreeted(connection)).toBe(false);
    expect(server.connections.has(connection)).toBe(false);
    expect(await client.read()).toMatchObject({ code: 421, text: '4.3.2 service shutting down, try again later' });
    await waitFor(() => client.closed, 'smtp-server to close the session after its 421');
    await waitFor(() => (connection as unknown as { _closed: boolean })._closed, 'the connection to record that it closed');
    expect(isGreeted(connection)).toBe(false);
  });

  it('a session refused in onConnect is not greeted and leaves server.connections', async () => {
    const { server, port } = await mx({ onConnect: (_session, callback) => callback(refusal(421, '4.3.2 service shutting down')) });
    const { client, greeting } = await rawClient(port);
    expect(greeting.code).toBe(421);
    await waitFor(() => client.closed, 'the refused session to close');
    expect(server.connections.size).toBe(0);
  });

  it('session.envelope.mailFrom marks a transaction in progress until its end (drain.ts)', async () => {
    const { server, port } = await mx();
    const { client } = await rawClient(port);
    await client.command('EHLO client.test');
    const connection = onlyConnection(server);
    expect(connection.session.envelope.mailFrom).toBeFalsy();
    expect((await client.command('MAIL FROM:<app@acme.test>')).code).toBe(250);
    expect(connection.session.envelope.mailFrom).toMatchObject({ address: 'app@acme.test' });
    expect((await client.command('RSET')).code).toBe(250);
    expect(connection.session.envelope.mailFrom).toBeFalsy();
  });

  it('server.options is read per session, so a reload can change size and socketTimeout in place (server.ts)', async () => {
    const { server, port } = await mx({ size: 1000 });
    server.options.size = 4321;
    server.options.socketTimeout = 300;
    const { client } = await rawClient(port);
    const ehlo = await client.command('EHLO client.test');
    expect(ehlo.lines.map((line) => line.slice(4))).toContain('SIZE 4321');
    // The idle timeout applies to the new session: smtp-server ends it with a 421.
    expect((await client.read()).code).toBe(421);
  });

  it('server.server is the listening net.Server, which sees every connection (relay.ts metrics and readiness)', async () => {
    const { server, port } = await mx();
    expect(server.server).toBeInstanceOf(net.Server);
    expect(server.server.listening).toBe(true);
    const seen = new Promise<void>((resolve) => server.server.once('connection', () => resolve()));
    await rawClient(port);
    await seen;
  });
});

describe('nodemailer SMTPConnection (src/delivery/smtp-connection-internals.ts, pool.ts)', () => {
  it('offeredExtensions (_supportedExtensions) lists the EHLO extensions once connected, after STARTTLS too', async () => {
    const plain = await smtpConnection((await mx({ size: 5000 })).port, { ignoreTLS: true });
    expect(offeredExtensions(plain)).toEqual(expect.arrayContaining(['SMTPUTF8', 'PIPELINING', '8BITMIME', 'SIZE']));

    const withoutUtf8 = await smtpConnection((await mx({ hideSMTPUTF8: true })).port, { ignoreTLS: true });
    expect(offeredExtensions(withoutUtf8)).not.toContain('SMTPUTF8');
    expect(offeredExtensions(withoutUtf8)).toContain('PIPELINING');

    const upgraded = await smtpConnection((await mx({ starttls: true })).port, { opportunisticTLS: true });
    expect(upgraded.secure).toBe(true);
    expect(offeredExtensions(upgraded)).toContain('SMTPUTF8');
  });

  it('tlsSocketOf (_socket) is the TLS socket after STARTTLS, with the peer certificate; undefined in cleartext', async () => {
    const socket = tlsSocketOf(await smtpConnection((await mx({ starttls: true })).port, { opportunisticTLS: true }));
    expect(socket?.getProtocol()).toMatch(/^TLSv1\.[23]$/);
    expect(socket?.getPeerCertificate(true).raw).toBeInstanceOf(Buffer);
    expect(tlsSocketOf(await smtpConnection((await mx()).port, { ignoreTLS: true }))).toBeUndefined();
  });

  it('stage and destroyed say whether a session can be reused (pool.ts)', async () => {
    const connection = await smtpConnection((await mx()).port, { ignoreTLS: true });
    expect(connection.stage).toBe('connected');
    expect(connection.destroyed).toBe(false);
    const ended = new Promise<void>((resolve) => connection.once('end', () => resolve()));
    connection.close();
    await ended;
    expect(connection.destroyed).toBe(true);
  });

  describe.each([
    { pipelining: true, label: 'with PIPELINING' },
    { pipelining: false, label: 'without PIPELINING' },
  ])('rcptRefusals (_envelope.rejectedErrors), $label', ({ pipelining }) => {
    const refusingMx = () =>
      mx({
        hidePIPELINING: !pipelining,
        onRcptTo: (address, _session, callback) => callback(address.address.startsWith('gone') ? refusal(550, 'user unknown') : undefined),
        onData: (stream, session, callback) => {
          stream.resume();
          stream.on('end', () =>
            callback(session.envelope.rcptTo.some((r) => r.address.startsWith('defer')) ? refusal(451, 'try again later') : null),
          );
        },
      });
    const body = 'Subject: test\r\n\r\nhello\r\n';

    it('a failure after the message leaves the RCPT refusals only in the envelope state', async () => {
      const connection = await smtpConnection((await refusingMx()).port, { ignoreTLS: true });
      const { err } = await send(connection, { from: 'app@acme.test', to: ['defer@example.net', 'gone@example.net'] }, body);
      expect(err?.responseCode).toBe(451);
      // If nodemailer now attaches them to the error, use that and drop rcptRefusals.
      expect(err?.rejectedErrors).toBeUndefined();
      const refusals = rcptRefusals(connection);
      expect(refusals).toHaveLength(1);
      expect(refusals[0]).toMatchObject({ recipient: 'gone@example.net', responseCode: 550, command: 'RCPT TO' });
      expect((refusals[0] as Error & { response: string }).response).toMatch(/^550 .*user unknown/);
    });

    it('a successful send reports its refusals publicly; the next transaction starts with none', async () => {
      const connection = await smtpConnection((await refusingMx()).port, { ignoreTLS: true });
      const first = await send(connection, { from: 'app@acme.test', to: ['ann@example.net', 'gone@example.net'] }, body);
      expect(first.info?.response).toMatch(/^250 /);
      expect(first.info?.rejectedErrors?.map((e) => (e as Error & { recipient: string }).recipient)).toEqual(['gone@example.net']);

      // The pool resets a session before reusing it.
      await new Promise<void>((resolve, reject) => connection.reset((err) => (err ? reject(err) : resolve())));
      expect(rcptRefusals(connection)).toEqual([]);
      const second = await send(connection, { from: 'app@acme.test', to: ['bob@example.net'] }, body);
      expect(second.info?.response).toMatch(/^250 /);
      expect(rcptRefusals(connection)).toEqual([]);
    });
  });
});

describe('smtp-server: what accept-guard.ts and auth-before-tls.ts reach into', () => {
  it('SMTPConnection#handler_EHLO exists and answers EHLO with one 250 reply carrying the extensions, AUTH among them', async () => {
    expect(typeof ServerSideConnection.prototype.handler_EHLO).toBe('function');
    const server = new SMTPServer({
      logger: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      onAuth: (_a, _s, cb) => cb(null, { user: 'x' }),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { client } = await RawSmtpClient.connect((server.server.address() as AddressInfo).port, { implicitTls: false });
      const ehlo = await client.command('EHLO client.test');
      expect(ehlo.code).toBe(250);
      expect(ehlo.text).toMatch(/AUTH/);
      client.close();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('_pendingSockets maps an implicit-TLS socket still in its handshake to the socket to destroy', async () => {
    const server = new SMTPServer({ logger: false, secure: true });
    // The handshake this test abandons is reported as a server error.
    server.on('error', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const pending = (server as unknown as { _pendingSockets?: unknown })._pendingSockets;
      expect(pending).toBeInstanceOf(Map);
      const socket = net.connect((server.server.address() as AddressInfo).port, '127.0.0.1');
      socket.on('error', () => {});
      await waitFor(() => ((pending as Map<unknown, unknown>).size === 1 ? true : undefined), 'the socket to be pending');
      socket.destroy();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
