// Runs the checkers of many real servers on one event loop, with keepalived's state rules
// (check_api.c, check_data.c, ipwrapper.c update_svr_checker_state, and the *_epilog of each checker):
//
//  - each checker starts after a random delay in [0, warmup] (default warmup = delay_loop), so checks of
//    many servers do not fire together; then it runs every delay_loop, counted from the end of a check
//    (MISC_CHECK: from its start, as keepalived does);
//  - a checker starts up, or down with alpha;
//  - on startup one failure is enough to go down (keepalived sets retry_it = retry initially); once a
//    checker has passed, it goes down only after `retry` further failed attempts, spaced by
//    delay_before_retry; a success in between resets the count;
//  - a checker that is already down is re-checked every delay_loop (no retry cadence);
//  - a real server is up only while ALL its checkers are up;
//  - MISC_CHECK with misc_dynamic sets the weight: effective = weight + sum(status - 2 - weight) over the
//    dynamic checkers that last reported a weight (keepalived's cur_weight), floored at 0; a failing or
//    exit-0 script gives its share back.
//
// A callback fires when a real server's up state or effective weight changes. Only MISC_CHECK spawns a
// process. The per-check path is lean (it runs thousands of times a second): TCP_CHECK is called with a
// callback rather than through promises, and each checker's timer and completion callbacks are made
// once, when it is added, not per check.
import { dnsCheck } from "./dns.ts";
import { httpCheck } from "./http.ts";
import { miscCheck } from "./misc.ts";
import { pingCheck } from "./ping.ts";
import { type Done, tcpCheck, tcpProbe } from "./tcp.ts";
import {
  type CheckerSpec,
  type CheckResult,
  type CheckTiming,
  checkerName,
  nowMs,
  withDefaults,
} from "./types.ts";
import { udpCheck } from "./udp.ts";

/** The checkers of one real server. */
export interface RealServerChecks {
  /** the caller's key for the real server, e.g. "192.0.2.10:80@VS 198.51.100.1:80" */
  rs: string;
  /** configured weight (keepalived's iweight); default 1 */
  weight?: number;
  checkers: CheckerSpec[];
}

export interface HealthEvent {
  rs: string;
  up: boolean;
  /** effective weight, present when a MISC_CHECK with misc_dynamic belongs to the server */
  weight?: number;
  /** which checker caused the change and why, e.g. "TCP_CHECK 192.0.2.10:80: ECONNREFUSED" */
  reason: string;
  /** duration of the check that caused the change */
  latencyMs: number;
}

export interface CheckerStatus {
  name: string;
  up: boolean;
  hasRun: boolean;
  retryIt: number;
  last?: CheckResult;
}

export interface RealServerStatus {
  rs: string;
  up: boolean;
  /** ha_suspend: checks paused while the virtual server's address is not on this host */
  suspended: boolean;
  weight?: number;
  checkers: CheckerStatus[];
}

export type RunCheck = (spec: CheckerSpec) => Promise<CheckResult>;

export interface SchedulerOptions {
  onChange: (e: HealthEvent) => void;
  /** every finished attempt, for metrics and logs */
  onResult?: (rs: string, checker: string, r: CheckResult) => void;
  /** replaces the real checks (tests of the state rules) */
  run?: RunCheck;
  /** [0, 1) source for warmup; default Math.random */
  random?: () => number;
  /** the clock and timers (tests drive the state rules on a virtual clock); default the real ones */
  timers?: Timers;
}

/** What the scheduler needs of a clock. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
  /** milliseconds, monotonic */
  now(): number;
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  now: nowMs,
};

/** Runs one check of any type. */
export function runCheck(spec: CheckerSpec): Promise<CheckResult> {
  switch (spec.type) {
    case "TCP_CHECK":
      return tcpCheck(spec);
    case "HTTP_GET":
    case "SSL_GET":
      return httpCheck(spec);
    case "DNS_CHECK":
      return dnsCheck(spec);
    case "UDP_CHECK":
      return udpCheck(spec);
    case "PING_CHECK":
      return pingCheck(spec);
    case "MISC_CHECK":
      return miscCheck(spec);
  }
}

/** A check that reports through a callback, exactly once. */
type RunCheckCb = (spec: CheckerSpec, done: Done) => void;

function failure(e: unknown): CheckResult {
  return { ok: false, reason: e instanceof Error ? e.message : String(e), latencyMs: 0 };
}

function promiseRunner(run: RunCheck): RunCheckCb {
  return (spec, done) => {
    let p: Promise<CheckResult>;
    try {
      p = run(spec);
    } catch (e) {
      done(failure(e));
      return;
    }
    p.then(done, (e: unknown) => done(failure(e)));
  };
}

const runAny = promiseRunner(runCheck);
const defaultRunner: RunCheckCb = (spec, done) => {
  if (spec.type === "TCP_CHECK") tcpProbe(spec, done);
  else runAny(spec, done);
};

interface CheckerState {
  spec: CheckerSpec;
  name: string;
  timing: CheckTiming;
  dynamic: boolean;
  isUp: boolean;
  hasRun: boolean;
  retryIt: number;
  /** keepalived's cur_weight: this checker's share of the effective weight */
  curWeight: number;
  last?: CheckResult;
  timer: unknown;
  /** when the check in flight started */
  started: number;
  /** this checker's fire() and settle(), bound once */
  onTimer: () => void;
  onDone: Done;
}

interface ServerState {
  rs: string;
  weight: number;
  dynamic: boolean;
  checkers: CheckerState[];
  up: boolean;
  effective: number;
  removed: boolean;
  suspended: boolean;
}

