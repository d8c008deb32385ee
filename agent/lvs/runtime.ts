// The check child's engine: health checkers + IPVS programming, the imperative shell around the pure
// computeDesired() and reconcile().
//
// - apply(config): the real servers' checkers go into one CheckScheduler. On a reload only real servers
//   whose settings changed (realServerFingerprint) are re-added; unchanged ones keep their checkers'
//   state, so a reload does not flap health or re-run alpha.
// - Every health change marks the table dirty; one reconcile runs per tick whatever the number of
//   changes (a burst of 100 failures is one kernel dump and one batch of ops).
// - A reconcile computes ops for the services of the config only (owned = this config's services plus
//   the previous config's, so removed virtual servers are deleted and foreign services are never
//   touched), and applies them; a kernel refusal is logged with its service and the other services are
//   still programmed. The kernel is the source of truth: it is read at start (adoption), on a reload,
//   after any refusal and every resyncMs; in between, vigil knows what it applied and a health change
//   costs only its own ops (IpvsTableSync).
// - No IPVS in this kernel: logged once, reported in status(), checks keep running; the child does not
//   exit (a crash loop would not bring the module back). Each config reload tries again.
// - Stop leaves the table as is: the kernel keeps forwarding while vigil restarts, and the next start
//   adopts it without a flush. (keepalived removes its services on stop; vigil's restart-safety wins.)
//   With omega, stop runs the notify_down / quorum_down scripts as keepalived does at shutdown.
// - Drained real servers (setDrained, the operator's set from the API) stay in the table with weight 0.
import { mapCheckers } from "../check/map.ts";
import {
  type CheckerStatus,
  CheckScheduler,
  type HealthEvent,
  type RunCheck,
  type SchedulerOptions,
} from "../check/scheduler.ts";
import type { CheckResult } from "../check/types.ts";
import { realServerFingerprint } from "../config/diff.ts";
import { type Config, realServerKey, type VirtualServer, virtualServerKey } from "../config/model.ts";
import { resolveIdentity, systemAccounts } from "../config/script-user.ts";
import { Kernel } from "../net/kernel.ts";
import type { Logger } from "../observe/log.ts";
import { spawnNotify, splitCommand } from "../vrrp/scripts.ts";
import { destKeyString, serviceKeyString } from "../wire/ipvs.ts";
import {
  configuredWeight,
  type DesiredTable,
  initialHealth,
  planVirtualServer,
  type RsHealth,
  rsId,
  type VsPart,
  type VsPlan,
} from "./desired.ts";
import { type HostAddress, haSuspendActive, haSuspendChanges } from "./ha-suspend.ts";
import { type IpvsClient, IpvsError, IpvsTableSync, openIpvs } from "./ipvs-client.ts";
import type { DesiredService, IpvsOp } from "./reconcile.ts";

/** Ops by kind, for logs: `del` > 0 after a restart would mean the adopt-without-flush promise broke. */
function opCounts(ops: readonly IpvsOp[]): { ops: number; add: number; edit: number; del: number } {
  const c = { ops: ops.length, add: 0, edit: 0, del: 0 };
  for (const o of ops) {
    if (o.op.startsWith("add")) c.add++;
    else if (o.op.startsWith("edit")) c.edit++;
    else c.del++;
  }
  return c;
}

/** The part of CheckScheduler the runtime uses (a fake in tests is fine). */
export type Scheduler = Pick<CheckScheduler, "add" | "remove" | "stop" | "status" | "keys" | "suspend">;

export interface LvsRuntimeDeps {
  log: Logger;
  /** opens the kernel client; throws IpvsError "unavailable" without IPVS. Default: a netlink socket */
  openIpvs?: () => IpvsClient;
  /** builds the scheduler; default CheckScheduler */
  scheduler?: (opts: SchedulerOptions) => Scheduler;
  /** replaces the real checks (tests) */
  runCheck?: RunCheck;
  /** runs a notify/quorum script; default spawnNotify */
  notify?: (argv: string[], what: string) => void;
  /** how "later this tick" is scheduled; default setTimeout 0 */
  defer?: (fn: () => void) => void;
  /** called after each reconcile (the child publishes state) */
  onUpdate?: () => void;
  /** this host's addresses, for ha_suspend; default: an rtnetlink address dump */
  hostAddresses?: () => HostAddress[];
  /** how often ha_suspend looks at the host's addresses; default 1000 ms */
  haSuspendPollMs?: number;
  /**
   * between full kernel reads a reconcile sends only the ops of what changed; every resyncMs (default
   * 60 s; 0: never) the kernel is read again, so a manual change to a vigil service gets repaired
   */
  resyncMs?: number;
  /** health and quorum changes, for the API's event stream */
  onEvent?: (e: LvsEvent) => void;
}

