// A virtual clock for code that takes a `Timers` (agent/check/scheduler.ts): time moves only when a test
// advances it, so assertions about delays are exact and a loaded machine cannot break them.
import type { Timers } from "../../agent/check/scheduler.ts";

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets promise callbacks and anything they start run to completion (one macrotask turn). */
const settle = () => new Promise<void>((r) => setImmediate(r));

export class VirtualClock implements Timers {
  private t = 0;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  now(): number {
    return this.t;
  }

  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Timers still armed. */
  get armed(): number {
    return this.pending.size;
  }

  /** Runs every timer due up to now + ms, in time order, letting promise work settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      let next: Pending | undefined;
      let nextId = 0;
      for (const [id, p] of this.pending)
        if (p.at <= end && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq))) {
          next = p;
          nextId = id;
        }
      if (!next) break;
      this.pending.delete(nextId);
      this.t = next.at;
      next.fn();
      await settle();
    }
    this.t = end;
  }
}
