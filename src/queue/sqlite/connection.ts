/**
 * One better-sqlite3 connection shared by the SQLite stores, and the two ways they write: a
 * durable batch (committed with synchronous=NORMAL, then the WAL fsync'd off the event loop
 * before anyone is told: wal-sync.ts) and a batch that is committed but not fsync'd (delivery
 * outcomes and leases, whose loss in a power cut means one more delivery, never a lost message).
 * Writes that arrive in the same tick share one transaction, so durability does not cap
 * throughput at the disk's fsync rate.
 */
import Database from 'better-sqlite3';
import { StorageFullError } from '../storage.js';
import { createPrivateDatabaseFile } from './private-file.js';
import { WalSync } from './wal-sync.js';

interface Pending<T> {
  write: () => T;
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

export class SqliteConnection {
  readonly db: Database.Database;
  private readonly walSync: WalSync;
  private readonly syncNormal: Database.Statement;
  private readonly syncFull: Database.Statement;
  private durable: Pending<unknown>[] = [];
  private lazy: Pending<unknown>[] = [];

  constructor(file: string) {
    if (file !== ':memory:') createPrivateDatabaseFile(file);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.walSync = new WalSync(file === ':memory:' ? undefined : `${file}-wal`);
    this.syncNormal = this.db.prepare(`PRAGMA synchronous = NORMAL`);
    this.syncFull = this.db.prepare(`PRAGMA synchronous = FULL`);
  }

  /** Runs `write` in the next shared transaction; resolves with its result once that is on disk. */
  durableWrite<T>(write: () => T): Promise<T> {
    return this.join(this.durable, write, () => this.flushDurable());
  }

  /** Runs `write` in the next shared transaction; resolves once committed (not fsync'd). */
  lazyWrite<T>(write: () => T): Promise<T> {
    return this.join(this.lazy, write, () => this.flushLazy());
  }

  /** A write transaction now, not fsync'd; for claims and leases whose loss a lease expiry repairs. */
  writeNow<T>(write: () => T): T {
    try {
      return this.withoutFsync(() => this.db.transaction(write).immediate());
    } catch (err) {
      throw toStorageError(err);
    }
  }

  close(): void {
    this.flushDurable();
    this.flushLazy();
    this.walSync.close();
    this.db.close();
  }

  private join<T>(queue: Pending<unknown>[], write: () => T, flush: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  private runBatch(batch: Pending<unknown>[]): unknown[] | undefined {
    try {
      return this.withoutFsync(() => this.db.transaction(() => batch.map((p) => p.write())).immediate());
    } catch (err) {
      const failure = toStorageError(err);
      for (const p of batch) p.reject(failure);
      return undefined;
    }
  }

  private flushDurable(): void {
    const batch = this.durable;
    this.durable = [];
    if (batch.length === 0) return;
    const results = this.runBatch(batch);
    if (!results) return;
    this.walSync.sync().then(
      () => batch.forEach((p, i) => p.resolve(results[i])),
      (err: Error) => batch.forEach((p) => p.reject(err)),
    );
  }

  private flushLazy(): void {
    const batch = this.lazy;
    this.lazy = [];
    if (batch.length === 0) return;
    const results = this.runBatch(batch);
    if (results) batch.forEach((p, i) => p.resolve(results[i]));
  }

  private withoutFsync<T>(write: () => T): T {
    this.syncNormal.run();
    try {
      return write();
    } finally {
      this.syncFull.run();
    }
  }
}

/** better-sqlite3 errors carry SQLite's extended result code, e.g. SQLITE_FULL. */
export function toStorageError(err: unknown): Error {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('SQLITE_FULL')) return new StorageFullError(err);
  return err as Error;
}