/** What the API's WatchEvents reports; `vs`/`rs` are virtualServerKey / realServerKey. */
export type LvsEvent =
  | { type: "health"; vs: string; rs: string; up: boolean; weight: number; reason: string }
  | { type: "quorum"; vs: string; up: boolean; weightSum: number; quorum: number; hysteresis: number };

export type IpvsState = "ok" | "unavailable" | "error";

export interface RsStatus {
  id: string;
  key: string;
  up: boolean;
  weight: number;
  /** in vigil's desired table, and with which weight */
  inTable: boolean;
  tableWeight?: number;
  /** present in the kernel's table after the last reconcile (per service: all services of the vs) */
  inKernel: boolean;
  kernelWeight?: number;
  /** ha_suspend: checks paused while the virtual server's address is not on this host */
  suspended: boolean;
  /** drained by an operator (weight 0 in the table) */
  drained: boolean;
  /** wall clock (ms) of the last finished check of any of its checkers */
  lastCheckAt?: number;
  checkers: CheckerReport[];
}

/** Attempts of one checker since it was (re)created, for metrics: counters only ever grow. */
export interface CheckerTotals {
  checks: number;
  failures: number;
  latencyMsSum: number;
}

export type CheckerReport = CheckerStatus & CheckerTotals;

/** Kernel programming since the check child started, for metrics. */
export interface IpvsTotals {
  /** reconciles that reached the kernel (read the table) */
  reconciles: number;
  /** ops sent, ops the kernel accepted, ops it refused, ops skipped after their service failed */
  ops: number;
  applied: number;
  errors: number;
  skipped: number;
  /** reconciles that failed as a whole (table dump or socket error) */
  failures: number;
}

export interface VsStatus {
  key: string;
  services: string[];
  quorum: number;
  hysteresis: number;
  weightSum: number;
  quorumUp: boolean;
  sorryActive: boolean;
  /** every service of the virtual server is in the kernel */
  inKernel: boolean;
  /** config problems (unknown group, bad granularity) and kernel refusals of the last reconcile */
  errors: string[];
  realServers: RsStatus[];
}

/** A type alias rather than an interface so it fits the state message's JSON record as it is. */
export type LvsStatus = {
  ipvs: IpvsState;
  ipvsError?: string;
  generation: number;
  lastReconcile?: { at: number; ops: number; applied: number; errors: number; skipped: number };
  totals: IpvsTotals;
  virtualServers: VsStatus[];
};

interface RsEntry {
  vs: VirtualServer;
  vsKey: string;
  rsKey: string;
  notifyUp?: string;
  notifyDown?: string;
}

export class LvsRuntime {
  private cfg: Config | null = null;
  private generation = -1;
  private readonly scheduler: Scheduler;
  private readonly health = new Map<string, RsHealth>();
  /** realServerFingerprint of each real server being checked, by rsId */
  private readonly fingerprints = new Map<string, string>();
  /** rsId -> (virtual server, real server) of the current config, for scripts and events */
  private rsIndex = new Map<string, RsEntry>();
  private drained = new Set<string>();
  private readonly lastCheckAt = new Map<string, number>();
  private quorum = new Map<string, boolean>();
  private owned = new Set<string>();
  private table: DesiredTable | null = null;
  /** each virtual server's part of `table`, by virtualServerKey, reused while nothing of it changed */
  private parts = new Map<string, VsPart>();
  /** virtual servers whose part must be recomputed (a health change, a drain); "all" after a reload */
  private dirty: Set<string> | "all" = "all";
  /** the config's virtual servers with their keys, in config order */
  private vsList: { vs: VirtualServer; key: string }[] = [];
  private vsByKey = new Map<string, VirtualServer>();
  /** the kernel programmer: knows what it applied, so a change costs only its own ops */
  private sync: IpvsTableSync | null = null;
  /** the config generation the last sync ran for (a new one re-reads the kernel) */
  private syncedGeneration = -1;
  private resyncTimer: ReturnType<typeof setInterval> | null = null;
  private kernelErrors = new Map<string, string[]>();
  private client: IpvsClient | null = null;
  private ipvsState: IpvsState = "unavailable";
  private ipvsError: string | undefined;
  private loggedUnavailable = false;
  private scheduled = false;
  private programmedOnce = false;
  private stopped = false;
  private lastReconcile: LvsStatus["lastReconcile"];
  /** ha_suspend: whether each such virtual server's checkers run, and the poll that updates it */
  private haActive = new Map<string, boolean>();
  private haTimer: ReturnType<typeof setInterval> | null = null;
  private haDumpFailing = false;
  private readonly totals: IpvsTotals = {
    reconciles: 0,
    ops: 0,
    applied: 0,
    errors: 0,
    skipped: 0,
    failures: 0,
  };
  /** per rsId, per checker name */
  private readonly checkTotals = new Map<string, Map<string, CheckerTotals>>();
  private readonly defer: (fn: () => void) => void;
  private readonly notifyFn: (argv: string[], what: string) => void;

