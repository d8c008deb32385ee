// Prometheus text exposition (format 0.0.4), hand-written: a pure renderer from a snapshot of what the
// watchdog knows (the VRRP child's latest per-instance status, its own children) plus an opt-in HTTP
// listener (`--metrics-listen`) serving GET /metrics.
//
// Label names: a VRRP instance is `vrrp_instance`, not `instance`, because Prometheus attaches its own
// `instance` label (the scrape target) and would rename ours to `exported_instance`. Families for
// checkers and IPVS appear when those subsystems exist; nothing is emitted as a placeholder.
//
// State is one-hot: `vigil_vrrp_instance_state{vrrp_instance="VI_1",state="MASTER"} 1`, a 0 for every
// other state, so `vigil_vrrp_instance_state{state="MASTER"} == 1` selects masters with no mapping table.
import type { VrrpState } from "../vrrp/instance.ts";
import type { InstanceStatus } from "../vrrp/runtime.ts";
import type { DropReason } from "../vrrp/validate.ts";

/** What the watchdog reports per child process (a subset of supervisor/watchdog.ts ChildStatus). */
export interface ProcessSnapshot {
  role: string;
  pid: number | null;
  restarts: number;
  uptimeMs: number;
  crashLooping: boolean;
}

export interface MetricsSnapshot {
  instances: InstanceStatus[];
  processes: ProcessSnapshot[];
  /**
   * VRRP runtime counters not tied to an instance (VrrpRuntime.counters): packets dropped before an
   * instance was known (bad checksum, unknown VRID, ...) as `dropped_<reason>`.
   */
  vrrpCounters?: Record<string, number>;
  /** the check child's latest LvsStatus (agent/lvs/runtime.ts), opaque: validated when rendered */
  lvs?: Record<string, unknown> | null;
  /** build identity for vigil_build_info */
  build?: { version: string; bun?: string };
}

/**
 * The instances of a VRRP child's `state` message (an opaque record in the IPC envelope), keeping only
 * entries shaped like InstanceStatus: a child from another build must not break the exposition.
 */
