/** Adding and removing webhooks, for the CLI and the HTTP API alike, and how their URLs are shown. */
import { ManagementError } from '../management/error.js';
import { WEBHOOK_STATUSES, type RecipientStatus, type WebhookRecord, type WebhookStore } from '../queue/storage.js';
import { newWebhookSecret } from './sign.js';

function webhookUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ManagementError('invalid', 'url', `"${input}" is not a URL (expected e.g. https://app.example.com/relay-events)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ManagementError('invalid', 'url', `"${input}": only http and https URLs are supported`);
  }
  return url.href;
}

/** The URL as shown: a password (or a lone user name, often a token) embedded in it is masked. */
export function displayUrl(stored: string): string {
  let url: URL;
  try {
    url = new URL(stored);
  } catch {
    return stored;
  }
  if (!url.username && !url.password) return stored;
  if (url.password) url.password = '***';
  else url.username = '***';
  return url.href;
}

function eventList(input: string[]): RecipientStatus[] {
  const events = [...new Set(input.map((e) => e.trim().toLowerCase()).filter(Boolean))];
  const unknown = events.filter((e) => !WEBHOOK_STATUSES.includes(e as RecipientStatus));
  if (unknown.length || events.length === 0) {
    throw new ManagementError(
      'invalid',
      'events',
      `unknown event ${unknown.join(', ') || '(none given)'}: choose from ${WEBHOOK_STATUSES.join(', ')}`,
    );
  }
  return events as RecipientStatus[];
}

/** A new webhook with a new signing secret (returned once, in the record). */
export async function addWebhook(store: Pick<WebhookStore, 'add'>, input: { url: string; events?: string[] }): Promise<WebhookRecord> {
  return store.add(webhookUrl(input.url), newWebhookSecret(), eventList(input.events ?? [...WEBHOOK_STATUSES]));
}

export async function findWebhook(store: Pick<WebhookStore, 'list'>, id: string | number): Promise<WebhookRecord> {
  const found = (await store.list()).find((w) => String(w.id) === String(id));
  if (!found) throw new ManagementError('unknown', 'id', `unknown webhook ${id}`);
  return found;
}

/** Removes the webhook; its undelivered events are dropped. */
export async function removeWebhook(store: Pick<WebhookStore, 'list' | 'remove'>, id: string | number): Promise<void> {
  await store.remove((await findWebhook(store, id)).id);
}