  constructor(private readonly deps: LvsRuntimeDeps) {
    const opts: SchedulerOptions = {
      onChange: (e) => this.onHealth(e),
      onResult: (rs, checker, r) => {
        this.lastCheckAt.set(rs, Date.now());
        this.countResult(rs, checker, r);
      },
    };
    if (deps.runCheck) opts.run = deps.runCheck;
    this.scheduler = deps.scheduler ? deps.scheduler(opts) : new CheckScheduler(opts);
    this.defer = deps.defer ?? ((fn) => setTimeout(fn, 0));
    this.notifyFn =
      deps.notify ??
      ((argv, what) => {
        // notify_up/down and quorum scripts run as script_user, as keepalived's do
        const as = resolveIdentity(systemAccounts(), this.cfg?.globalDefs ?? {});
        if ("error" in as) {
          deps.log.error({ script: argv[0], what, err: as.error }, "notify script not run");
          return;
        }
        spawnNotify(
          argv,
          (o) => {
            if (!o.ok)
              deps.log.warn({ script: argv[0], what, code: o.code, error: o.error }, "notify script failed");
          },
          undefined,
          as,
        );
      });
  }

  /** First config or a reload; returns what changed among real servers being checked. */
  apply(
    cfg: Config,
    generation = this.generation + 1,
  ): { added: number; changed: number; removed: number; kept: number } {
    if (this.stopped) throw new Error("LVS runtime stopped");
    this.cfg = cfg;
    this.generation = generation;
    const seen = new Set<string>();
    const stats = { added: 0, changed: 0, removed: 0, kept: 0 };
    const index = new Map<string, RsEntry>();
    /** rs_init_notifies: the notify_up of servers added now that start up */
    const initNotifies: [string, string][] = [];
    this.vsList = cfg.virtualServers.map((vs) => ({ vs, key: virtualServerKey(vs) }));
    const prevByKey = this.vsByKey;
    this.vsByKey = new Map(this.vsList.map(({ vs, key }) => [key, vs]));
    this.dirty = "all";
    for (const { vs, key: vsKey } of this.vsList) {
      for (const rs of vs.realServers) {
        const id = rsId(vs, rs);
        const entry: RsEntry = { vs, vsKey, rsKey: realServerKey(vs, rs) };
        if (rs.notifyUp) entry.notifyUp = rs.notifyUp;
        if (rs.notifyDown) entry.notifyDown = rs.notifyDown;
        index.set(id, entry);
        seen.add(id);
        // MISC_CHECK scripts run as script_user: a new one restarts them like any other setting
        const fp = `${realServerFingerprint(vs, rs)}|${cfg.globalDefs.scriptUser ?? ""}:${cfg.globalDefs.scriptGroup ?? ""}`;
        const old = this.fingerprints.get(id);
        if (old === fp) {
          stats.kept++;
          continue;
        }
        if (old === undefined) {
          stats.added++;
          if (cfg.globalDefs.rsInitNotifies && rs.notifyUp && initialHealth(vs, rs).up)
            initNotifies.push([id, rs.notifyUp]);
        } else stats.changed++;
        this.fingerprints.set(id, fp);
        // new settings mean new checkers: their state starts over (alpha applies again)
        this.health.delete(id);
        this.scheduler.remove(id);
        this.checkTotals.delete(id);
        if (rs.checkers.length > 0)
          this.scheduler.add({
            rs: id,
            weight: configuredWeight(vs, rs),
            checkers: mapCheckers(rs, vs, cfg.globalDefs),
          });
      }
    }
    const removedIds: string[] = [];
    for (const id of [...this.fingerprints.keys()]) {
      if (seen.has(id)) continue;
      removedIds.push(id);
      this.fingerprints.delete(id);
      this.health.delete(id);
      this.lastCheckAt.delete(id);
      this.scheduler.remove(id);
      this.checkTotals.delete(id);
      stats.removed++;
    }
    this.notifyRemoved(prevByKey, removedIds);
    this.rsIndex = index;
    // keepalived (init_service_vs) runs these as it adds the dest of a server that starts up
    for (const [id, cmd] of initNotifies) this.runScript(cmd, `notify_up ${id} (rs_init_notifies)`);
    this.haSuspend(true);
    // services of the previous config stay owned for this reconcile so that removed ones get deleted
    for (const s of this.table?.services ?? []) this.owned.add(serviceKeyString(s.key));
    // a virtual server that left the config forgets its quorum state (it starts over if it comes back)
    for (const k of [...this.quorum.keys()]) if (!this.vsByKey.has(k)) this.quorum.delete(k);
    if (!this.client) this.tryOpen();
    this.reconcileNow();
    return stats;
  }

