// agent/observe/metrics.ts: the exposition is parsed and linted by Prometheus's own code (`promtool
// check metrics`, Debian package prometheus: missing = failed test, CI installs it), scraped by a real
// Prometheus server, and its values follow the snapshot (a failover moves state, transitions, adverts).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LvsStatus, RsStatus } from "../../agent/lvs/runtime.ts";
import {
  CONTENT_TYPE,
  escapeLabelValue,
  INSTANCE_DROP_REASONS,
  instancesFromState,
  lvsFromState,
  type MetricsSnapshot,
  PACKET_DROP_REASONS,
  parseListen,
  renderMetrics,
  startMetricsServer,
} from "../../agent/observe/metrics.ts";
import type { InstanceStatus } from "../../agent/vrrp/runtime.ts";

function tool(name: string): string {
  const p = Bun.which(name);
  if (!p) throw new Error(`${name} not found: install Debian's prometheus package (.ci/run does)`);
  return p;
}

/** promtool check metrics on `text`: exit 0 = parsed and lint-clean, 1 = parse error, 3 = lint problems. */
function promtool(text: string): { code: number; out: string } {
  const p = Bun.spawnSync([tool("promtool"), "check", "metrics"], {
    stdin: Buffer.from(text),
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: p.exitCode ?? -1, out: (p.stdout.toString() + p.stderr.toString()).trim() };
}

/** Samples of a text exposition: `name{k="v",...}` (labels as written) -> value. Strict enough for tests. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function inst(over: Partial<InstanceStatus> = {}): InstanceStatus {
  return {
    name: "VI_1",
    vrid: 51,
    family: 4,
    interface: "eth0",
    state: "BACKUP",
    basePriority: 100,
    effectivePriority: 100,
    currentMaster: "192.0.2.2",
    vipsHeld: [],
    lastTransition: { at: 1, from: "INIT", to: "BACKUP", reason: "startup" },
    counters: { transitions: 1, adverts_received: 40 },
    ...over,
  } as InstanceStatus;
}

const procs = (restarts = 0): MetricsSnapshot["processes"] => [
  { role: "vrrp", pid: 101, restarts, uptimeMs: 5000, crashLooping: false },
  { role: "check", pid: null, restarts: 7, uptimeMs: 0, crashLooping: true },
];

const before: MetricsSnapshot = {
  instances: [
    inst(),
    inst({ name: "VI_6", vrid: 52, family: 6, state: "MASTER", vipsHeld: ["2001:db8::100"], counters: {} }),
  ],
  processes: procs(),
  vrrpCounters: { dropped_checksum: 2, dropped_vrid: 9, adverts_other: 1 },
  build: { version: "0.1.0", bun: "1.4.4" },
};
const after: MetricsSnapshot = {
  ...before,
  instances: [
    inst({
      state: "MASTER",
      effectivePriority: 100,
      currentMaster: null,
      vipsHeld: ["192.0.2.100"],
      counters: { transitions: 2, adverts_received: 43, adverts_sent: 12, garp_sent: 5, dropped_ttl: 1 },
    }),
    before.instances[1]!,
  ],
  processes: procs(1),
};

/** A check child's status: one virtual server, two real servers, one TCP checker each. */
function rsStatus(key: string, over: Partial<RsStatus> = {}): RsStatus {
  return {
    id: `192.0.2.200:80/TCP -> ${key}`,
    key,
    up: true,
    weight: 2,
    inTable: true,
    tableWeight: 2,
    inKernel: true,
    kernelWeight: 2,
    suspended: false,
    drained: false,
    checkers: [
      {
        name: `TCP_CHECK ${key}`,
        up: true,
        hasRun: true,
        retryIt: 1,
        last: { ok: true, reason: "connected", latencyMs: 1.5 },
        checks: 10,
        failures: 0,
        latencyMsSum: 15,
      },
    ],
    ...over,
  };
}

function lvsStatus(rs2: Partial<RsStatus>, totals: Partial<LvsStatus["totals"]> = {}): LvsStatus {
  return {
    ipvs: "ok",
    generation: 3,
    totals: { reconciles: 1, ops: 3, applied: 3, errors: 0, skipped: 0, failures: 0, ...totals },
    virtualServers: [
      {
        key: "192.0.2.200:80/TCP",
        services: ["TCP 192.0.2.200:80"],
        quorum: 1,
        hysteresis: 0,
        weightSum: rs2.up === false ? 2 : 4,
        quorumUp: true,
        sorryActive: false,
        inKernel: true,
        errors: [],
        realServers: [rsStatus("192.0.2.10:80"), rsStatus("192.0.2.11:80", rs2)],
      },
    ],
  };
}

const lvsUp = lvsStatus({});
// 192.0.2.11 fails its check: down, out of the kernel; one more reconcile of one op
const lvsDown = lvsStatus(
  {
    up: false,
    inTable: false,
    inKernel: false,
    kernelWeight: undefined,
    checkers: [
      {
        name: "TCP_CHECK 192.0.2.11:80",
        up: false,
        hasRun: true,
        retryIt: 0,
        last: { ok: false, reason: "ECONNREFUSED", latencyMs: 0.5 },
        checks: 12,
        failures: 2,
        latencyMsSum: 16,
      },
    ],
  },
  { reconciles: 2, ops: 4, applied: 4 },
);
// JSON drops undefined fields, as the IPC does
const wire = (x: LvsStatus) => JSON.parse(JSON.stringify(x)) as Record<string, unknown>;

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

describe("renderMetrics", () => {
  test("promtool is installed", () => {
    expect(tool("promtool")).toBeTruthy();
  });

  test("promtool parses and lints it clean (before and after a failover, and empty)", () => {
    for (const s of [
      before,
      after,
      { instances: [], processes: [] },
      { ...before, lvs: wire(lvsUp) },
      { ...after, lvs: wire(lvsDown) },
    ]) {
      const r = promtool(renderMetrics(s));
      expect(r.out).toBe("");
      expect(r.code).toBe(0);
    }
  });

  test("promtool catches what is wrong (the check can fail)", () => {
    const text = renderMetrics(before);
    // a counter without _total and without HELP: lint problems
    expect(promtool(`${text}# TYPE vigil_bad counter\nvigil_bad 1\n`).code).toBe(3);
    // an unescaped quote inside a label value: parse error
    expect(promtool(text.replace('vrrp_instance="VI_1"', 'vrrp_instance="VI_"1"')).code).toBe(1);
  });

  test("label values with quotes, backslashes and newlines are escaped", () => {
    const name = 'odd"name\\with\nnewline';
    const text = renderMetrics({ instances: [inst({ name })], processes: [] });
    expect(promtool(text).code).toBe(0);
    expect(text).toContain(`vigil_vrrp_transitions_total{vrrp_instance="${escapeLabelValue(name)}"} 1`);
    expect(escapeLabelValue(name)).toBe('odd\\"name\\\\with\\nnewline');
  });

  test("every family has HELP and TYPE once, before its samples", () => {
    const text = renderMetrics(after);
    const seen = new Set<string>();
    let current = "";
    for (const line of text.trimEnd().split("\n")) {
      const help = /^# HELP (\S+) /.exec(line);
      const type = /^# TYPE (\S+) (counter|gauge|summary)$/.exec(line);
      if (help) {
        expect(seen.has(help[1]!)).toBe(false);
        seen.add(help[1]!);
        current = help[1]!;
      } else if (type) expect(type[1]).toBe(current);
      else expect(line.startsWith(`${current}{`) || line.startsWith(`${current} `)).toBe(true);
    }
    for (const f of [
      "vigil_vrrp_instance_state",
      "vigil_vrrp_transitions_total",
      "vigil_vrrp_adverts_sent_total",
      "vigil_vrrp_adverts_received_total",
      "vigil_vrrp_adverts_dropped_total",
      "vigil_vrrp_effective_priority",
      "vigil_vrrp_base_priority",
      "vigil_child_restarts_total",
      "vigil_child_up",
    ]) {
      expect([f, seen.has(f)]).toEqual([f, true]);
    }
    // no placeholder families for subsystems that do not exist yet
    expect([...seen].filter((f) => /check|ipvs|real_server/.test(f))).toEqual([]);
  });

  test("values follow the snapshot across a failover", () => {
    const a = samples(renderMetrics(before));
    const b = samples(renderMetrics(after));
    const st = (m: Map<string, number>, s: string) =>
      m.get(`vigil_vrrp_instance_state{vrrp_instance="VI_1",state="${s}"}`);
    expect([st(a, "BACKUP"), st(a, "MASTER")]).toEqual([1, 0]);
    expect([st(b, "BACKUP"), st(b, "MASTER")]).toEqual([0, 1]);
    // one-hot: exactly one state is 1 per instance
    for (const m of [a, b]) {
      const ones = [...m].filter(([k, v]) => k.startsWith("vigil_vrrp_instance_state{") && v === 1);
      expect(ones.length).toBe(2);
    }
    const t = 'vigil_vrrp_transitions_total{vrrp_instance="VI_1"}';
    expect([a.get(t), b.get(t)]).toEqual([1, 2]);
    const sent = 'vigil_vrrp_adverts_sent_total{vrrp_instance="VI_1"}';
    expect([a.get(sent), b.get(sent)]).toEqual([0, 12]);
    const rx = 'vigil_vrrp_adverts_received_total{vrrp_instance="VI_1"}';
    expect([a.get(rx), b.get(rx)]).toEqual([40, 43]);
    const ttl = 'vigil_vrrp_adverts_dropped_total{vrrp_instance="VI_1",reason="ttl"}';
    expect([a.get(ttl), b.get(ttl)]).toEqual([0, 1]);
    const garp = 'vigil_vrrp_announcements_sent_total{vrrp_instance="VI_1",kind="arp"}';
    expect([a.get(garp), b.get(garp)]).toEqual([0, 5]);
    const vips = 'vigil_vrrp_vips_held{vrrp_instance="VI_1"}';
    expect([a.get(vips), b.get(vips)]).toEqual([0, 1]);
    const r = 'vigil_child_restarts_total{role="vrrp"}';
    expect([a.get(r), b.get(r)]).toEqual([0, 1]);
  });

  test("instance identity, priorities, drops by reason, children", () => {
    const a = samples(renderMetrics(before));
    expect(
      a.get('vigil_vrrp_instance_info{vrrp_instance="VI_6",vrid="52",family="ipv6",interface="eth0"}'),
    ).toBe(1);
    expect(a.get('vigil_vrrp_effective_priority{vrrp_instance="VI_1"}')).toBe(100);
    expect(a.get('vigil_vrrp_base_priority{vrrp_instance="VI_1"}')).toBe(100);
    expect(a.get('vigil_vrrp_announcements_sent_total{vrrp_instance="VI_6",kind="na"}')).toBe(0);
    // every validation reason is there from the start (rate() sees the first drop)
    for (const reason of INSTANCE_DROP_REASONS) {
      expect(a.get(`vigil_vrrp_adverts_dropped_total{vrrp_instance="VI_6",reason="${reason}"}`)).toBe(0);
    }
    // drops before an instance is known; other runtime counters are not drops
    expect(a.get('vigil_vrrp_packets_dropped_total{reason="checksum"}')).toBe(2);
    expect(a.get('vigil_vrrp_packets_dropped_total{reason="vrid"}')).toBe(9);
    // the decoder's reasons are there at 0 before the first such drop
    for (const reason of PACKET_DROP_REASONS) {
      expect(a.has(`vigil_vrrp_packets_dropped_total{reason="${reason}"}`)).toBe(true);
    }
    expect(a.get('vigil_vrrp_packets_dropped_total{reason="bad_checksum"}')).toBe(0);
    expect([...a.keys()].some((k) => k.includes("other"))).toBe(false);
    expect(a.get('vigil_child_up{role="vrrp"}')).toBe(1);
    expect(a.get('vigil_child_up{role="check"}')).toBe(0);
    expect(a.get('vigil_child_crash_looping{role="check"}')).toBe(1);
    expect(a.get('vigil_child_uptime_seconds{role="vrrp"}')).toBe(5);
    expect(a.get('vigil_build_info{version="0.1.0",bun="1.4.4"}')).toBe(1);
  });
});

describe("load balancing families", () => {
  test("every family of the check child has HELP and TYPE once; summaries have _sum and _count", () => {
    const text = renderMetrics({ ...before, lvs: wire(lvsUp) });
    const families = new Map<string, string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      expect(families.has(m[1]!)).toBe(false);
      families.set(m[1]!, m[2]!);
    }
    for (const [f, kind] of [
      ["vigil_ipvs_state", "gauge"],
      ["vigil_ipvs_reconciles_total", "counter"],
      ["vigil_ipvs_ops_total", "counter"],
      ["vigil_ipvs_reconcile_failures_total", "counter"],
      ["vigil_virtual_server_quorum_up", "gauge"],
      ["vigil_virtual_server_sorry_active", "gauge"],
      ["vigil_virtual_server_in_kernel", "gauge"],
      ["vigil_virtual_server_alive_weight", "gauge"],
      ["vigil_real_server_up", "gauge"],
      ["vigil_real_server_weight", "gauge"],
      ["vigil_real_server_in_kernel", "gauge"],
      ["vigil_real_server_kernel_weight", "gauge"],
      ["vigil_checker_up", "gauge"],
      ["vigil_checker_checks_total", "counter"],
      ["vigil_checker_latency_seconds", "summary"],
      ["vigil_checker_last_latency_seconds", "gauge"],
    ]) {
      expect([f, families.get(f!)]).toEqual([f, kind]);
    }
    const lines = text.split("\n").filter((l) => l.startsWith("vigil_checker_latency_seconds"));
    expect(lines.filter((l) => l.startsWith("vigil_checker_latency_seconds_sum{")).length).toBe(2);
    expect(lines.filter((l) => l.startsWith("vigil_checker_latency_seconds_count{")).length).toBe(2);
  });

  test("values follow a real server failure: up, in kernel, weights, checker counts, IPVS ops", () => {
    const a = samples(renderMetrics({ ...before, lvs: wire(lvsUp) }));
    const b = samples(renderMetrics({ ...before, lvs: wire(lvsDown) }));
    const rs = 'virtual_server="192.0.2.200:80/TCP",real_server="192.0.2.11:80"';
    const ck = `${rs},checker="TCP_CHECK 192.0.2.11:80"`;
    expect([a.get(`vigil_real_server_up{${rs}}`), b.get(`vigil_real_server_up{${rs}}`)]).toEqual([1, 0]);
    expect([
      a.get(`vigil_real_server_in_kernel{${rs}}`),
      b.get(`vigil_real_server_in_kernel{${rs}}`),
    ]).toEqual([1, 0]);
    expect(a.get(`vigil_real_server_kernel_weight{${rs}}`)).toBe(2);
    expect(b.has(`vigil_real_server_kernel_weight{${rs}}`)).toBe(false);
    expect(b.get(`vigil_real_server_weight{${rs}}`)).toBe(2);
    expect([a.get(`vigil_checker_up{${ck}}`), b.get(`vigil_checker_up{${ck}}`)]).toEqual([1, 0]);
    expect(b.get(`vigil_checker_checks_total{${ck},result="ok"}`)).toBe(10);
    expect(b.get(`vigil_checker_checks_total{${ck},result="failed"}`)).toBe(2);
    expect(b.get(`vigil_checker_latency_seconds_sum{${ck}}`)).toBe(0.016);
    expect(b.get(`vigil_checker_latency_seconds_count{${ck}}`)).toBe(12);
    expect(b.get(`vigil_checker_last_latency_seconds{${ck}}`)).toBe(0.0005);
    const vs = 'virtual_server="192.0.2.200:80/TCP"';
    expect([
      a.get(`vigil_virtual_server_alive_weight{${vs}}`),
      b.get(`vigil_virtual_server_alive_weight{${vs}}`),
    ]).toEqual([4, 2]);
    expect(a.get(`vigil_virtual_server_quorum_up{${vs}}`)).toBe(1);
    expect([a.get("vigil_ipvs_reconciles_total"), b.get("vigil_ipvs_reconciles_total")]).toEqual([1, 2]);
    expect([
      a.get('vigil_ipvs_ops_total{result="applied"}'),
      b.get('vigil_ipvs_ops_total{result="applied"}'),
    ]).toEqual([3, 4]);
    expect(b.get('vigil_ipvs_ops_total{result="error"}')).toBe(0);
    expect(b.get('vigil_ipvs_state{state="ok"}')).toBe(1);
    expect(b.get('vigil_ipvs_state{state="unavailable"}')).toBe(0);
  });

  test("no IPVS in the kernel: state unavailable, checkers still reported", () => {
    const m = samples(
      renderMetrics({ instances: [], processes: [], lvs: wire({ ...lvsUp, ipvs: "unavailable" }) }),
    );
    expect(m.get('vigil_ipvs_state{state="unavailable"}')).toBe(1);
    expect(m.get('vigil_ipvs_state{state="ok"}')).toBe(0);
    expect([...m.keys()].filter((k) => k.startsWith("vigil_checker_up{")).length).toBe(2);
  });

  test("lvsFromState keeps what is shaped like LvsStatus and drops the rest", () => {
    expect(lvsFromState(null)).toBeNull();
    expect(lvsFromState({ virtualServers: [] })).toBeNull();
    const v = lvsFromState({
      ipvs: "ok",
      totals: { ops: "many" },
      virtualServers: [
        5,
        { noKey: true },
        {
          key: "vs",
          realServers: [null, { key: "rs", up: true, weight: "x", checkers: [{ up: true }, { name: "c" }] }],
        },
      ],
    });
    expect(v).toEqual({
      ipvs: "ok",
      totals: { reconciles: 0, ops: 0, applied: 0, errors: 0, skipped: 0, failures: 0 },
      virtualServers: [
        {
          key: "vs",
          quorumUp: false,
          sorryActive: false,
          inKernel: false,
          weightSum: 0,
          realServers: [
            {
              key: "rs",
              up: true,
              weight: 0,
              inTable: false,
              inKernel: false,
              checkers: [{ name: "c", up: false, checks: 0, failures: 0, latencyMsSum: 0 }],
            },
          ],
        },
      ],
    });
    expect(
      promtool(renderMetrics({ instances: [], processes: [], lvs: v as unknown as Record<string, unknown> }))
        .code,
    ).toBe(0);
  });
});

