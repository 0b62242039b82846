/**
 * Durability off the event loop. A commit made with synchronous=NORMAL in WAL mode is written
 * to the -wal file but not fsync'd; fsync'ing that file afterwards makes it exactly as durable
 * as a synchronous=FULL commit (recovery replays every checksummed frame up to the last commit,
 * and a checkpoint syncs the WAL before copying it). Doing that fsync on libuv's thread pool
 * keeps the event loop serving sessions meanwhile, and one fsync covers every commit made
 * before it started, so commits group themselves under load.
 */
import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';

export class WalSync {
  private fd: number | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  /** `walFile` undefined (an in-memory database) makes every sync a no-op. */
  constructor(private readonly walFile: string | undefined) {}

  /** Resolves once everything committed before the call is on disk. */
  sync(): Promise<void> {
    if (!this.walFile) return Promise.resolve();
    if (!this.running) {
      this.running = this.fsync().finally(() => (this.running = undefined));
      return this.running;
    }
    // The fsync in flight may have started before this commit: one more after it covers it
    // and every other commit that arrives meanwhile.
    this.queued ??= this.running
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        return this.sync();
      });
    return this.queued;
  }

  /** Syncs what is committed, synchronously, for a store that is closing. */
  close(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    // A thread-pool fsync may still use the descriptor; the process is ending or it is one fd.
    if (!this.running) closeSync(this.fd);
    this.fd = undefined;
  }

  private fsync(): Promise<void> {
    return new Promise((resolve, reject) => {
      // Opened on first use: the -wal file exists once the first transaction committed.
      this.fd ??= openSync(this.walFile!, 'r');
      fsync(this.fd, (err) => (err ? reject(err) : resolve()));
    });
  }
}