  /**
   * A reload removed real servers or whole virtual servers: keepalived (clear_diff_services ->
   * clear_service_vs / clear_diff_rs -> clear_service_rs, not stopping) runs notify_down for each removed
   * real server that was alive, omega or not, and quorum_down for a removed virtual server whose quorum
   * was up. A real server removed from a virtual server that stays gets its quorum recomputed by the
   * next computation like any other change.
   */
  private notifyRemoved(prevByKey: ReadonlyMap<string, VirtualServer>, removedIds: string[]): void {
    const plans = this.table?.virtualServers ?? [];
    if (removedIds.length > 0) {
      const removed = new Set(removedIds);
      for (const plan of plans)
        for (const r of plan.realServers) {
          const cmd = this.rsIndex.get(r.id)?.notifyDown;
          if (removed.has(r.id) && r.up && cmd) this.runScript(cmd, `notify_down ${r.id} (removed)`);
        }
    }
    for (const plan of plans) {
      if (this.vsByKey.has(plan.key) || !plan.quorumUp) continue;
      const cmd = prevByKey.get(plan.key)?.quorumDown;
      if (cmd) this.runScript(cmd, `quorum_down ${plan.key} (removed)`);
    }
  }

  /**
   * Suspends or resumes the checkers of ha_suspend virtual servers from the host's addresses
   * (agent/lvs/ha-suspend.ts). After a config change every real server is set (new checkers start
   * enabled); on a poll only the virtual servers whose address came or went.
   */
  private haSuspend(all: boolean): void {
    const cfg = this.cfg;
    if (!cfg || this.stopped) return;
    const using = cfg.virtualServers.some((v) => v.haSuspend);
    if (!using) {
      if (this.haTimer) clearInterval(this.haTimer);
      this.haTimer = null;
      this.haActive = new Map();
      return;
    }
    let host: HostAddress[];
    try {
      host = this.deps.hostAddresses ? this.deps.hostAddresses() : defaultHostAddresses();
      this.haDumpFailing = false;
    } catch (e) {
      // keep the last known state: a failed dump says nothing about the addresses (logged once)
      if (!this.haDumpFailing)
        this.deps.log.error({ err: String(e) }, "ha_suspend: cannot read the host's addresses");
      this.haDumpFailing = true;
      host = [];
      if (!all) return;
    }
    const next = haSuspendActive(cfg.virtualServers, host);
    const changed = new Set(haSuspendChanges(this.haActive, next).map(([k]) => k));
    this.haActive = next;
    for (const [key, active] of next) {
      if (!all && !changed.has(key)) continue;
      const vs = this.vsByKey.get(key);
      if (!vs) continue;
      // a reload re-applies every state (new checkers start enabled) but logs only what changed
      if (changed.has(key))
        this.deps.log.info(
          { vs: key, active },
          active ? "activating health checkers" : "suspending health checkers",
        );
      for (const rs of vs.realServers) this.scheduler.suspend(rsId(vs, rs), !active);
    }
    this.haTimer ??= setInterval(() => this.haSuspend(false), this.deps.haSuspendPollMs ?? 1000);
  }

