// What GetState answers, aggregated in the watchdog from its children's messages: the vrrp child's
// `state` snapshots (one InstanceStatus per instance, see agent/vrrp/runtime.ts), the check child's
// LvsStatus (agent/lvs/runtime.ts) and the watchdog's own view of its processes. Children are separate
// processes, possibly of another build during an upgrade, so their snapshots and events are
// validated here before they reach the API.
import { z } from "zod";
import * as pb from "../../proto/gen/vigil/v1/agent.ts";
import { type Config, realServerKey, virtualServerKey } from "../config/model.ts";
import { rsIdOf } from "../lvs/desired.ts";
import type { ChildStatus } from "../supervisor/watchdog.ts";
import type { EventBody } from "./events.ts";

/** The InstanceStatus shape as it crosses the supervisor socket (JSON). */
const InstanceSnapshot = z.object({
  name: z.string(),
  vrid: z.number().int(),
  family: z.number().int(),
  interface: z.string(),
  state: z.string(),
  basePriority: z.number(),
  effectivePriority: z.number(),
  currentMaster: z.string().nullable(),
  vipsHeld: z.array(z.string()),
  lastTransition: z
    .object({ at: z.number(), from: z.string(), to: z.string(), reason: z.string() })
    .nullable(),
  counters: z.record(z.string(), z.number()),
  maintenance: z.boolean().optional(),
});
type InstanceSnapshot = z.infer<typeof InstanceSnapshot>;

/** The part of LvsStatus (agent/lvs/runtime.ts) GetState reports, as it crosses the socket. */
const CheckerSnapshot = z.object({
  name: z.string(),
  hasRun: z.boolean(),
  last: z.object({ ok: z.boolean(), reason: z.string() }).optional(),
});
const RsSnapshot = z.object({
  key: z.string(),
  up: z.boolean(),
  weight: z.number(),
  inTable: z.boolean(),
  tableWeight: z.number().optional(),
  inKernel: z.boolean(),
  kernelWeight: z.number().optional(),
  drained: z.boolean().optional(),
  lastCheckAt: z.number().optional(),
  checkers: z.array(CheckerSnapshot),
});
const VsSnapshot = z.object({
  key: z.string(),
  weightSum: z.number(),
  quorumUp: z.boolean(),
  sorryActive: z.boolean(),
  inKernel: z.boolean(),
  errors: z.array(z.string()),
  realServers: z.array(RsSnapshot),
});
const LvsSnapshot = z.object({
  ipvs: z.string(),
  ipvsError: z.string().optional(),
  virtualServers: z.array(VsSnapshot),
});
type LvsSnapshot = z.infer<typeof LvsSnapshot>;

const u32 = (n: number | undefined) => Math.max(0, Math.min(4294967295, Math.floor(n ?? 0)));

/**
 * `lastTransition.at` is the child's monotonic clock (performance.now() of that process), which
 * means nothing to a client; the wall-clock time is taken from the transition event when it arrives.
 */
export class AgentState {
  private instances = new Map<string, InstanceSnapshot>();
  private readonly transitionWallMs = new Map<string, number>();
  private readonly transitionPriority = new Map<string, number>();
  private lvs: LvsSnapshot | null = null;
  invalidSnapshots = 0;

  /** The check child's LvsStatus; null when it is gone (GetState then says UNKNOWN). */
  onLvsStatus(raw: Record<string, unknown> | null): void {
    if (raw === null) {
      this.lvs = null;
      return;
    }
    const r = LvsSnapshot.safeParse(raw);
    if (r.success) this.lvs = r.data;
    else this.invalidSnapshots++;
  }

  /** The check child's IPVS state: ok | unavailable | error, or unknown before it reported. */
  ipvs(): { state: string; error: string } {
    return { state: this.lvs?.ipvs ?? "unknown", error: this.lvs?.ipvsError ?? "" };
  }

  /**
   * Every virtual and real server of the running config, with what the check child last said about
   * it (matched by key, so a status from a previous generation still fills what it knows).
   */
  virtualServerStates(
    cfg: Config,
    drained: (vsKey: string, rsKey: string) => boolean,
  ): pb.VirtualServerState[] {
    const byKey = new Map((this.lvs?.virtualServers ?? []).map((v) => [v.key, v]));
    return cfg.virtualServers.map((vs) => {
      const key = virtualServerKey(vs);
      const st = byKey.get(key);
      const rss = new Map((st?.realServers ?? []).map((r) => [r.key, r]));
      return pb.VirtualServerState.fromPartial({
        name: key,
        inKernel: st?.inKernel ?? false,
        quorumUp: st?.quorumUp ?? false,
        sorryActive: st?.sorryActive ?? false,
        weightSum: Math.max(0, Math.floor(st?.weightSum ?? 0)),
        errors: st ? [...st.errors] : [],
        realServers: vs.realServers.map((rs) => {
          const rsKey = realServerKey(vs, rs);
          const r = rss.get(rsKey);
          const checks = (r?.checkers ?? []).filter((c) => c.hasRun && c.last);
          return pb.RealServerState.fromPartial({
            key: rsIdOf(key, rsKey),
            address: rs.address,
            port: rs.port || vs.port || 0,
            health: r ? (r.up ? "UP" : "DOWN") : "UNKNOWN",
            weight: u32(r?.weight),
            inKernel: r?.inKernel ?? false,
            kernelWeight: u32(r?.kernelWeight),
            inTable: r?.inTable ?? false,
            tableWeight: u32(r?.tableWeight),
            // the operator's wish, whether or not the check child has applied it yet
            drained: drained(key, rsKey),
            lastCheckResult: checks
              .map((c) => `${c.name}: ${c.last!.ok ? "ok" : "failed"}, ${c.last!.reason}`)
              .join("; "),
            lastCheckUnixMs: Math.floor(r?.lastCheckAt ?? 0),
          });
        }),
      });
    });
  }

