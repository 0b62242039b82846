/**
 * A raw SMTP client for tests that must see exact replies or send exact bytes (bare LF,
 * commands out of order) that a polite client library would never send.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  code: number;
  text: string;
  lines: string[];
}

export class RawSmtpClient {
  private buffer = '';
  private waiters: ((reply: Reply) => void)[] = [];
  private replies: Reply[] = [];
  private lines: string[] = [];
  /** True once the connection has closed. */
  closed = false;

  private constructor(private socket: net.Socket) {
    this.attach(socket);
  }

  /** `localAddress` (e.g. 127.0.0.2) makes the connection come from another loopback address. */
  static async connect(
    port: number,
    options: { implicitTls?: boolean; host?: string; localAddress?: string } = {},
  ): Promise<{ client: RawSmtpClient; greeting: Reply }> {
    const host = options.host ?? '127.0.0.1';
    const { localAddress } = options;
    // tls.connect passes localAddress on to the TCP connection, though tls.ConnectionOptions does not list it.
    const socket = options.implicitTls
      ? tls.connect({ port, host, localAddress, rejectUnauthorized: false } as tls.ConnectionOptions)
      : net.connect({ port, host, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.implicitTls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new RawSmtpClient(socket);
    return { client, greeting: await client.read() };
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => {
      this.buffer += data;
      let nl: number;
      while ((nl = this.buffer.indexOf('\r\n')) !== -1) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 2);
        this.lines.push(line);
        if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
          const reply = { code: Number(line.slice(0, 3)), text: line.slice(4), lines: this.lines };
          this.lines = [];
          const waiter = this.waiters.shift();
          if (waiter) waiter(reply);
          else this.replies.push(reply);
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  read(): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Writes and waits until the socket takes more (backpressure), for sending large amounts. */
  async send(data: string | Buffer): Promise<void> {
    if (!this.socket.write(data)) await new Promise((resolve) => this.socket.once('drain', resolve));
  }

  async command(line: string): Promise<Reply> {
    this.write(line + '\r\n');
    return this.read();
  }

  async starttls(): Promise<Reply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    this.socket.removeAllListeners('data');
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return reply;
  }

  async authPlain(username: string, password: string): Promise<Reply> {
    return this.command(`AUTH PLAIN ${Buffer.from(`\0${username}\0${password}`).toString('base64')}`);
  }

  /** Sends DATA and the given bytes followed by CRLF.CRLF; returns the final reply. */
  async data(body: string | Buffer): Promise<Reply> {
    const go = await this.command('DATA');
    if (go.code !== 354) return go;
    this.write(body);
    this.write('\r\n.\r\n');
    return this.read();
  }

  close(): void {
    this.socket.destroy();
  }
}