  /**
   * The complete set of drained real servers (rsIds), as the operator wants it now; ids not in the
   * config are kept (they apply if the server comes back) but have no effect.
   */
  setDrained(ids: Iterable<string>): void {
    this.drained = new Set(ids);
    this.dirty = "all";
    if (this.cfg && !this.stopped) this.reconcileNow();
  }

  /** Stops the checkers; leaves the kernel table in place (see the header). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.haTimer) clearInterval(this.haTimer);
    this.scheduler.stop();
    const plans = this.table?.virtualServers ?? [];
    for (const plan of plans) {
      const vs = this.vsByKey.get(plan.key);
      if (!vs?.omega) continue;
      for (const r of plan.realServers) {
        const cmd = this.rsIndex.get(r.id)?.notifyDown;
        if (r.up && cmd) this.runScript(cmd, `notify_down ${r.id} (omega)`);
      }
      if (plan.quorumUp && vs.quorumDown) this.runScript(vs.quorumDown, `quorum_down ${plan.key} (omega)`);
    }
  }

  status(): LvsStatus {
    const kernelDests = new Map<string, Map<string, number>>();
    // what the sync applied (or read after a refusal); asked for here, not per reconcile: it is a copy
    const kernel = this.client && this.sync?.client === this.client ? this.sync.kernelView() : [];
    for (const k of kernel) {
      const m = new Map<string, number>();
      for (const d of k.dests) m.set(destKeyString(d), d.weight);
      kernelDests.set(serviceKeyString(k.service.key), m);
    }
    const vss: VsStatus[] = (this.table?.virtualServers ?? []).map((plan) => {
      const svcNames = plan.services.map(serviceKeyString);
      const inKernel = svcNames.length > 0 && svcNames.every((s) => kernelDests.has(s));
      const errors = [...plan.errors];
      for (const s of svcNames) errors.push(...(this.kernelErrors.get(s) ?? []));
      return {
        key: plan.key,
        services: svcNames,
        quorum: plan.quorum,
        hysteresis: plan.hysteresis,
        weightSum: plan.weightSum,
        quorumUp: plan.quorumUp,
        sorryActive: plan.sorryActive,
        inKernel,
        errors,
        realServers: plan.realServers.map((r): RsStatus => {
          // the dest of this real server in the first service (all services carry the same dests)
          const af = r.addr.includes(":") ? 6 : 4;
          const first = svcNames[0];
          const kernelWeight =
            first === undefined
              ? undefined
              : kernelDests.get(first)?.get(destKeyString({ af, addr: r.addr, port: r.port }));
          const checks = this.scheduler.status(r.id);
          const out: RsStatus = {
            id: r.id,
            key: r.key,
            up: r.up,
            weight: r.weight,
            inTable: r.inTable,
            inKernel: kernelWeight !== undefined,
            suspended: checks?.suspended ?? false,
            drained: r.drained === true,
            checkers: (checks?.checkers ?? []).map((c) => ({
              ...c,
              ...(this.checkTotals.get(r.id)?.get(c.name) ?? { checks: 0, failures: 0, latencyMsSum: 0 }),
            })),
          };
          const at = this.lastCheckAt.get(r.id);
          if (at !== undefined) out.lastCheckAt = at;
          if (r.tableWeight !== undefined) out.tableWeight = r.tableWeight;
          if (kernelWeight !== undefined) out.kernelWeight = kernelWeight;
          return out;
        }),
      };
    });
    const st: LvsStatus = {
      ipvs: this.ipvsState,
      generation: this.generation,
      totals: { ...this.totals },
      virtualServers: vss,
    };
    if (this.ipvsError) st.ipvsError = this.ipvsError;
    if (this.lastReconcile) st.lastReconcile = this.lastReconcile;
    return st;
  }

  /** The desired table of the last computation (tests, benchmarks). */
  desired(): DesiredTable | null {
    return this.table;
  }

