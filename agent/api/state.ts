// What GetState answers, aggregated in the watchdog from its children's messages: the vrrp child's
// `state` snapshots (one InstanceStatus per instance, see agent/vrrp/runtime.ts) and the watchdog's
// own view of its processes. Children are separate processes, possibly of another build during an
// upgrade, so their snapshots are validated here before they reach the API.
import { z } from "zod";
import * as pb from "../../proto/gen/vigil/v1/agent.ts";
import type { ChildStatus } from "../supervisor/watchdog.ts";

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

/**
 * `lastTransition.at` is the child's monotonic clock (performance.now() of that process), which
 * means nothing to a client; the wall-clock time is taken from the transition event when it arrives.
 */
export class AgentState {
  private instances = new Map<string, InstanceSnapshot>();
  private readonly transitionWallMs = new Map<string, number>();
  private readonly transitionPriority = new Map<string, number>();
  invalidSnapshots = 0;

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
