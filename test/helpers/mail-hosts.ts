/**
 * Recipient domains with real MX hosts: one smtp-server sink per domain on 127.0.0.2, .3, …
 * (all on one port, as the relay uses one smtp_port) and a DNS server publishing their MX
 * records, ready to hand to the relay as `delivery`.
 */
import { startDnsServer, type TestDnsServer, type Zone } from './dns.js';
import { startSinks, type Sink, type SinkOptions } from './sink.js';

export interface MailHosts {
  dns: TestDnsServer;
  /** The sink that is each domain's MX, by domain. */
  sinks: Record<string, Sink>;
  /** Config overrides that make the relay deliver to these hosts. */
  delivery: { paused: false; dns_servers: string[]; smtp_port: number };
  stop(): Promise<void>;
}

export async function startMailHosts(domains: Record<string, Omit<SinkOptions, 'host'>>): Promise<MailHosts> {
  const names = Object.keys(domains);
  const hosts = names.map((_, i) => `127.0.0.${i + 2}`);
  const started = await startSinks(names.map((name, i) => ({ ...domains[name], host: hosts[i]! })));
  const zone: Zone = {};
  names.forEach((name, i) => {
    zone[name] = { mx: [{ priority: 10, exchange: `mx.${name}` }] };
    zone[`mx.${name}`] = { a: [hosts[i]!] };
  });
  const dns = await startDnsServer(zone);
  return {
    dns,
    sinks: Object.fromEntries(names.map((name, i) => [name, started[i]!])),
    delivery: { paused: false, dns_servers: [dns.address], smtp_port: started[0]!.port },
    async stop() {
      await Promise.all(started.map((s) => s.stop()));
      await dns.stop();
    },
  };
}
