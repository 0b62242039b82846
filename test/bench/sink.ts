/**
 * A lean SMTP sink for the benchmark: the recipients' MX on loopback. It speaks just enough
 * ESMTP (no TLS, no AUTH) to accept mail as fast as the relay can send it, and only counts
 * messages and bytes, so it costs the bench process as little CPU and memory as possible.
 */
import net from 'node:net';

export interface BenchSink {
  port: number;
  /** Messages accepted since the last reset. */
  count: number;
  /** performance.now() of the last message accepted. */
  lastAt: number;
  reset(): void;
  /** Resolves once `count` reaches n; rejects when no message arrives for stallMs. */
  waitFor(n: number, stallMs: number): Promise<void>;
  stop(): Promise<void>;
}

const END_OF_DATA = Buffer.from('\r\n.\r\n');

export async function startBenchSink(): Promise<BenchSink> {
  const sockets = new Set<net.Socket>();
  let waiter: { n: number; resolve: () => void; progress: () => void } | undefined;
  const sink: BenchSink = {
    port: 0,
    count: 0,
    lastAt: 0,
    reset() {
      sink.count = 0;
      sink.lastAt = 0;
    },
    waitFor(n, stallMs) {
      if (sink.count >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const stalled = () => reject(new Error(`sink: ${sink.count} of ${n} messages, none for ${stallMs} ms`));
        let timer = setTimeout(stalled, stallMs);
        waiter = {
          n,
          resolve: () => (clearTimeout(timer), resolve()),
          progress: () => (clearTimeout(timer), (timer = setTimeout(stalled, stallMs))),
        };
      });
    },
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const accepted = () => {
    sink.count++;
    sink.lastAt = performance.now();
    if (!waiter) return;
    if (sink.count < waiter.n) return waiter.progress();
    const { resolve } = waiter;
    waiter = undefined;
    resolve();
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.write('220 sink.bench ESMTP\r\n');
    let inData = false;
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let replies = '';
      while (pending.length) {
        if (inData) {
          const end = pending.indexOf(END_OF_DATA);
          if (end < 0) {
            // Keep only the tail that could start the terminator.
            pending = pending.subarray(Math.max(0, pending.length - 4));
            break;
          }
          pending = pending.subarray(end + END_OF_DATA.length);
          inData = false;
          accepted();
          replies += '250 2.0.0 Ok\r\n';
          continue;
        }
        const eol = pending.indexOf('\r\n');
        if (eol < 0) break;
        const verb = pending.toString('latin1', 0, Math.min(eol, 4)).toUpperCase();
        pending = pending.subarray(eol + 2);
        if (verb === 'EHLO')
          replies += '250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 104857600\r\n';
        else if (verb === 'DATA') {
          inData = true;
          // The terminator may follow an empty body: let the search see its leading CRLF.
          pending = Buffer.concat([Buffer.from('\r\n'), pending]);
          replies += '354 go ahead\r\n';
        } else if (verb === 'QUIT') {
          socket.end('221 2.0.0 bye\r\n');
          return;
        } else replies += '250 2.0.0 Ok\r\n';
      }
      if (replies) socket.write(replies);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.port = (server.address() as net.AddressInfo).port;
  return sink;
}
