/**
 * SMTP sinks for tests: smtp-server instances that stand in for recipient MX hosts and record
 * what they receive. A sink can offer STARTTLS (smtp-server's built-in self-signed
 * certificate) and answer MAIL, RCPT or DATA with any reply. startSinks() puts several on one
 * port at different loopback addresses (Linux routes all of 127/8 to lo), since the relay uses
 * one smtp_port for every MX host.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  /** The transaction ran over TLS (STARTTLS). */
  secure: boolean;
  /** smtp-server's id of the connection, to tell reused connections from new ones. */
  connectionId: string;
  /** The name the client gave in EHLO (a relay node's hostname). */
  heloName: string;
  /** When DATA began and when the message was accepted (epoch ms). */
  dataStartedAt: number;
  acceptedAt: number;
}

/** A reply such as "550 5.1.1 <x@y>: user unknown", or undefined to accept. */
type Decision = string | undefined;

export interface SinkOptions {
  host?: string;
  port?: number;
  starttls?: boolean;
  /** The STARTTLS key and certificate chain (PEM); smtp-server's own self-signed pair when absent. */
  tls?: { key: string; cert: string };
  /** Offer SMTPUTF8 (RFC 6531); smtp-server does by default. */
  smtputf8?: boolean;
  mail?: (address: string) => Decision;
  /** `seen` counts earlier RCPTs of this address on this sink, for "refuse once, then accept". */
  rcpt?: (address: string, seen: number) => Decision;
  /** Reply at the end of DATA; the message is recorded only when accepted. */
  data?: (message: ReceivedMessage) => Decision;
  /** Awaited at the end of DATA before replying: a slow or stalled MX. */
  beforeReply?: (message: ReceivedMessage) => Promise<void>;
}

export interface Sink {
  host: string;
  port: number;
  messages: ReceivedMessage[];
  /** Connections opened to this sink so far. */
  connections: number;
  /** Connections open right now. */
  open: number;
  /** The most connections that were ever open at once. */
  peakOpen: number;
  stop(): Promise<void>;
}

/** smtp-server sends err.responseCode and err.message as "CODE MESSAGE". */
function refusal(reply: string): Error {
  const [, code, text] = /^(\d{3})[ -]?(.*)$/s.exec(reply) ?? [, '550', reply];
  return Object.assign(new Error(text), { responseCode: Number(code) });
}

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const host = opts.host ?? '127.0.0.1';
  const rcptSeen = new Map<string, number>();
  const sink: Sink = { host, port: 0, messages: [], connections: 0, open: 0, peakOpen: 0, stop: async () => {} };
  const server = new SMTPServer({
    name: `sink-${host}`,
    authOptional: true,
    disabledCommands: opts.starttls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    hideSMTPUTF8: opts.smtputf8 === false,
    ...(opts.tls && { key: opts.tls.key, cert: opts.tls.cert }),
    logger: false,
    // Connections a client left open are cut after this, so stop() stays quick.
    closeTimeout: 200,
    onConnect(_session, callback) {
      sink.connections++;
      sink.open++;
      sink.peakOpen = Math.max(sink.peakOpen, sink.open);
      callback();
    },
    onClose() {
      sink.open--;
    },
    onMailFrom(address, _session, callback) {
      const reply = opts.mail?.(address.address);
      callback(reply ? refusal(reply) : undefined);
    },
    onRcptTo(address, _session, callback) {
      const key = address.address.toLowerCase();
      const seen = rcptSeen.get(key) ?? 0;
      rcptSeen.set(key, seen + 1);
      const reply = opts.rcpt?.(address.address, seen);
      callback(reply ? refusal(reply) : undefined);
    },
    onData(stream, session, callback) {
      const dataStartedAt = Date.now();
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const message: ReceivedMessage = {
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          secure: session.secure,
          connectionId: session.id,
          heloName: session.hostNameAppearsAs,
          dataStartedAt,
          acceptedAt: 0,
        };
        const finish = () => {
          const reply = opts.data?.(message);
          if (reply) return callback(refusal(reply));
          message.acceptedAt = Date.now();
          sink.messages.push(message);
          callback();
        };
        if (opts.beforeReply) void opts.beforeReply(message).then(finish);
        else finish();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      // A client that dies mid-session (a killed relay) resets its connection; that is not a sink failure.
      server.on('error', () => {});
      resolve();
    });
  });
  sink.port = (server.server.address() as AddressInfo).port;
  sink.stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return sink;
}

/** Starts sinks that all share one free port, each on its own `host`. */
export async function startSinks(list: (SinkOptions & { host: string })[], tries = 5): Promise<Sink[]> {
  for (let attempt = 1; ; attempt++) {
    const started: Sink[] = [];
    try {
      for (const opts of list) started.push(await startSink({ ...opts, port: started[0]?.port ?? 0 }));
      return started;
    } catch (err) {
      await Promise.all(started.map((s) => s.stop()));
      // Another process may hold the port on one of the other addresses: pick a new one.
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= tries) throw err;
    }
  }
}
