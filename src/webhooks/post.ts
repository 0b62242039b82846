/**
 * One signed POST of a webhook body; used by the dispatcher and by `relay webhook test`.
 * The endpoint is not trusted: a redirect is a failure and is never followed (the signed event
 * would go wherever it points), at most MAX_RESPONSE_BYTES of the answer are read, and the
 * whole exchange is bounded by the timeout. User and password in the URL are sent as Basic auth.
 */
import http from 'node:http';
import https from 'node:https';
import { SIGNATURE_HEADER, signatureHeader } from './sign.js';

export type PostResult = { ok: true; status: number } | { ok: false; error: string };

/** Only the status matters; a little of the body is read so a short answer can keep its connection. */
export const MAX_RESPONSE_BYTES = 4096;

export function postWebhook(url: string, secret: string, body: string, timeoutMs: number): Promise<PostResult> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve({ ok: false, error: 'invalid URL' });
  }
  const client = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : undefined;
  if (!client) return Promise.resolve({ ok: false, error: `unsupported protocol ${target.protocol}` });

  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: PostResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    // Covers connecting, the answer's head and the little of its body that is read.
    const timer = setTimeout(() => {
      settle({ ok: false, error: `no answer within ${timeoutMs} ms` });
      request.destroy();
    }, timeoutMs);
    const request = client.request(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'Relay-Webhooks/1',
          [SIGNATURE_HEADER]: signatureHeader(secret, body),
        },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) settle({ ok: true, status });
        else if (status >= 300 && status < 400) settle({ ok: false, error: `HTTP ${status} (redirects are not followed)` });
        else settle({ ok: false, error: `HTTP ${status}` });
        let read = 0;
        response.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) {
            clearTimeout(timer);
            request.destroy();
          }
        });
        response.on('close', () => clearTimeout(timer));
      },
    );
    request.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      settle({ ok: false, error: err.code ?? err.message });
    });
    request.end(body);
  });
}
