/**
 * What makes a new TLS connection cheap: session tickets (a client offering the session of an
 * earlier connection resumes it, on implicit TLS and after STARTTLS), and an ECDSA certificate
 * served beside the RSA one (`tls: self_signed` makes both; the config may list several pairs),
 * each client getting the one its signature algorithms accept.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createEcdsaCertificate } from '../src/submission/ecdsa-certificate.js';
import { createSelfSignedCertificate } from '../src/submission/tls.js';
import { startTestRelay, type TestRelay } from './helpers/relay.js';
import { assertBuilt } from './helpers/cli.js';
import { kill, prepareServe, startServe, type ServeProcess } from './helpers/serve.js';

let relay: TestRelay | undefined;
let serve: ServeProcess | undefined;

afterEach(async () => {
  await relay?.stop();
  relay = undefined;
  if (serve && serve.child.exitCode === null) await kill(serve);
  serve = undefined;
});

const ECDSA_ONLY = 'ecdsa_secp256r1_sha256';
const RSA_ONLY = 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256';

interface Handshake {
  reused: boolean;
  /** The session to offer next time (TLS 1.3 sends tickets after the handshake, with the greeting). */
  session: Buffer | undefined;
  keyType: string | undefined;
}

/** One implicit-TLS connection: handshake, read the 220 greeting, QUIT. */
function implicitTls(port: number, options: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    socket.on('session', (s: Buffer) => (session = s));
    socket.on('error', reject);
    socket.once('data', () => {
      const result = { reused: socket.isSessionReused(), keyType: socket.getPeerX509Certificate()?.publicKey.asymmetricKeyType };
      socket.end('QUIT\r\n');
      socket.on('close', () => resolve({ ...result, session }));
    });
  });
}

/** One STARTTLS connection: greeting, EHLO, STARTTLS, handshake, EHLO, QUIT. */
function startTls(port: number, options: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const plain = net.connect(port, '127.0.0.1');
    plain.on('error', reject);
    let received = '';
    const onPlain = (chunk: Buffer) => {
      received += chunk.toString();
      if (received.startsWith('220 ') && !received.includes('\r\n250 ')) {
        if (!received.includes('EHLO sent')) plain.write('EHLO client.test\r\n');
        received += 'EHLO sent';
      } else if (received.includes('\r\n250 ') && !received.includes('STARTTLS sent')) {
        plain.write('STARTTLS\r\n');
        received += 'STARTTLS sent';
      } else if (/STARTTLS sent220 /.test(received)) {
        plain.off('data', onPlain);
        let session: Buffer | undefined;
        const socket = tls.connect({ socket: plain, rejectUnauthorized: false, ...options }, () => socket.write('EHLO client.test\r\n'));
        socket.on('session', (s: Buffer) => (session = s));
        socket.on('error', reject);
        socket.once('data', () => {
          const result = { reused: socket.isSessionReused(), keyType: socket.getPeerX509Certificate()?.publicKey.asymmetricKeyType };
          socket.end('QUIT\r\n');
          socket.on('close', () => resolve({ ...result, session }));
        });
      }
    };
    plain.on('data', onPlain);
  });
}

describe('TLS session resumption', { timeout: 20_000 }, () => {
  it('resumes the session of an earlier connection on implicit TLS and after STARTTLS, in TLS 1.3 and 1.2', async () => {
    relay = await startTestRelay();
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const pinned = { minVersion: version, maxVersion: version };
      const first = await implicitTls(relay.ports.smtps!, pinned);
      expect(first.reused).toBe(false);
      expect(first.session).toBeDefined();
      expect((await implicitTls(relay.ports.smtps!, { ...pinned, session: first.session })).reused).toBe(true);

      const plain = await startTls(relay.ports.submission!, pinned);
      expect(plain.reused).toBe(false);
      expect((await startTls(relay.ports.submission!, { ...pinned, session: plain.session })).reused).toBe(true);
    }
  });
});

describe('TLS session resumption with submission workers', { timeout: 150_000 }, () => {
  it('resumes a session on whichever worker the connection reaches: the workers share the ticket key', async () => {
    assertBuilt();
    const setup = await prepareServe({ workers: 2, log: { level: 'warn' } });
    serve = await startServe(setup);
    const first = await implicitTls(setup.port);
    // Connections go to the workers in turn: of four, at least two reach the worker that did not issue the ticket.
    for (let i = 0; i < 4; i++) expect((await implicitTls(setup.port, { session: first.session })).reused).toBe(true);
  });
});

describe('ECDSA and RSA certificates side by side', { timeout: 30_000 }, () => {
  it('tls: self_signed serves ECDSA P-256 to a client that takes it and RSA to an RSA-only client', async () => {
    relay = await startTestRelay();
    const port = relay.ports.smtps!;
    expect((await implicitTls(port)).keyType).toBe('ec');
    expect((await implicitTls(port, { sigalgs: ECDSA_ONLY })).keyType).toBe('ec');
    expect((await implicitTls(port, { sigalgs: RSA_ONLY })).keyType).toBe('rsa');
    expect((await startTls(relay.ports.submission!, { sigalgs: RSA_ONLY })).keyType).toBe('rsa');
    expect((await startTls(relay.ports.submission!, { sigalgs: ECDSA_ONLY })).keyType).toBe('ec');
  });

  it('serves each pair of a tls list from the config files', async () => {
    const dir = path.join((await import('node:os')).tmpdir(), `relay-certs-${process.pid}-${Date.now()}`);
    const rsa = { cert: path.join(dir, 'rsa.crt'), key: path.join(dir, 'rsa.key') };
    const ecdsa = { cert: path.join(dir, 'ec.crt'), key: path.join(dir, 'ec.key') };
    await createSelfSignedCertificate(rsa, 'relay.test', 'rsa');
    await createSelfSignedCertificate(ecdsa, 'relay.test', 'ecdsa');
    relay = await startTestRelay({ tls: [rsa, ecdsa] });
    const port = relay.ports.smtps!;
    expect((await implicitTls(port, { sigalgs: ECDSA_ONLY })).keyType).toBe('ec');
    expect((await implicitTls(port, { sigalgs: RSA_ONLY })).keyType).toBe('rsa');
  });
});

describe('the generated ECDSA certificate', () => {
  it('is valid DER every time: a serial whose first byte would be zero made OpenSSL refuse one in 256', () => {
    const notAfter = new Date(Date.now() + 86_400_000);
    for (let i = 0; i < 3000; i++) {
      const { cert, private: key } = createEcdsaCertificate('relay.test', notAfter);
      expect(new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))).toBe(true);
    }
  });
});
