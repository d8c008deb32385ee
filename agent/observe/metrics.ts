// Prometheus text exposition (format 0.0.4), hand-written: a pure renderer from a snapshot of what the
// watchdog knows (the VRRP child's latest per-instance status, its own children) plus an opt-in HTTP
// listener (`--metrics-listen`) serving GET /metrics.
//
// Label names: a VRRP instance is `vrrp_instance`, not `instance`, because Prometheus attaches its own
// `instance` label (the scrape target) and would rename ours to `exported_instance`. Families for
// checkers, real servers and IPVS appear when the check child runs (the config has virtual servers)
// and has reported; nothing is emitted as a placeholder.
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
type Kind = "gauge" | "counter" | "summary";

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

  /** `suffix` names a summary's `_sum` / `_count` series */
  family(
    name: string,
    kind: Kind,
    help: string,
  ): (labels: Labels, value: number, suffix?: "_sum" | "_count") => void {
    let f = this.families.get(name);
    if (!f) {
      f = { help, kind, samples: [] };
      this.families.set(name, f);
    }
    const fam = f;
    return (labels, value, suffix = undefined) =>
      fam.samples.push(`${name}${suffix ?? ""}${formatLabels(labels)} ${formatValue(value)}`);
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

/**
 * Reasons a VRRP packet is dropped before it reaches an instance: it does not decode (wire/vrrp.ts),
 * or no instance has its VRID on that interface ("vrid"). Exported as 0 before the first drop.
 */
export const PACKET_DROP_REASONS = [
  "bad_addr_count",
  "bad_checksum",
  "bad_ip_header",
  "bad_length",
  "bad_type",
  "bad_version",
  "too_short",
  "vrid",
] as const;

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
    const drops = new Map<string, number>(PACKET_DROP_REASONS.map((r) => [r, 0]));
    for (const [k, v] of Object.entries(s.vrrpCounters)) {
      if (k.startsWith(DROPPED) && Number.isFinite(v)) drops.set(k.slice(DROPPED.length), v);
    }
    for (const [reason, v] of [...drops].sort(byKey)) unattributed({ reason }, v);
  }

  const lvs = lvsFromState(s.lvs);
  if (lvs) renderLvs(e, lvs);

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

// ---- load balancing (the check child's LvsStatus) ------------------------------------------------

