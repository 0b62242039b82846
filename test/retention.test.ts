/**
 * Retention: events older than retention.events and finished messages older than
 * retention.messages are purged in batches; pending mail and recent rows stay, so a database
 * that runs for a year stays the size of its window.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { openSqlite } from '../src/queue/sqlite/index.js';
import type { Storage } from '../src/queue/storage.js';
import { RetentionPurger } from '../src/retention/purger.js';
import { partsOf } from '../src/envelope/header.js';

const DAY = 86_400_000;

async function message(storage: Storage, queueId: string, receivedAt: number, recipients: string[]) {
  await storage.queue.enqueue({
    queueId,
    messageId: `<${queueId}@acme.test>`,
    credential: 'app',
    mailFrom: 'app@acme.test',
    recipients,
    body: partsOf(Buffer.from(`Subject: ${queueId}\r\n\r\nbody\r\n`)),
    receivedAt,
    expiresAt: receivedAt + 5 * DAY,
  });
}

/** Delivers every recipient due as of `at`. */
async function deliverAll(storage: Storage, at: number) {
  const jobs = await storage.queue.claimDue(at, 10_000, { owner: 'test', ms: 60_000 });
  await Promise.all(
    jobs.map((job) =>
      storage.queue.recordAttempt({
        job,
        outcomes: job.recipients.map((r) => ({ recipientId: r.id, status: 'delivered', smtpCode: 250, response: '250 ok' })),
        suppressions: [],
      }),
    ),
  );
}

describe('retention', () => {
  it('purges old events and finished messages in batches, keeping pending mail and the window', async () => {
    const storage = await openSqlite(path.join(mkdtempSync(path.join(tmpdir(), 'relay-retention-')), 'relay.db'));
    const config = parseConfig({ retention: { events: '30d', messages: '7d' } });
    const purger = new RetentionPurger({ storage, config, logger: createLogger('silent') });
    const now = Date.UTC(2026, 10, 27);
    try {
      // 1,200 old delivered messages (more than one purge batch), one old message still pending, one recent delivered.
      await Promise.all(Array.from({ length: 1200 }, (_, i) => message(storage, `OLD${i}`, now - 60 * DAY, [`r${i}@example.org`])));
      await message(storage, 'RECENT', now - DAY, ['fresh@example.org']);
      await deliverAll(storage, now);
      await message(storage, 'PENDING', now - 60 * DAY, ['slow@example.org']);

      const removed = await purger.purge(now);
      expect(removed.messages).toBe(1200);
      // The delivered events are written at the moment of delivery (now, for this test), so only the queued ones are old.
      expect(removed.events).toBe(1201);
      expect(await storage.queue.message('OLD0')).toBeUndefined();
      expect(await storage.queue.message('PENDING')).toBeDefined();
      expect(await storage.queue.body('PENDING')).toBeDefined();
      expect(await storage.queue.message('RECENT')).toBeDefined();
      expect((await storage.queue.pending()).map((m) => m.queueId)).toEqual(['PENDING']);

      // A second pass finds nothing more.
      expect(await purger.purge(now)).toEqual({ events: 0, messages: 0 });
    } finally {
      await storage.close();
    }
  });
});