export function instancesFromState(instances: Record<string, unknown>): InstanceStatus[] {
  const out: InstanceStatus[] = [];
  for (const v of Object.values(instances)) {
    if (typeof v !== "object" || v === null) continue;
    const i = v as Partial<InstanceStatus>;
    if (
      typeof i.name === "string" &&
      typeof i.vrid === "number" &&
      (i.family === 4 || i.family === 6) &&
      typeof i.interface === "string" &&
      typeof i.state === "string" &&
      typeof i.basePriority === "number" &&
      typeof i.effectivePriority === "number" &&
      Array.isArray(i.vipsHeld) &&
      typeof i.counters === "object" &&
      i.counters !== null
    ) {
      out.push(v as InstanceStatus);
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export const VRRP_STATES: readonly VrrpState[] = ["INIT", "BACKUP", "MASTER", "FAULT", "STOP"];

type Labels = Record<string, string | number>;
type Kind = "gauge" | "counter";

/** Label value escaping of the text format: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** Builds one exposition: every family once, HELP and TYPE before its samples, families in order. */
class Exposition {
  private readonly families = new Map<string, { help: string; kind: Kind; samples: string[] }>();

  family(name: string, kind: Kind, help: string): (labels: Labels, value: number) => void {
    let f = this.families.get(name);
    if (!f) {
      f = { help, kind, samples: [] };
      this.families.set(name, f);
    }
    const fam = f;
    return (labels, value) => fam.samples.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
  }

  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      // a family without samples says nothing useful and some parsers dislike it
      if (f.samples.length === 0) continue;
      out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.kind}`, ...f.samples);
    }
    return out.length ? `${out.join("\n")}\n` : "";
  }
}

const DROPPED = "dropped_";

/**
 * Reasons an advert addressed to an instance is dropped (vrrp/validate.ts), exported as 0 before the
 * first drop so that rate() sees the first one. "vrid" never reaches an instance.
 */
export const INSTANCE_DROP_REASONS = [
  "addr_count",
  "addr_list",
  "auth",
  "dst_type",
  "family",
  "interval",
  "ttl",
  "type",
  "unicast_src",
  "version",
] as const satisfies readonly DropReason[];
// a new DropReason must be added above (the compiler says so here)
const dropReasonsComplete: [Exclude<DropReason, (typeof INSTANCE_DROP_REASONS)[number] | "vrid">] extends [
  never,
]
  ? true
  : false = true;
void dropReasonsComplete;

const byKey = ([a]: [string, number], [b]: [string, number]) => (a < b ? -1 : a > b ? 1 : 0);

/** The Prometheus text for a snapshot. Pure: the same snapshot gives the same text. */
export function renderMetrics(s: MetricsSnapshot): string {
  const e = new Exposition();

  if (s.build) {
    e.family(
      "vigil_build_info",
      "gauge",
      "vigil build; the value is always 1",
    )({ version: s.build.version, ...(s.build.bun ? { bun: s.build.bun } : {}) }, 1);
  }

  const info = e.family(
    "vigil_vrrp_instance_info",
    "gauge",
    "VRRP instance identity (VRID, address family, interface); the value is always 1",
  );
  const state = e.family(
    "vigil_vrrp_instance_state",
    "gauge",
    "VRRP instance state, one-hot: 1 for the current state, 0 for the others",
  );
  const transitions = e.family(
    "vigil_vrrp_transitions_total",
    "counter",
    "VRRP state transitions of the instance (INIT to BACKUP at start included)",
  );
  const sent = e.family("vigil_vrrp_adverts_sent_total", "counter", "VRRP advertisements sent");
  const received = e.family(
    "vigil_vrrp_adverts_received_total",
    "counter",
    "VRRP advertisements received that passed validation",
  );
  const dropped = e.family(
    "vigil_vrrp_adverts_dropped_total",
    "counter",
    "VRRP advertisements for this instance dropped by validation, by reason",
  );
  const sendErrors = e.family(
    "vigil_vrrp_send_errors_total",
    "counter",
    "VRRP advertisements that failed to send",
  );
  const announce = e.family(
    "vigil_vrrp_announcements_sent_total",
    "counter",
    "Gratuitous ARP (kind=arp) and unsolicited neighbour advertisements (kind=na) sent",
  );
  const eff = e.family(
    "vigil_vrrp_effective_priority",
    "gauge",
    "VRRP priority advertised now (base priority adjusted by tracked interfaces and scripts)",
  );
  const base = e.family("vigil_vrrp_base_priority", "gauge", "VRRP priority from the configuration");
  const vips = e.family("vigil_vrrp_vips_held", "gauge", "Virtual addresses this agent holds in the kernel");

  for (const i of s.instances) {
    const l = { vrrp_instance: i.name };
    info({ ...l, vrid: i.vrid, family: i.family === 6 ? "ipv6" : "ipv4", interface: i.interface }, 1);
    const states: string[] = VRRP_STATES.includes(i.state as VrrpState)
      ? [...VRRP_STATES]
      : [...VRRP_STATES, i.state];
    for (const st of states) state({ ...l, state: st }, st === i.state ? 1 : 0);
    const c = i.counters;
    transitions(l, c["transitions"] ?? 0);
    sent(l, c["adverts_sent"] ?? 0);
    received(l, c["adverts_received"] ?? 0);
    const drops = new Map<string, number>(INSTANCE_DROP_REASONS.map((r) => [r, 0]));
    for (const [k, v] of Object.entries(c)) if (k.startsWith(DROPPED)) drops.set(k.slice(DROPPED.length), v);
    for (const [reason, v] of [...drops].sort(byKey)) dropped({ ...l, reason }, v);
    sendErrors(l, c["send_errors"] ?? 0);
    announce({ ...l, kind: i.family === 6 ? "na" : "arp" }, c[i.family === 6 ? "na_sent" : "garp_sent"] ?? 0);
    eff(l, i.effectivePriority);
    base(l, i.basePriority);
    vips(l, i.vipsHeld.length);
  }

  if (s.vrrpCounters) {
    const unattributed = e.family(
      "vigil_vrrp_packets_dropped_total",
      "counter",
      "VRRP packets dropped before they could be matched to an instance (malformed, bad checksum, unknown VRID, ...), by reason",
    );
    for (const [k, v] of Object.entries(s.vrrpCounters).sort(byKey)) {
      if (k.startsWith(DROPPED)) unattributed({ reason: k.slice(DROPPED.length) }, v);
    }
  }

  const up = e.family("vigil_child_up", "gauge", "1 when the child process of this role is running");
  const restarts = e.family(
    "vigil_child_restarts_total",
    "counter",
    "Times the watchdog restarted the child process of this role",
  );
  const looping = e.family(
    "vigil_child_crash_looping",
    "gauge",
    "1 when the child of this role restarted too often recently",
  );
  const uptime = e.family(
    "vigil_child_uptime_seconds",
    "gauge",
    "Seconds since the running child of this role was started (0 when none runs)",
  );
  for (const p of s.processes) {
    const l = { role: p.role };
    up(l, p.pid !== null ? 1 : 0);
    restarts(l, p.restarts);
    looping(l, p.crashLooping ? 1 : 0);
    uptime(l, Math.round(p.uptimeMs) / 1000);
  }
  return e.text();
}

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses) into Bun.serve's hostname and port. */
export function parseListen(listen: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new Error(`metrics listen address must be HOST:PORT, [IPV6]:PORT or :PORT, not '${listen}'`);
  }
  const hostname = m[1] ?? (m[2] || "0.0.0.0");
  return { hostname, port };
}

export interface MetricsServer {
  /** the bound port (useful with port 0) */
  readonly port: number;
  readonly url: string;
  stop(): void;
}

/** Serves GET /metrics from `snapshot()` on `listen` (see parseListen). Throws when it cannot bind. */
export function startMetricsServer(listen: string, snapshot: () => MetricsSnapshot): MetricsServer {
  const { hostname, port } = parseListen(listen);
  const server = Bun.serve({
    hostname,
    port,
    // a scrape is small and answered at once; do not hold idle connections forever
    idleTimeout: 30,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path !== "/metrics") return new Response("not found: try /metrics\n", { status: 404 });
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      }
      let body: string;
      try {
        body = renderMetrics(snapshot());
      } catch (e) {
        return new Response(`snapshot failed: ${String(e)}\n`, { status: 500 });
      }
      return new Response(req.method === "HEAD" ? null : body, { headers: { "content-type": CONTENT_TYPE } });
    },
  });
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const bound = server.port ?? port;
  return {
    port: bound,
    url: `http://${host}:${bound}/metrics`,
    stop: () => void server.stop(true),
  };
}