export class CheckScheduler {
  private readonly servers = new Map<string, ServerState>();
  private readonly run: RunCheckCb;
  private readonly random: () => number;
  private readonly timers: Timers;
  private stopped = false;

  constructor(private readonly opts: SchedulerOptions) {
    this.run = opts.run ? promiseRunner(opts.run) : defaultRunner;
    this.random = opts.random ?? Math.random;
    this.timers = opts.timers ?? realTimers;
  }

  /** Starts checking a real server (replacing an earlier one with the same key). */
  add(def: RealServerChecks): void {
    this.remove(def.rs);
    const weight = def.weight ?? 1;
    const checkers = def.checkers.map((spec): CheckerState => {
      const timing = withDefaults(spec);
      return {
        spec,
        name: checkerName(spec),
        timing,
        dynamic: spec.type === "MISC_CHECK" && spec.miscDynamic === true,
        isUp: !timing.alpha,
        hasRun: false,
        retryIt: timing.retry,
        curWeight: 0,
        timer: null,
        started: 0,
        onTimer: noop,
        onDone: noop,
      };
    });
    const s: ServerState = {
      rs: def.rs,
      weight,
      dynamic: checkers.some((c) => c.dynamic),
      checkers,
      up: checkers.every((c) => c.isUp),
      effective: weight,
      removed: false,
      suspended: false,
    };
    for (const c of checkers) {
      c.onTimer = () => this.fire(s, c);
      c.onDone = (r) => this.settle(s, c, r);
    }
    this.servers.set(def.rs, s);
    if (this.stopped) return;
    for (const c of checkers) {
      const warmup = c.timing.warmupMs > 0 ? c.timing.warmupMs * this.random() : 0;
      c.timer = this.timers.set(c.onTimer, warmup);
    }
  }

  /** Stops checking a real server; a check in flight finishes without effect. */
  remove(rs: string): void {
    const s = this.servers.get(rs);
    if (!s) return;
    s.removed = true;
    for (const c of s.checkers) if (c.timer !== null) this.timers.clear(c.timer);
    this.servers.delete(rs);
  }

  /** Stops everything. */
  stop(): void {
    this.stopped = true;
    for (const rs of [...this.servers.keys()]) this.remove(rs);
  }

  /**
   * ha_suspend: a suspended server's checkers keep their state and their timers, but a tick only
   * re-arms itself for delay_loop (keepalived's disabled checker); a check in flight still reports.
   */
  suspend(rs: string, suspended: boolean): void {
    const s = this.servers.get(rs);
    if (s) s.suspended = suspended;
  }

  status(rs: string): RealServerStatus | undefined {
    const s = this.servers.get(rs);
    if (!s) return undefined;
    return {
      rs,
      up: s.up,
      suspended: s.suspended,
      ...(s.dynamic ? { weight: s.effective } : {}),
      checkers: s.checkers.map((c) => ({
        name: c.name,
        up: c.isUp,
        hasRun: c.hasRun,
        retryIt: c.retryIt,
        ...(c.last ? { last: c.last } : {}),
      })),
    };
  }

  /** Keys of the real servers being checked. */
  keys(): string[] {
    return [...this.servers.keys()];
  }

  private fire(s: ServerState, c: CheckerState): void {
    c.timer = null;
    if (s.suspended) {
      c.timer = this.timers.set(c.onTimer, c.timing.delayLoopMs);
      return;
    }
    c.started = this.timers.now();
    try {
      this.run(c.spec, c.onDone);
    } catch (e) {
      c.onDone(failure(e));
    }
  }

  private settle(s: ServerState, c: CheckerState, r: CheckResult): void {
    if (s.removed) return;
    c.last = r;
    this.opts.onResult?.(s.rs, c.name, r);
    const t = c.timing;
    let delay = t.delayLoopMs;
    let changed = false;
    if (r.ok) {
      c.retryIt = 0;
      if (c.dynamic) {
        const share = r.weight !== undefined ? r.weight - s.weight : 0;
        if (share !== c.curWeight) {
          c.curWeight = share;
          changed = true;
        }
      }
      if (!c.isUp || !c.hasRun) {
        if (!c.isUp) changed = true;
        c.isUp = true;
      }
    } else if (c.isUp || !c.hasRun) {
      if (c.retryIt >= t.retry) {
        c.retryIt = 0;
        if (c.isUp) changed = true;
        c.isUp = false;
        if (c.curWeight !== 0) {
          c.curWeight = 0;
          changed = true;
        }
      } else {
        c.retryIt++;
        delay = t.delayBeforeRetryMs;
      }
    }
    c.hasRun = true;
    if (changed) this.publish(s, c, r);
    if (c.spec.type === "MISC_CHECK") delay = Math.max(0, delay - (this.timers.now() - c.started));
    if (!this.stopped && !s.removed) c.timer = this.timers.set(c.onTimer, delay);
  }

  private publish(s: ServerState, c: CheckerState, r: CheckResult): void {
    const up = s.checkers.every((x) => x.isUp);
    let effective = s.weight;
    for (const x of s.checkers) effective += x.curWeight;
    effective = Math.max(0, effective);
    const weightChanged = s.dynamic && effective !== s.effective;
    if (up === s.up && !weightChanged) return;
    s.up = up;
    s.effective = effective;
    this.opts.onChange({
      rs: s.rs,
      up,
      ...(s.dynamic ? { weight: effective } : {}),
      reason: `${c.name}: ${r.reason}`,
      latencyMs: r.latencyMs,
    });
  }
}

function noop(): void {}
