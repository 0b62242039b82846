/**
 * Group commit: calls that arrive in the same tick, or while the previous commit is in flight,
 * share the next transaction. One commit runs at a time per batcher, so under load batches grow
 * with the commit latency instead of commits queuing behind each other.
 */

/** A result that sends the item on to the next batch (it could not be decided in this one). */
export const NEXT_BATCH = Symbol('next batch');

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

export interface BatchLimits<I> {
  maxItems: number;
  /** With `maxWeight`: a batch takes items until their weight reaches it (at least one item). */
  weight?: (item: I) => number;
  maxWeight?: number;
}

export class GroupCommit<I, O> {
  private waiting: Waiting<I, O>[] = [];
  private running: Promise<void> | undefined;
  private scheduled = false;

  constructor(
    private readonly commit: (items: I[]) => Promise<(O | typeof NEXT_BATCH)[]>,
    private readonly limits: BatchLimits<I>,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.running || this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.running = this.drain();
      });
    });
  }

  /** Resolves once every submitted item is committed or rejected. */
  async idle(): Promise<void> {
    while (this.running || this.scheduled) await (this.running ?? new Promise((resolve) => setImmediate(resolve)));
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.take();
      try {
        const results = await this.commit(batch.map((w) => w.item));
        const again: Waiting<I, O>[] = [];
        batch.forEach((w, i) => {
          const result = results[i]!;
          if (result === NEXT_BATCH) again.push(w);
          else w.resolve(result);
        });
        this.waiting.unshift(...again);
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.running = undefined;
  }

  private take(): Waiting<I, O>[] {
    const { maxItems, weight, maxWeight } = this.limits;
    let n = 0;
    let total = 0;
    while (n < this.waiting.length && n < maxItems) {
      if (weight && maxWeight !== undefined) {
        total += weight(this.waiting[n]!.item);
        if (total > maxWeight && n > 0) break;
      }
      n++;
    }
    return this.waiting.splice(0, n);
  }
}
