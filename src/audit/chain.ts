/**
 * The audit log's hash chain: each row's hash is SHA-256 over the previous row's hash and a
 * canonical serialisation of the row (its sequence number included), so editing, deleting or
 * reordering any row but the newest breaks the chain at that row. Removing the newest rows
 * leaves a shorter valid chain: compare the head hash `relay audit verify` prints with one kept
 * elsewhere to notice that.
 */
import { createHash } from 'node:crypto';
import type { AuditEntry, AuditLog, NewAuditEntry } from '../queue/storage.js';

/** JSON with object keys sorted at every level, so equal values always serialise alike. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function rowHash(prevHash: string, row: NewAuditEntry & { seq: number }): string {
  const fields = [row.seq, row.at, row.actor, row.action, row.target, row.change];
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(fields)).digest('hex');
}

export type ChainCheck =
  | { ok: true; rows: number; head: string }
  | { ok: false; rows: number; seq: number; problem: 'edited' | 'missing' | 'out-of-chain'; message: string };

const PAGE = 1000;

/** Walks the whole log, oldest first, and stops at the first row that breaks the chain. */
export async function verifyChain(log: Pick<AuditLog, 'list'>): Promise<ChainCheck> {
  let prev: AuditEntry | undefined;
  let rows = 0;
  for (;;) {
    const page = await log.list({ afterSeq: prev?.seq ?? 0, limit: PAGE });
    for (const row of page) {
      const expected = (prev?.seq ?? 0) + 1;
      if (row.seq !== expected) {
        const gap = row.seq - 1 === expected ? `row ${expected} is` : `rows ${expected} to ${row.seq - 1} are`;
        return { ok: false, rows, seq: expected, problem: 'missing', message: `${gap} missing: deleted from the audit log` };
      }
      if (row.prevHash !== (prev?.hash ?? '')) {
        return {
          ok: false,
          rows,
          seq: row.seq,
          problem: 'out-of-chain',
          message: `row ${row.seq} is not chained to row ${row.seq - 1}: a row was replaced, reordered or deleted and renumbered`,
        };
      }
      if (rowHash(row.prevHash, row) !== row.hash) {
        return {
          ok: false,
          rows,
          seq: row.seq,
          problem: 'edited',
          message: `row ${row.seq} was edited: its content does not match its hash`,
        };
      }
      prev = row;
      rows++;
    }
    if (page.length < PAGE) return { ok: true, rows, head: prev?.hash ?? '' };
  }
}