  private tryOpen(): void {
    try {
      this.client = this.deps.openIpvs ? this.deps.openIpvs() : openIpvs().client;
      this.ipvsState = "ok";
      this.ipvsError = undefined;
    } catch (e) {
      this.client = null;
      const unavailable = e instanceof IpvsError && e.kind === "unavailable";
      this.ipvsState = unavailable ? "unavailable" : "error";
      this.ipvsError = e instanceof Error ? e.message : String(e);
      // once: a kernel without IPVS stays without it, and a log line per reload says nothing new
      if (!this.loggedUnavailable) {
        this.deps.log.error(
          { err: this.ipvsError },
          unavailable
            ? "IPVS is not available in this kernel: health checks run, nothing is programmed"
            : "cannot open IPVS",
        );
        this.loggedUnavailable = true;
      }
    }
  }

  private countResult(rs: string, checker: string, r: CheckResult): void {
    let byName = this.checkTotals.get(rs);
    if (!byName) {
      byName = new Map();
      this.checkTotals.set(rs, byName);
    }
    const t = byName.get(checker) ?? { checks: 0, failures: 0, latencyMsSum: 0 };
    t.checks++;
    if (!r.ok) t.failures++;
    t.latencyMsSum += r.latencyMs;
    byName.set(checker, t);
  }

