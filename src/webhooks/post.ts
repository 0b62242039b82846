/** One signed POST of a webhook body; used by the dispatcher and by `relay webhook test`. */
import { SIGNATURE_HEADER, signatureHeader } from './sign.js';

export type PostResult = { ok: true; status: number } | { ok: false; error: string };

export async function postWebhook(url: string, secret: string, body: string, timeoutMs: number): Promise<PostResult> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Relay-Webhooks/1', [SIGNATURE_HEADER]: signatureHeader(secret, body) },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Drain the body so the connection can be reused.
    await response.arrayBuffer().catch(() => undefined);
    if (response.ok) return { ok: true, status: response.status };
    return { ok: false, error: `HTTP ${response.status}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { ok: false, error: cause ?? (err as Error).message };
  }
}
