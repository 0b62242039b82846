/**
 * A small authoritative DNS server for tests (dns2 over UDP on 127.0.0.1, random port), to give
 * the relay as `delivery.dns_servers: [server.address]`. A name missing from the zone answers
 * NXDOMAIN; a known name without records of the asked type answers NOERROR with no answers
 * (NODATA); `rcode` makes a name fail, e.g. SERVFAIL; `cname` answers with the alias and the
 * target's records, as a recursive resolver would; `silent` never answers (a DNS timeout).
 * TLSA answers are encoded with dns-packet (dns2 has no TLSA), with the AD bit when `secure`,
 * as a validating resolver sets it.
 */
import { createServer, Packet } from 'dns2';
import * as dnsPacket from 'dns-packet';

/** RFC 1035 4.1.1 response codes (dns2 has them as Packet.RCODE, which its typings omit). */
const RCODE = { SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

export interface ZoneEntry {
  mx?: { exchange: string; priority: number }[];
  a?: string[];
  aaaa?: string[];
  /** One TXT record per item; longer than 255 bytes is split into character-strings. */
  txt?: string[];
  /** TLSA records (usage, selector, matching type, data). */
  tlsa?: { usage: number; selector: number; matchingType: number; data: Buffer }[];
  /** The answer is DNSSEC-validated: the AD bit is set. */
  secure?: boolean;
  rcode?: 'SERVFAIL' | 'NXDOMAIN' | 'REFUSED';
  cname?: string;
  silent?: boolean;
}

export type Zone = Record<string, ZoneEntry>;

export interface TestDnsServer {
  port: number;
  /** "127.0.0.1:PORT", for delivery.dns_servers. */
  address: string;
  /** The live zone by lower-case name; change it at will. */
  records: Map<string, ZoneEntry>;
  setZone(name: string, entry: ZoneEntry | undefined): void;
  /** Every question asked, as "name TYPE". */
  queries: string[];
  stop(): Promise<void>;
}

const typeName = (type: number) => Object.entries(Packet.TYPE).find(([, value]) => value === type)?.[0] ?? String(type);
const normalise = (name: string) => name.toLowerCase().replace(/\.$/, '');

function chunks(text: string): string[] {
  const bytes = Buffer.from(text, 'utf8');
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 255) parts.push(bytes.subarray(i, i + 255).toString('utf8'));
  return parts.length ? parts : [''];
}

function answersFor(name: string, type: number, entry: ZoneEntry): object[] {
  const base = { name, class: Packet.CLASS.IN, ttl: 60 };
  switch (type) {
    case Packet.TYPE.MX:
      return (entry.mx ?? []).map((mx) => ({ ...base, type, exchange: mx.exchange, priority: mx.priority }));
    case Packet.TYPE.A:
      return (entry.a ?? []).map((address) => ({ ...base, type, address }));
    case Packet.TYPE.AAAA:
      return (entry.aaaa ?? []).map((address) => ({ ...base, type, address }));
    case Packet.TYPE.TXT:
      return (entry.txt ?? []).map((text) => ({ ...base, type, data: chunks(text) }));
    default:
      return [];
  }
}

const TLSA = 52;

function tlsaResponse(id: number, name: string, entry: ZoneEntry): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (entry.secure ? dnsPacket.AUTHENTIC_DATA : 0),
    questions: [{ type: 'TLSA', name }],
    answers: (entry.tlsa ?? []).map((r) => ({
      type: 'TLSA' as const,
      name,
      ttl: 60,
      data: { usage: r.usage, selector: r.selector, matchingType: r.matchingType, certificate: r.data },
    })),
  });
}

export async function startDnsServer(zone: Zone = {}): Promise<TestDnsServer> {
  const records = new Map(Object.entries(zone).map(([name, entry]) => [normalise(name), entry]));
  const queries: string[] = [];
  const server = createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const [question] = request.questions;
      if (!question) return void send(response);
      queries.push(`${normalise(question.name)} ${typeName(question.type)}`);
      const entry = records.get(normalise(question.name));
      if (entry?.silent) return;
      if (entry && !entry.rcode && question.type === TLSA) return void send(tlsaResponse(request.header.id, question.name, entry));
      if (!entry) response.header.rcode = RCODE.NXDOMAIN;
      else if (entry.rcode) response.header.rcode = RCODE[entry.rcode];
      else if (entry.cname) {
        const { name, type } = question;
        response.answers.push({ name, type: Packet.TYPE.CNAME, class: Packet.CLASS.IN, ttl: 60, domain: entry.cname } as never);
        const target = records.get(normalise(entry.cname));
        if (target) response.answers.push(...(answersFor(entry.cname, type, target) as never[]));
      } else response.answers.push(...(answersFor(question.name, question.type, entry) as never[]));
      void send(response);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  const port = addresses.udp!.port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    records,
    setZone: (name, entry) => (entry ? records.set(normalise(name), entry) : records.delete(normalise(name))),
    queries,
    stop: () => server.close(),
  };
}