  /** A `state` message from the vrrp child: replaces the whole instance set. */
  onVrrpSnapshot(instances: Record<string, unknown>): void {
    const next = new Map<string, InstanceSnapshot>();
    for (const [name, v] of Object.entries(instances)) {
      const r = InstanceSnapshot.safeParse(v);
      if (r.success) next.set(name, r.data);
      else this.invalidSnapshots++;
    }
    this.instances = next;
  }

  /** A transition event from the vrrp child (wall clock `at`). */
  onTransition(instance: string, at: number, priority: number): void {
    this.transitionWallMs.set(instance, at);
    this.transitionPriority.set(instance, priority);
  }

  /** The vrrp child died: what it reported no longer runs (its VIPs were released by the watchdog). */
  onVrrpGone(): void {
    this.instances = new Map();
  }

  instanceNames(): string[] {
    return [...this.instances.keys()];
  }

  instanceStates(): pb.InstanceState[] {
    return [...this.instances.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((s) =>
        pb.InstanceState.fromPartial({
          name: s.name,
          vrid: s.vrid,
          family: s.family,
          interface: s.interface,
          state: s.state,
          basePriority: s.basePriority,
          effectivePriority: s.effectivePriority,
          vipsHeld: [...s.vipsHeld],
          currentMaster: s.currentMaster ?? "",
          lastTransition: s.lastTransition
            ? pb.Transition.fromPartial({
                instance: s.name,
                from: s.lastTransition.from,
                to: s.lastTransition.to,
                reason: s.lastTransition.reason,
                priority: this.transitionPriority.get(s.name) ?? s.effectivePriority,
              })
            : undefined,
          lastTransitionUnixMs: s.lastTransition ? (this.transitionWallMs.get(s.name) ?? 0) : 0,
          counters: Object.fromEntries(
            Object.entries(s.counters).map(([k, v]) => [k, Math.max(0, Math.floor(v))]),
          ),
          maintenance: s.maintenance ?? false,
        }),
      );
  }
}

export function processStates(
  watchdog: { pid: number; uptimeMs: number },
  children: ChildStatus[],
): pb.ProcessState[] {
  return [
    pb.ProcessState.fromPartial({
      role: "watchdog",
      pid: watchdog.pid,
      state: "running",
      restarts: 0,
      uptimeMs: Math.round(watchdog.uptimeMs),
    }),
    ...children.map((c) =>
      pb.ProcessState.fromPartial({
        role: c.role,
        pid: c.pid ?? 0,
        state: c.state,
        restarts: c.restarts,
        uptimeMs: c.uptimeMs,
        crashLooping: c.crashLooping,
        lastExitReason: c.lastExit?.reason ?? "",
      }),
    ),
  ];
}

/** The `data` of a vrrp child's `transition` event (RuntimeEvent in agent/vrrp/runtime.ts). */
const TransitionData = z.object({
  instance: z.string(),
  from: z.string(),
  to: z.string(),
  reason: z.string(),
  priority: z.number().int().min(0).max(255),
});

export function parseTransition(data: Record<string, unknown> | undefined): pb.Transition | null {
  const r = TransitionData.safeParse(data);
  return r.success ? pb.Transition.fromPartial(r.data) : null;
}

/** The `data` of the check child's `health` and `quorum` events (LvsEvent in agent/lvs/runtime.ts). */
const HealthData = z.object({
  vs: z.string(),
  rs: z.string(),
  up: z.boolean(),
  weight: z.number(),
  reason: z.string(),
});
const QuorumData = z.object({
  vs: z.string(),
  up: z.boolean(),
  weightSum: z.number(),
  quorum: z.number(),
  hysteresis: z.number(),
});

/** A check child's event as a WatchEvents body; null for anything else or anything malformed. */
export function parseLvsEvent(name: string, data: Record<string, unknown> | undefined): EventBody | null {
  if (name === "health") {
    const r = HealthData.safeParse(data);
    if (!r.success) return null;
    const d = r.data;
    return {
      health: pb.HealthChange.fromPartial({
        virtualServer: d.vs,
        realServer: d.rs,
        healthy: d.up,
        detail: d.reason,
        weight: u32(d.weight),
      }),
    };
  }
  if (name === "quorum") {
    const r = QuorumData.safeParse(data);
    if (!r.success) return null;
    const d = r.data;
    return {
      quorum: pb.QuorumChange.fromPartial({
        virtualServer: d.vs,
        up: d.up,
        weightSum: Math.max(0, Math.floor(d.weightSum)),
        quorum: u32(d.quorum),
        hysteresis: u32(d.hysteresis),
      }),
    };
  }
  return null;
}