/** What the renderer reads of agent/lvs/runtime.ts LvsStatus, after validation. */
export interface LvsView {
  ipvs: string;
  totals: {
    reconciles: number;
    ops: number;
    applied: number;
    errors: number;
    skipped: number;
    failures: number;
  };
  virtualServers: {
    key: string;
    quorumUp: boolean;
    sorryActive: boolean;
    inKernel: boolean;
    weightSum: number;
    realServers: {
      key: string;
      up: boolean;
      weight: number;
      inTable: boolean;
      inKernel: boolean;
      kernelWeight?: number;
      checkers: {
        name: string;
        up: boolean;
        checks: number;
        failures: number;
        latencyMsSum: number;
        lastLatencyMs?: number;
      }[];
    }[];
  }[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const num = (v: unknown, def = 0): number => (typeof v === "number" && Number.isFinite(v) ? v : def);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * The check child's status (an opaque record in the IPC envelope), keeping what is shaped like
 * LvsStatus: a child from another build must not break the exposition. Entries without their
 * identity (key, name) are left out; missing counters read 0.
 */
export function lvsFromState(lvs: Record<string, unknown> | null | undefined): LvsView | null {
  if (!isObj(lvs) || typeof lvs["ipvs"] !== "string") return null;
  const t = isObj(lvs["totals"]) ? lvs["totals"] : {};
  const view: LvsView = {
    ipvs: lvs["ipvs"],
    totals: {
      reconciles: num(t["reconciles"]),
      ops: num(t["ops"]),
      applied: num(t["applied"]),
      errors: num(t["errors"]),
      skipped: num(t["skipped"]),
      failures: num(t["failures"]),
    },
    virtualServers: [],
  };
  for (const vs of arr(lvs["virtualServers"])) {
    if (!isObj(vs) || typeof vs["key"] !== "string") continue;
    const realServers: LvsView["virtualServers"][number]["realServers"] = [];
    for (const rs of arr(vs["realServers"])) {
      if (!isObj(rs) || typeof rs["key"] !== "string") continue;
      const checkers: LvsView["virtualServers"][number]["realServers"][number]["checkers"] = [];
      for (const c of arr(rs["checkers"])) {
        if (!isObj(c) || typeof c["name"] !== "string") continue;
        const last = isObj(c["last"]) ? c["last"] : null;
        checkers.push({
          name: c["name"],
          up: c["up"] === true,
          checks: num(c["checks"]),
          failures: num(c["failures"]),
          latencyMsSum: num(c["latencyMsSum"]),
          ...(last && typeof last["latencyMs"] === "number" ? { lastLatencyMs: num(last["latencyMs"]) } : {}),
        });
      }
      realServers.push({
        key: rs["key"],
        up: rs["up"] === true,
        weight: num(rs["weight"]),
        inTable: rs["inTable"] === true,
        inKernel: rs["inKernel"] === true,
        ...(typeof rs["kernelWeight"] === "number" ? { kernelWeight: num(rs["kernelWeight"]) } : {}),
        checkers,
      });
    }
    view.virtualServers.push({
      key: vs["key"],
      quorumUp: vs["quorumUp"] === true,
      sorryActive: vs["sorryActive"] === true,
      inKernel: vs["inKernel"] === true,
      weightSum: num(vs["weightSum"]),
      realServers,
    });
  }
  return view;
}

/** IPVS states of LvsStatus.ipvs, one-hot like the VRRP state. */
export const IPVS_STATES = ["ok", "unavailable", "error"] as const;

function renderLvs(e: Exposition, lvs: LvsView): void {
  const ipvsState = e.family(
    "vigil_ipvs_state",
    "gauge",
    "IPVS in this kernel, one-hot: ok (programmed), unavailable (no IPVS), error (last reconcile failed)",
  );
  const states: string[] = (IPVS_STATES as readonly string[]).includes(lvs.ipvs)
    ? [...IPVS_STATES]
    : [...IPVS_STATES, lvs.ipvs];
  for (const st of states) ipvsState({ state: st }, st === lvs.ipvs ? 1 : 0);
  e.family(
    "vigil_ipvs_reconciles_total",
    "counter",
    "Reconciles of the IPVS table that read the kernel's table (one per batch of health changes or config)",
  )({}, lvs.totals.reconciles);
  const ops = e.family(
    "vigil_ipvs_ops_total",
    "counter",
    "IPVS operations (add/edit/del of services and destinations) by result: applied, error (refused by the kernel), skipped (their service failed)",
  );
  ops({ result: "applied" }, lvs.totals.applied);
  ops({ result: "error" }, lvs.totals.errors);
  ops({ result: "skipped" }, lvs.totals.skipped);
  e.family(
    "vigil_ipvs_reconcile_failures_total",
    "counter",
    "IPVS reconciles that failed as a whole (table dump or socket error)",
  )({}, lvs.totals.failures);

  const vsQuorum = e.family(
    "vigil_virtual_server_quorum_up",
    "gauge",
    "1 when the virtual server has quorum (sum of alive real servers' weights)",
  );
  const vsSorry = e.family("vigil_virtual_server_sorry_active", "gauge", "1 when the sorry server is in use");
  const vsKernel = e.family(
    "vigil_virtual_server_in_kernel",
    "gauge",
    "1 when every IPVS service of the virtual server is in the kernel's table",
  );
  const vsWeight = e.family(
    "vigil_virtual_server_alive_weight",
    "gauge",
    "Sum of the effective weights of the alive real servers (compared with quorum)",
  );
  const rsUp = e.family(
    "vigil_real_server_up",
    "gauge",
    "1 when the health checkers say the real server is up",
  );
  const rsWeight = e.family(
    "vigil_real_server_weight",
    "gauge",
    "Effective weight of the real server (configured, or set by a MISC_CHECK with misc_dynamic)",
  );
  const rsKernel = e.family(
    "vigil_real_server_in_kernel",
    "gauge",
    "1 when the real server is a destination in the kernel's IPVS table",
  );
  const rsKernelWeight = e.family(
    "vigil_real_server_kernel_weight",
    "gauge",
    "Weight of the real server's destination in the kernel (absent when it is not in the kernel)",
  );
  const ckUp = e.family("vigil_checker_up", "gauge", "1 when the health checker's last verdict is up");
  const ckChecks = e.family(
    "vigil_checker_checks_total",
    "counter",
    "Health check attempts of the checker, by result (ok, failed)",
  );
  const ckLatency = e.family(
    "vigil_checker_latency_seconds",
    "summary",
    "Duration of the checker's attempts (successful or not)",
  );
  const ckLast = e.family(
    "vigil_checker_last_latency_seconds",
    "gauge",
    "Duration of the checker's last attempt",
  );
  for (const vs of lvs.virtualServers) {
    const l = { virtual_server: vs.key };
    vsQuorum(l, vs.quorumUp ? 1 : 0);
    vsSorry(l, vs.sorryActive ? 1 : 0);
    vsKernel(l, vs.inKernel ? 1 : 0);
    vsWeight(l, vs.weightSum);
    for (const rs of vs.realServers) {
      const rl = { ...l, real_server: rs.key };
      rsUp(rl, rs.up ? 1 : 0);
      rsWeight(rl, rs.weight);
      rsKernel(rl, rs.inKernel ? 1 : 0);
      if (rs.kernelWeight !== undefined) rsKernelWeight(rl, rs.kernelWeight);
      for (const c of rs.checkers) {
        const cl = { ...rl, checker: c.name };
        ckUp(cl, c.up ? 1 : 0);
        ckChecks({ ...cl, result: "ok" }, c.checks - c.failures);
        ckChecks({ ...cl, result: "failed" }, c.failures);
        ckLatency(cl, c.latencyMsSum / 1000, "_sum");
        ckLatency(cl, c.checks, "_count");
        if (c.lastLatencyMs !== undefined) ckLast(cl, c.lastLatencyMs / 1000);
      }
    }
  }
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