describe("instancesFromState", () => {
  test("keeps well-formed instances of a state message, sorted by name; drops the rest", () => {
    const good = inst({ name: "VI_2" });
    const good2 = inst({ name: "VI_1" });
    const out = instancesFromState({
      VI_2: good,
      VI_1: good2,
      junk: 5,
      nul: null,
      partial: { name: "VI_3", vrid: 3 },
      badFamily: { ...inst({ name: "VI_4" }), family: 5 },
      noCounters: { ...inst({ name: "VI_5" }), counters: null },
    });
    expect(out.map((i) => i.name)).toEqual(["VI_1", "VI_2"]);
    expect(promtool(renderMetrics({ instances: out, processes: [] })).code).toBe(0);
  });
});

describe("startMetricsServer", () => {
  test("parseListen", () => {
    expect(parseListen("127.0.0.1:9650")).toEqual({ hostname: "127.0.0.1", port: 9650 });
    expect(parseListen("[::1]:9650")).toEqual({ hostname: "::1", port: 9650 });
    expect(parseListen(":9650")).toEqual({ hostname: "0.0.0.0", port: 9650 });
    for (const bad of ["9650", "127.0.0.1", "::1:9650", "host:99999", "host:x"]) {
      expect(() => parseListen(bad)).toThrow(/HOST:PORT/);
    }
  });

  test("GET /metrics serves the current snapshot; other paths and methods are refused", async () => {
    let snap = before;
    const srv = startMetricsServer("127.0.0.1:0", () => snap);
    try {
      expect(srv.port).toBeGreaterThan(0);
      const r1 = await fetch(srv.url);
      expect(r1.status).toBe(200);
      expect(r1.headers.get("content-type")).toBe(CONTENT_TYPE);
      expect(await r1.text()).toBe(renderMetrics(before));
      snap = after;
      expect(await (await fetch(srv.url)).text()).toBe(renderMetrics(after));
      expect((await fetch(srv.url.replace("/metrics", "/"))).status).toBe(404);
      expect((await fetch(srv.url, { method: "POST" })).status).toBe(405);
    } finally {
      srv.stop();
    }
    // stopped: the port no longer answers
    await expect(fetch(srv.url)).rejects.toThrow();
  });

  test("a real Prometheus scrapes it and sees a failover", async () => {
    const prometheus = tool("prometheus");
    let snap = before;
    const srv = startMetricsServer("127.0.0.1:0", () => snap);
    const dir = mkdtempSync(join(tmpdir(), "vigil-prom-"));
    scratch.push(dir);
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: ["127.0.0.1:${srv.port}"]\n`,
    );
    // a free port for Prometheus's own API: bind one, release it, hand it over
    const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const apiPort = probe.port;
    probe.stop(true);
    const p = Bun.spawn(
      [
        prometheus,
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${apiPort}`,
      ],
      { stdout: "ignore", stderr: "pipe" },
    );
    const api = `http://127.0.0.1:${apiPort}/api/v1`;
    const query = async (q: string): Promise<number | null> => {
      try {
        const r = (await (await fetch(`${api}/query?query=${encodeURIComponent(q)}`)).json()) as {
          data?: { result?: { value: [number, string] }[] };
        };
        const v = r.data?.result?.[0]?.value[1];
        return v === undefined ? null : Number(v);
      } catch {
        return null;
      }
    };
    const until = async (q: string, want: number, ms: number): Promise<number | null> => {
      const end = Date.now() + ms;
      let v: number | null = null;
      while (Date.now() < end) {
        v = await query(q);
        if (v === want) return v;
        await Bun.sleep(200);
      }
      return v;
    };
    try {
      const master = 'vigil_vrrp_instance_state{vrrp_instance="VI_1",state="MASTER"}';
      expect(await until(master, 0, 20_000)).toBe(0);
      const targets = (await (await fetch(`${api}/targets`)).json()) as {
        data: { activeTargets: { health: string; lastError: string }[] };
      };
      expect(targets.data.activeTargets.map((t) => [t.health, t.lastError])).toEqual([["up", ""]]);
      snap = after;
      expect(await until(master, 1, 10_000)).toBe(1);
      expect(await query('vigil_vrrp_transitions_total{vrrp_instance="VI_1"}')).toBe(2);
    } finally {
      p.kill();
      await p.exited;
      srv.stop();
    }
  }, 45_000);
});
