/**
 * The benchmark's lean SMTP client (`--engine raw`): plain node:net and node:tls, no parser
 * beyond reply lines, so the load generator costs a small fraction of what the relay does and
 * ratios up to 10x stay measurable on 2 cores. It does what a careful client does: EHLO,
 * STARTTLS (or implicit TLS), AUTH PLAIN, then per message MAIL, RCPT and DATA in one write when
 * the server offers PIPELINING (RFC 2920), the dot-stuffed body and the final dot in another.
 * A client may be handed the TLS session of an earlier connection to resume it.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface RawTarget {
  port: number;
  implicitTls: boolean;
  user: string;
  pass: string;
}

interface Reply {
  code: number;
  text: string;
}

export class RawSmtpSession {
  private socket: net.Socket;
  private buffer = '';
  /** Lines of the reply being read (continuation lines "250-..."). */
  private lines: string[] = [];
  private waiting: { resolve: (reply: Reply) => void; reject: (err: Error) => void }[] = [];
  private ready: Reply[] = [];
  private failure: Error | undefined;
  private pipelining = false;
  /** The TLS session ticket or id the server gave, for resuming on the next connection. */
  session: Buffer | undefined;
  resumed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  /** Connects, greets, secures and authenticates. */
  static async open(target: RawTarget, options: { session?: Buffer; name?: string } = {}): Promise<RawSmtpSession> {
    const name = options.name ?? 'loadgen.bench';
    const tlsOptions = { rejectUnauthorized: false, session: options.session };
    let smtp: RawSmtpSession;
    if (target.implicitTls) {
      const socket = tls.connect({ host: '127.0.0.1', port: target.port, ...tlsOptions });
      smtp = new RawSmtpSession(socket);
      smtp.watchSession(socket);
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      smtp.resumed = socket.isSessionReused();
      await smtp.expect(220);
      await smtp.ehlo(name);
    } else {
      const socket = net.connect({ host: '127.0.0.1', port: target.port });
      socket.setNoDelay(true);
      smtp = new RawSmtpSession(socket);
      await smtp.expect(220);
      await smtp.ehlo(name);
      smtp.socket.write('STARTTLS\r\n');
      await smtp.expect(220);
      await smtp.upgrade(tlsOptions);
      await smtp.ehlo(name);
    }
    const plain = Buffer.from(`\0${target.user}\0${target.pass}`).toString('base64');
    smtp.socket.write(`AUTH PLAIN ${plain}\r\n`);
    await smtp.expect(235);
    return smtp;
  }

  /** One message; resolves on its 250. */
  async send(from: string, to: string, raw: Buffer): Promise<void> {
    const envelope = [`MAIL FROM:<${from}>\r\n`, `RCPT TO:<${to}>\r\n`, 'DATA\r\n'];
    if (this.pipelining) {
      this.socket.write(envelope.join(''));
      const replies = [this.read(), this.read(), this.read()];
      await Promise.all(replies.map((r, i) => r.then((reply) => check(reply, i === 2 ? 354 : 250))));
    } else {
      for (const [i, command] of envelope.entries()) {
        this.socket.write(command);
        await this.expect(i === 2 ? 354 : 250);
      }
    }
    this.socket.write(dotStuff(raw));
    this.socket.write(raw[raw.length - 1] === 0x0a ? '.\r\n' : '\r\n.\r\n');
    await this.expect(250);
  }

  /** QUIT without waiting for the 221: the server's work for the session is done. */
  quit(): void {
    this.socket.end('QUIT\r\n');
  }

  private async ehlo(name: string): Promise<void> {
    this.socket.write(`EHLO ${name}\r\n`);
    const reply = await this.expect(250);
    this.pipelining = /^PIPELINING$/im.test(reply.text);
  }

  private async upgrade(options: tls.ConnectionOptions): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tls.connect({ socket: plain, ...options });
    this.watchSession(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.resumed = secure.isSessionReused();
    this.socket = secure;
    this.attach(secure);
  }

  private watchSession(socket: tls.TLSSocket): void {
    socket.on('session', (session: Buffer) => (this.session = session));
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, end).replace(/\r$/, '');
      this.buffer = this.buffer.slice(end + 1);
      this.lines.push(line.slice(4));
      if (line[3] === '-') continue;
      const reply = { code: Number(line.slice(0, 3)), text: this.lines.join('\n') };
      this.lines = [];
      const waiter = this.waiting.shift();
      if (waiter) waiter.resolve(reply);
      else this.ready.push(reply);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.waiting.splice(0)) waiter.reject(err);
  }

  private read(): Promise<Reply> {
    const ready = this.ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private async expect(code: number): Promise<Reply> {
    return check(await this.read(), code);
  }
}

function check(reply: Reply, code: number): Reply {
  if (reply.code !== code) throw new Error(`expected ${code}, got ${reply.code} ${reply.text}`);
  return reply;
}

/** Doubles a dot at the start of a line (RFC 5321 4.5.2); the message itself when it has none. */
export function dotStuff(raw: Buffer): Buffer {
  const dot = 0x2e;
  const starts: number[] = raw[0] === dot ? [0] : [];
  for (let i = raw.indexOf('\n.'); i >= 0; i = raw.indexOf('\n.', i + 2)) starts.push(i + 1);
  if (starts.length === 0) return raw;
  const out = Buffer.allocUnsafe(raw.length + starts.length);
  let from = 0;
  let o = 0;
  for (const at of starts) {
    o += raw.copy(out, o, from, at);
    out[o++] = dot;
    from = at;
  }
  raw.copy(out, o, from);
  return out;
}
