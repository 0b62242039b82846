/**
 * Exporting events for a data warehouse: 100,000 events of a running relay (SQLite) streamed
 * through `GET /v1/events/export` while the memory the process holds stays flat, and through
 * `relay events export` as a process whose heap is capped far below the export's size; CSV
 * with its quoting through both doors.
 */
import { spawn } from 'node:child_process';
import { createReadStream, openSync, closeSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NewEvent } from '../src/queue/storage.js';
import { assertBuilt, BIN, runCli } from './helpers/cli.js';
import { apiClient } from './helpers/http.js';
import { retainedBytes } from './helpers/memory.js';
import { startTestRelay, type TestRelay } from './helpers/relay.js';

const ADMIN_TOKEN = 'admin-token-for-exports';
const EVENTS = 100_000;
let relay: TestRelay;
/** The window holding the bulk events; `small` holds three with awkward replies. */
const bulk = { from: Date.now() - 3_600_000, to: 0 };
const small = { from: bulk.from - 60_000, to: bulk.from };

const event = (i: number, at: number, overrides: Partial<NewEvent> = {}): NewEvent => ({
  queueId: `QEXPORT${i % 50}`,
  messageId: `<m${i % 50}@acme.test>`,
  credential: 'app',
  recipient: `recipient-${i}@example.org`,
  status: i % 10 === 0 ? 'bounced' : 'delivered',
  smtpCode: i % 10 === 0 ? 550 : 250,
  response: i % 10 === 0 ? '550 5.1.1 user unknown' : '250 2.0.0 Ok: queued as 4Bk2xq0Hz1z9',
  category: null,
  at,
  ...overrides,
});

beforeAll(async () => {
  assertBuilt();
  relay = await startTestRelay({ http: { admin_token: ADMIN_TOKEN } });
  const { events } = relay.storage;
  await events.record(event(1, small.from + 1, { response: '550 "quoted", with a comma' }));
  await events.record(event(2, small.from + 2, { response: 'line one\r\nline two', smtpCode: null }));
  await events.record(event(3, small.from + 3, { response: null }));
  for (let i = 0; i < EVENTS; i += 5000) {
    await Promise.all(Array.from({ length: 5000 }, (_, j) => events.record(event(i + j, bulk.from + i + j))));
  }
  bulk.to = bulk.from + EVENTS;
}, 120_000);

afterAll(() => relay?.stop());

describe('event exports', { timeout: 120_000 }, () => {
  it('streams 100,000 events over HTTP with flat memory', async () => {
    const before = retainedBytes();
    const response = await fetch(`http://127.0.0.1:${relay.ports.http}/v1/events/export?from=${bulk.from}&to=${bulk.to}&format=jsonl`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    let bytes = 0;
    let lines = 0;
    let sampledAt = 0;
    let peak = 0;
    let first: Buffer | undefined;
    for await (const chunk of response.body!) {
      const bytesOf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      first ??= Buffer.from(bytesOf.subarray(0, bytesOf.indexOf(0x0a)));
      bytes += chunk.length;
      for (let at = bytesOf.indexOf(0x0a); at !== -1; at = bytesOf.indexOf(0x0a, at + 1)) lines++;
      if (bytes - sampledAt > 2_000_000) {
        sampledAt = bytes;
        peak = Math.max(peak, retainedBytes() - before);
      }
    }
    expect(lines).toBe(EVENTS);
    expect(JSON.parse(first!.toString())).toMatchObject({ recipient: 'recipient-0@example.org', status: 'bounced', tags: [] });
    // The export is about 29 MB; the process (server and client) holds a few pages of it and
    // the buffers between them (measured: 2 to 10 MB, not growing with the export), where
    // holding the export at once would take the whole body and its records.
    expect(bytes).toBeGreaterThan(25_000_000);
    expect(peak).toBeLessThan(bytes / 2);
  });

  it('streams 100,000 events from the CLI within a heap far smaller than the export', async () => {
    const out = path.join(relay.dir, 'export.jsonl');
    const fd = openSync(out, 'w');
    const child = spawn(
      process.execPath,
      [
        '--max-old-space-size=48',
        BIN,
        '--config',
        relay.configFile,
        'events',
        'export',
        '--from',
        String(bulk.from),
        '--to',
        String(bulk.to),
        '--format',
        'jsonl',
      ],
      { cwd: relay.dir, stdio: ['ignore', fd, 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    closeSync(fd);
    expect(code, stderr).toBe(0);
    // The records alone, held at once, would not fit in that heap.
    expect(statSync(out).size).toBeGreaterThan(25_000_000);
    let lines = 0;
    for await (const _ of createInterface({ input: createReadStream(out) })) lines++;
    expect(lines).toBe(EVENTS);
  });

  it('writes CSV with a header line and quoted fields, from the CLI and the API alike', async () => {
    const cli = await runCli(
      [
        '--config',
        relay.configFile,
        'events',
        'export',
        '--from',
        new Date(small.from).toISOString(),
        '--to',
        String(small.to),
        '--format',
        'csv',
      ],
      { cwd: relay.dir },
    );
    expect(cli.code, cli.stderr).toBe(0);
    const api = await apiClient(relay.ports.http!, ADMIN_TOKEN)('GET', `/v1/events/export?from=${small.from}&to=${small.to}&format=csv`);
    expect(api.status).toBe(200);
    expect(api.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(api.body).toBe(cli.stdout);
    const rows = cli.stdout.split('\r\n');
    expect(rows[0]).toBe('id,at,queue_id,message_id,credential,recipient,domain,status,smtp_code,response,category,tags');
    expect(rows[1]).toMatch(/,recipient-1@example\.org,example\.org,delivered,250,"550 ""quoted"", with a comma",,$/);
    expect(rows[2]).toMatch(/,recipient-2@example\.org,example\.org,delivered,,"line one$/);
    expect(rows[3]).toBe('line two",,');
    expect(rows[4]).toMatch(/,recipient-3@example\.org,example\.org,delivered,250,,,$/);
    expect(rows).toHaveLength(6);

    const bad = await apiClient(relay.ports.http!, ADMIN_TOKEN)('GET', `/v1/events/export?from=${small.to}&to=${small.from}`);
    expect([bad.status, bad.body.error.field]).toEqual([422, 'from']);
    expect((await apiClient(relay.ports.http!)('GET', `/v1/events/export?from=0`)).status).toBe(401);
    expect((await runCli(['--config', relay.configFile, 'events', 'export', '--from', 'yesterday'], { cwd: relay.dir })).stderr).toMatch(
      /ISO 8601/,
    );
  });
});
