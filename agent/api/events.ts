// The event log behind WatchEvents: a bounded ring of events with consecutive sequence numbers, and
// live subscribers. Pure bookkeeping (no gRPC), so that replay and "you fell behind" are unit-tested.
//
// Sequence numbers are consecutive from `base + 1`. The agent picks a base above every sequence of its
// previous runs (sequence-base.ts), so sequences keep increasing across restarts: a client that comes
// back with a sequence from an earlier run asks for events older than everything held and is told
// that it lost them. A client reconnecting with `from_sequence = last_seen + 1` gets everything still
// held; if some of it was already dropped it is told exactly which range it lost (EventsLost) before
// the replay, and resyncs with GetState. A sequence beyond the newest one + 1 is from no history of
// this agent ("beyond").
import type * as pb from "../../proto/gen/vigil/v1/agent.ts";

/** An event as the ring stores it: the proto Event minus its envelope. */
export type EventBody = Omit<pb.Event, "sequence" | "atUnixMs">;

export interface Lost {
  firstMissed: number;
  lastMissed: number;
}

export type Subscriber = (e: pb.Event) => void;

export type Since = { kind: "ok"; lost: Lost | null; events: pb.Event[] } | { kind: "beyond"; last: number };

export class EventRing {
  private readonly buf: (pb.Event | undefined)[];
  /** sequence of the next event pushed */
  private next: number;
  private readonly subs = new Set<Subscriber>();

  /** The first event gets sequence `base + 1`. */
  constructor(
    readonly capacity = 4096,
    readonly base = 0,
  ) {
    if (capacity < 1) throw new Error("event ring capacity must be >= 1");
    if (!Number.isSafeInteger(base) || base < 0)
      throw new Error("event ring base must be a safe integer >= 0");
    this.buf = new Array(capacity);
    this.next = base + 1;
  }

  /** sequence of the newest event; `base` when none yet */
  get last(): number {
    return this.next - 1;
  }

  /** sequence of the oldest event held; `last + 1` when empty */
  get first(): number {
    return Math.max(this.base + 1, this.next - this.capacity);
  }

  get subscribers(): number {
    return this.subs.size;
  }

  push(body: EventBody, at: number = Date.now()): pb.Event {
    const e: pb.Event = { ...body, sequence: this.next, atUnixMs: Math.round(at) };
    this.buf[this.next % this.capacity] = e;
    this.next++;
    for (const s of this.subs) s(e);
    return e;
  }

  /**
   * What a client asking for events from `from` (inclusive; 0 = none, only live ones) gets before the
   * live ones: the gap it cannot have (if any) and the held events.
   */
  since(from: number): Since {
    if (from <= 0 || from === this.last + 1) return { kind: "ok", lost: null, events: [] };
    if (from > this.last + 1) return { kind: "beyond", last: this.last };
    const first = this.first;
    const lost = from < first ? { firstMissed: from, lastMissed: first - 1 } : null;
    const events: pb.Event[] = [];
    for (let s = Math.max(from, first); s <= this.last; s++) {
      const e = this.buf[s % this.capacity];
      if (e && e.sequence === s) events.push(e);
    }
    return { kind: "ok", lost, events };
  }

  subscribe(fn: Subscriber): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }
}
