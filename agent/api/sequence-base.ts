// Where this run's event sequences start. WatchEvents clients resume with `from_sequence`, so a new run
// must number above everything an earlier run numbered, or a reconnecting client would silently get
// the wrong events. The base is derived from the wall clock in microseconds (a run would have to
// publish more than a million events per second of its life to catch up with the next run's base),
// and never below the previous run's base plus 2^32, kept in STATE_DIR/events.json: a wall clock
// stepped back between two runs cannot make sequences go down either. Sequences stay below 2^53 (exact
// in JSON and JavaScript numbers) until the year 2255.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../config/store.ts";
import type { Logger } from "../observe/log.ts";

export const EVENTS_FILE = "events.json";
/** more events than one run can publish */
export const RUN_SPAN = 2 ** 32;

const Persisted = z.object({ version: z.literal(1), base: z.number().int().nonnegative() });

/** The base of a run started at `nowMs` after a run whose base was `prev` (null: none known). */
export function nextSequenceBase(prev: number | null, nowMs: number): number {
  const fromClock = Math.floor(nowMs) * 1000;
  return prev === null ? fromClock : Math.max(fromClock, prev + RUN_SPAN);
}

/** Reads the previous base, picks this run's and persists it before any event is numbered. */
export function takeSequenceBase(stateDir: string, log: Logger, nowMs = Date.now()): number {
  const path = join(stateDir, EVENTS_FILE);
  let prev: number | null = null;
  try {
    const r = Persisted.safeParse(JSON.parse(readFileSync(path, "utf8")));
    if (r.success) prev = r.data.base;
    else log.warn({ path }, "event sequence base unreadable; using the clock alone");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
      log.warn({ path, err: String(e) }, "event sequence base unreadable; using the clock alone");
    }
  }
  const base = nextSequenceBase(prev, nowMs);
  writeFileAtomic(path, JSON.stringify({ version: 1, base }));
  return base;
}