  private onHealth(e: HealthEvent): void {
    if (this.stopped) return;
    const prev = this.health.get(e.rs);
    const entry = this.rsIndex.get(e.rs);
    const wasUp = prev
      ? prev.up
      : (this.parts.get(entry?.vsKey ?? "")?.plan.realServers.find((r) => r.id === e.rs)?.up ?? true);
    const h: RsHealth = { up: e.up };
    if (e.weight !== undefined) h.weight = e.weight;
    this.health.set(e.rs, h);
    this.deps.log.info(
      { rs: e.rs, up: e.up, weight: e.weight, reason: e.reason },
      e.up ? "real server up" : "real server down",
    );
    if (this.dirty !== "all") {
      if (entry) this.dirty.add(entry.vsKey);
      else this.dirty = "all";
    }
    if (wasUp !== e.up) {
      const cmd = e.up ? entry?.notifyUp : entry?.notifyDown;
      if (cmd) this.runScript(cmd, `${e.up ? "notify_up" : "notify_down"} ${e.rs}`);
    }
    if (entry) {
      const rs = entry.vs.realServers.find((r) => realServerKey(entry.vs, r) === entry.rsKey);
      const weight = e.weight ?? (rs ? configuredWeight(entry.vs, rs) : 0);
      this.deps.onEvent?.({
        type: "health",
        vs: virtualServerKey(entry.vs),
        rs: entry.rsKey,
        up: e.up,
        weight,
        reason: e.reason,
      });
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.defer(() => {
      this.scheduled = false;
      if (!this.stopped) this.reconcileNow();
    });
  }

  private runScript(cmd: string, what: string): void {
    const argv = splitCommand(cmd);
    if (argv.length === 0) return;
    this.deps.log.info({ script: cmd, what }, "running script");
    this.notifyFn(argv, what);
  }

  /** Computes the table, runs quorum scripts on transitions, and programs the kernel. */
  reconcileNow(): void {
    const cfg = this.cfg;
    if (!cfg) return;
    const table = this.computeTable(cfg);
    for (const plan of table.fresh) {
      const n = plan.quorumNotify;
      if (!n) continue;
      const vs = this.vsByKey.get(plan.key);
      this.deps.log.info(
        { vs: plan.key, weightSum: plan.weightSum, quorum: plan.quorum, hysteresis: plan.hysteresis },
        n.up ? "gained quorum" : n.starting ? "starting with quorum down" : "lost quorum",
      );
      const cmd = plan.quorumUp ? vs?.quorumUp : vs?.quorumDown;
      if (cmd) this.runScript(cmd, `${plan.quorumUp ? "quorum_up" : "quorum_down"} ${plan.key}`);
      this.deps.onEvent?.({
        type: "quorum",
        vs: plan.key,
        up: plan.quorumUp,
        weightSum: plan.weightSum,
        quorum: plan.quorum,
        hysteresis: plan.hysteresis,
      });
    }
    const client = this.client;
    if (client) this.program(client, table);
    this.deps.onUpdate?.();
  }

  /**
   * The desired table, recomputing only the virtual servers marked dirty: a health change costs its own
   * virtual server, not the thousand others. Reused parts keep their objects, which is also what
   * lets the kernel sync skip them by identity. `fresh` lists the plans computed now (their quorum
   * transitions are this computation's).
   */
  private computeTable(cfg: Config): DesiredTable & { fresh: VsPlan[] } {
    const healthOf = (id: string) => this.health.get(id);
    const fresh: VsPlan[] = [];
    const services: DesiredService[] = [];
    const plans: VsPlan[] = [];
    const parts = new Map<string, VsPart>();
    for (const { vs, key } of this.vsList) {
      let part = this.dirty === "all" || this.dirty.has(key) ? undefined : this.parts.get(key);
      let plan: VsPlan;
      if (part) plan = part.plan;
      else {
        const p = planVirtualServer(cfg, vs, healthOf, this.quorum.get(key), this.drained);
        plan = p.plan;
        fresh.push(plan);
        this.quorum.set(key, plan.quorumUp);
        // what is kept for later computations carries no transition of its own
        const { quorumNotify: _n, ...rest } = plan;
        part = { plan: { ...rest, quorumChanged: false }, services: p.services };
      }
      parts.set(key, part);
      plans.push(plan);
      for (const svc of part.services) services.push(svc);
    }
    this.parts = parts;
    this.dirty = new Set();
    this.table = { services, virtualServers: plans };
    return { ...this.table, fresh };
  }

  private program(client: IpvsClient, table: DesiredTable): void {
    const owned = new Set(this.owned);
    for (const s of table.services) owned.add(serviceKeyString(s.key));
    this.kernelErrors = new Map();
    if (this.sync?.client !== client) this.sync = new IpvsTableSync(client);
    const sync = this.sync;
    // a reload re-reads the kernel (and so does the periodic resync): a manual change gets repaired
    if (this.syncedGeneration !== this.generation) sync.resync();
    this.armResync();
    try {
      const { dumped, found, ops, result: res } = sync.sync(table.services, owned);
      this.syncedGeneration = this.generation;
      if (dumped) this.totals.reconciles++;
      this.totals.ops += ops.length;
      this.totals.applied += res.applied;
      this.totals.errors += res.errors.length;
      this.totals.skipped += res.skipped;
      if (!this.programmedOnce && dumped) {
        // after a restart this line shows whether the table was adopted as is (ops 0, nothing deleted)
        this.programmedOnce = true;
        this.deps.log.info(
          { services: found, ...opCounts(ops) },
          ops.length === 0 ? "IPVS table adopted unchanged" : "IPVS table found, reconciling",
        );
      }
      for (const err of res.errors) {
        // one line per refusal, naming the service: the rest of the table is programmed regardless
        this.deps.log.error(
          { service: err.service, dest: err.dest, op: err.op, code: err.code },
          err.message,
        );
        const k = err.service ?? "";
        const list = this.kernelErrors.get(k) ?? [];
        list.push(err.message);
        this.kernelErrors.set(k, list);
      }
      this.lastReconcile = {
        at: Date.now(),
        ops: ops.length,
        applied: res.applied,
        errors: res.errors.length,
        skipped: res.skipped,
      };
      if (ops.length > 0)
        this.deps.log.info(
          { ...opCounts(ops), applied: res.applied, errors: res.errors.length, dumped },
          "IPVS reconciled",
        );
      // after a clean apply the stale services are gone: owned is this config's services again; after
      // a failure the old ones stay owned so the next reconcile retries their removal
      this.owned =
        res.errors.length === 0 ? new Set(table.services.map((s) => serviceKeyString(s.key))) : owned;
      this.ipvsState = "ok";
      this.ipvsError = undefined;
    } catch (e) {
      this.totals.failures++;
      this.ipvsState = "error";
      this.ipvsError = e instanceof Error ? e.message : String(e);
      this.deps.log.error({ err: this.ipvsError }, "IPVS reconcile failed");
    }
  }

  /** Every resyncMs the next reconcile reads the kernel, and one is scheduled even if nothing changed. */
  private armResync(): void {
    const every = this.deps.resyncMs ?? 60_000;
    if (this.resyncTimer || every <= 0) return;
    this.resyncTimer = setInterval(() => {
      if (this.stopped) {
        clearInterval(this.resyncTimer ?? undefined);
        return;
      }
      this.sync?.resync();
      this.schedule();
    }, every);
    this.resyncTimer.unref?.();
  }
}

let hostKernel: Kernel | null = null;
function defaultHostAddresses(): HostAddress[] {
  hostKernel ??= Kernel.open();
  return hostKernel.addresses().map((a) => ({ family: a.family, address: a.address }));
}
