/**
 * Exports a window of events for a data warehouse, as CSV (RFC 4180) or JSON Lines, streamed:
 * storage hands over one page at a time (EventLog.pages, by id) and the next page is read only
 * when the reader has taken the last, so an export of any size holds about one page in memory.
 * The CLI writes the stream to stdout; the HTTP API sends it as the response body.
 */
import { Readable } from 'node:stream';
import { isoTime } from '../envelope/time.js';
import type { EventLog, EventRecord, EventWindow } from '../queue/storage.js';

export const EXPORT_FORMATS = ['csv', 'jsonl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  jsonl: 'application/x-ndjson; charset=utf-8',
};

const PAGE_SIZE = 1000;

/** One event as exported: every field of the event log, times in ISO 8601. */
export function exportRecord(e: EventRecord) {
  return {
    id: e.id,
    at: isoTime(e.at),
    queue_id: e.queueId,
    message_id: e.messageId,
    credential: e.credential,
    recipient: e.recipient,
    domain: e.domain,
    status: e.status,
    smtp_code: e.smtpCode,
    response: e.response,
    category: e.category,
    tags: e.tags,
  };
}

type Exported = ReturnType<typeof exportRecord>;
const COLUMNS = Object.keys(exportRecord({ tags: [] } as unknown as EventRecord)) as (keyof Exported)[];

/** A CSV field: quoted when it holds a quote, comma or line break; a list (tags) as one comma-separated field; null empty. */
function csvField(value: Exported[keyof Exported]): string {
  const text = value === null ? '' : Array.isArray(value) ? value.join(',') : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const LINE: Record<ExportFormat, (e: EventRecord) => string> = {
  csv: (e) => {
    const record = exportRecord(e);
    return `${COLUMNS.map((c) => csvField(record[c])).join(',')}\r\n`;
  },
  jsonl: (e) => `${JSON.stringify(exportRecord(e))}\n`,
};

async function* exportChunks(events: Pick<EventLog, 'pages'>, window: EventWindow, format: ExportFormat): AsyncGenerator<string> {
  if (format === 'csv') yield `${COLUMNS.join(',')}\r\n`;
  const line = LINE[format];
  for await (const page of events.pages(window, PAGE_SIZE)) yield page.map(line).join('');
}

/** The export as a byte stream that reads storage as it is consumed. */
export function exportEvents(events: Pick<EventLog, 'pages'>, window: EventWindow, format: ExportFormat): Readable {
  return Readable.from(exportChunks(events, window, format), { objectMode: false });
}
