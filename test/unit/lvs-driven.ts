// An LVS runtime whose health events the caller fires: the scheduler is replaced by one that only
// records the real servers it is given, and the runtime's "later this tick" runs when the caller
// says. Unit tests and bench/ipvs-apply.ts drive the check child's engine with it.
import pino from "pino";
import type { HealthEvent } from "../../agent/check/scheduler.ts";
import type { IpvsClient } from "../../agent/lvs/ipvs-client.ts";
import { LvsRuntime, type Scheduler } from "../../agent/lvs/runtime.ts";

export interface DrivenRuntime {
  rt: LvsRuntime;
  /** rsIds in the order the runtime added them (config order on the first apply) */
  ids: string[];
  /** delivers a health event as the scheduler would, then runs the reconcile it scheduled */
  fire(e: HealthEvent): void;
}

export function drivenRuntime(client: () => IpvsClient, logLevel = "silent"): DrivenRuntime {
  let onChange: ((e: HealthEvent) => void) | null = null;
  let pending: (() => void) | null = null;
  const ids: string[] = [];
  const scheduler: Scheduler = {
    add: (d) => void ids.push(d.rs),
    remove: () => {},
    stop: () => {},
    status: () => undefined,
    keys: () => ids,
    suspend: () => {},
  };
  const rt = new LvsRuntime({
    log: pino({ level: logLevel }),
    openIpvs: client,
    scheduler: (o) => {
      onChange = o.onChange;
      return scheduler;
    },
    defer: (fn) => {
      pending = fn;
    },
    notify: () => {},
    hostAddresses: () => [],
    resyncMs: 0,
  });
  return {
    rt,
    ids,
    fire(e) {
      if (!onChange) throw new Error("the runtime made no scheduler");
      onChange(e);
      const run = pending;
      pending = null;
      run?.();
    },
  };
}
