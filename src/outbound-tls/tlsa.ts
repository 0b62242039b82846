/**
 * TLSA lookups for DANE (RFC 7672): `_25._tcp.MX` asked of delivery.dns_servers (else the
 * system's servers) with dns-packet over UDP, again over TCP when the answer is truncated. Node's
 * resolver has no TLSA and does not expose the AD bit. Relay trusts the resolver's DNSSEC
 * validation, as Postfix does: records count only when the answer has the AD bit set.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { getServers } from 'node:dns';
import net from 'node:net';
import * as packet from 'dns-packet';

export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

export type TlsaLookup =
  /** Validated records (possibly none usable: see usableTlsa). */
  | { status: 'secure'; records: TlsaRecord[] }
  /** No records, or records the resolver did not validate: no DANE for this host. */
  | { status: 'none' }
  /** SERVFAIL, a timeout or an unreachable resolver: neither DANE nor its absence is known. */
  | { status: 'temporary'; reason: string };

export interface TlsaOptions {
  /** "host" or "host:port" entries; the system's resolvers when empty. */
  servers?: string[];
  timeoutMs: number;
}

export async function lookupTlsa(host: string, port: number, opts: TlsaOptions): Promise<TlsaLookup> {
  const name = `_${port}._tcp.${host}`;
  const servers = opts.servers?.length ? opts.servers : getServers();
  let reason = 'no DNS server';
  for (const server of servers.map(parseServer)) {
    try {
      let answer = await queryUdp(name, server, opts.timeoutMs);
      if (answer.flag_tc) answer = await queryTcp(name, server, opts.timeoutMs);
      return interpret(answer);
    } catch (err) {
      reason = (err as Error).message;
    }
  }
  return { status: 'temporary', reason };
}

function interpret(answer: packet.DecodedPacket): TlsaLookup {
  const rcode = (answer as { rcode?: string }).rcode ?? 'NOERROR';
  if (rcode === 'NXDOMAIN') return { status: 'none' };
  if (rcode !== 'NOERROR') return { status: 'temporary', reason: rcode };
  const records = (answer.answers ?? []).flatMap((a): TlsaRecord[] =>
    a.type === 'TLSA'
      ? [{ usage: a.data.usage, selector: a.data.selector, matchingType: a.data.matchingType, data: a.data.certificate }]
      : [],
  );
  if (records.length === 0 || !answer.flag_ad) return { status: 'none' };
  return { status: 'secure', records };
}

/** The records RFC 7672 lets SMTP use: DANE-TA(2) and DANE-EE(3), full or SPKI, exact or SHA-2. */
export function usableTlsa(records: TlsaRecord[]): TlsaRecord[] {
  return records.filter(
    (r) => (r.usage === 2 || r.usage === 3) && (r.selector === 0 || r.selector === 1) && [0, 1, 2].includes(r.matchingType),
  );
}

function parseServer(server: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(server);
  if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2] ?? 53) };
  const hostPort = /^([^:]+):(\d+)$/.exec(server);
  if (hostPort) return { host: hostPort[1]!, port: Number(hostPort[2]) };
  return { host: server, port: 53 };
}

function query(name: string): packet.Packet {
  return {
    type: 'query',
    id: randomInt(0, 65536),
    // AD in a query asks a validating resolver to say whether it validated (RFC 6840 section 5.7).
    flags: packet.RECURSION_DESIRED | packet.AUTHENTIC_DATA,
    questions: [{ type: 'TLSA', name }],
  };
}

function queryUdp(name: string, server: { host: string; port: number }, timeoutMs: number): Promise<packet.DecodedPacket> {
  const request = query(name);
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => finish(new Error('ETIMEOUT')), timeoutMs);
    const finish = (err: Error | null, answer?: packet.DecodedPacket) => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(answer!);
    };
    socket.on('error', (err) => finish(err));
    socket.on('message', (message) => {
      try {
        const answer = packet.decode(message);
        if (answer.id === request.id) finish(null, answer);
      } catch {
        // Not an answer to this query: keep waiting.
      }
    });
    socket.send(packet.encode(request), server.port, server.host, (err) => err && finish(err));
  });
}

function queryTcp(name: string, server: { host: string; port: number }, timeoutMs: number): Promise<packet.DecodedPacket> {
  const request = query(name);
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, server.host);
    let received = Buffer.alloc(0);
    const finish = (err: Error | null, answer?: packet.DecodedPacket) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    socket.setTimeout(timeoutMs, () => finish(new Error('ETIMEOUT')));
    socket.on('error', (err) => finish(err));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      try {
        finish(null, packet.streamDecode(received) as packet.DecodedPacket);
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.on('connect', () => socket.write(packet.streamEncode(request)));
  });
}
