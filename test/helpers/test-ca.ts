/**
 * A certificate authority for tests, made with openssl: the relay trusts it through
 * delivery.tls_ca_file, never by turning verification off. Server certificates are issued for
 * the names given, or self-signed for a certificate no one trusts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface KeyPair {
  key: string;
  /** The certificate, followed by the CA's when issued by it (the chain a server presents). */
  cert: string;
  /** The server certificate alone. */
  leaf: string;
}

export interface TestCa {
  /** The CA certificate file (PEM), for delivery.tls_ca_file. */
  file: string;
  pem: string;
  issue(names: string[]): KeyPair;
  selfSigned(names: string[]): KeyPair;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

export function createTestCa(): TestCa {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-ca-'));
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt'].concat([
      '-days',
      '2',
      '-subj',
      '/CN=Relay Test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]),
    dir,
  );
  const pem = readFileSync(path.join(dir, 'ca.crt'), 'utf8');
  let serial = 0;
  const server = (names: string[], signed: boolean): KeyPair => {
    const name = `server${++serial}`;
    const san = names.map((n) => `DNS:${n}`).join(',');
    writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    openssl(
      [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${names[0]}`,
      ],
      dir,
    );
    const sign = signed ? ['-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'] : ['-signkey', `${name}.key`];
    openssl(['x509', '-req', '-in', `${name}.csr`, ...sign, '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
    const leaf = readFileSync(path.join(dir, `${name}.crt`), 'utf8');
    return { key: readFileSync(path.join(dir, `${name}.key`), 'utf8'), leaf, cert: signed ? leaf + pem : leaf };
  };
  return {
    file: path.join(dir, 'ca.crt'),
    pem,
    issue: (names) => server(names, true),
    selfSigned: (names) => server(names, false),
  };
}
