/**
 * One webhook POST against endpoints that misbehave, real HTTP servers on loopback: a redirect
 * is a failure and its target receives nothing; a huge answer is not read (memory does not grow
 * by its size); an endpoint that never answers, or trickles its answer, is cut at the timeout;
 * credentials in the URL go out as Basic auth.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { postWebhook } from '../src/webhooks/post.js';
import { verifySignature } from '../src/webhooks/sign.js';

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

const SECRET = 'whsec_test';
const body = JSON.stringify({ id: 1, type: 'delivered' });

describe('postWebhook', () => {
  it('signs the body and succeeds on 2xx; user and password in the URL are sent as Basic auth', async () => {
    const seen: IncomingMessage[] = [];
    const url = await serve((request, response) => {
      seen.push(request);
      request.resume();
      request.on('end', () => response.writeHead(204).end());
    });
    const withCredentials = url.replace('http://', 'http://hook-user:p%40ss@');
    expect(await postWebhook(withCredentials, SECRET, body, 5000)).toEqual({ ok: true, status: 204 });
    expect(seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('hook-user:p@ss').toString('base64')}`);
    expect(verifySignature(SECRET, body, seen[0]!.headers['relay-signature'] as string)).toBe(true);
  });

  it('does not follow a redirect: a 307 is a failure and its target receives nothing', async () => {
    let targetHits = 0;
    const target = await serve((request, response) => {
      targetHits++;
      request.resume();
      response.writeHead(200).end();
    });
    const redirecting = await serve((request, response) => {
      request.resume();
      response.writeHead(307, { location: target }).end();
    });
    const result = await postWebhook(redirecting, SECRET, body, 5000);
    expect(result).toEqual({ ok: false, error: 'HTTP 307 (redirects are not followed)' });
    // Once more, so a follow-up request would have had time to arrive at the target first.
    await postWebhook(redirecting, SECRET, body, 5000);
    expect(targetHits).toBe(0);
  });

  it('reads only the start of a huge answer: memory does not grow by its size', async () => {
    const HUGE = 300 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let written = 0;
    let finished!: () => void;
    const closed = new Promise<void>((resolve) => (finished = resolve));
    const url = await serve((request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': HUGE });
      const pump = () => {
        while (written < HUGE && !response.destroyed) {
          written += chunk.length;
          if (!response.write(chunk)) return response.once('drain', pump);
        }
        response.end();
      };
      response.on('close', finished);
      pump();
    });
    global.gc?.();
    const before = process.memoryUsage();
    const result = await postWebhook(url, SECRET, body, 30_000);
    await closed;
    const after = process.memoryUsage();
    expect(result).toEqual({ ok: true, status: 200 });
    // The answer was cut off long before its end (socket buffers hold a few MB at most) ...
    expect(written).toBeLessThan(HUGE / 10);
    // ... and nothing near its size was kept.
    const grown = after.rss + after.arrayBuffers - (before.rss + before.arrayBuffers);
    expect(grown).toBeLessThan(HUGE / 4);
  });

  it('fails at the timeout when the endpoint never answers', async () => {
    const url = await serve((request) => request.resume());
    const result = await postWebhook(url, SECRET, body, 300);
    expect(result).toEqual({ ok: false, error: 'no answer within 300 ms' });
  });

  it('stops reading an answer that trickles forever at the timeout', async () => {
    let closed!: () => void;
    const cut = new Promise<void>((resolve) => (closed = resolve));
    const url = await serve((request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => response.write('.'), 20);
      response.on('close', () => {
        clearInterval(timer);
        closed();
      });
    });
    expect(await postWebhook(url, SECRET, body, 300)).toEqual({ ok: true, status: 200 });
    // The client hangs up at the timeout; without it this would wait forever.
    await cut;
  });
});
