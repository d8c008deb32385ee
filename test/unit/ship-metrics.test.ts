// agent/observe/metrics.ts: the exposition is parsed and linted by Prometheus's own code (`promtool
// check metrics`, Debian package prometheus: missing = failed test, CI installs it), scraped by a real
// Prometheus server, and its values follow the snapshot (a failover moves state, transitions, adverts).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CONTENT_TYPE,
  escapeLabelValue,
  INSTANCE_DROP_REASONS,
  instancesFromState,
  type MetricsSnapshot,
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

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

describe("renderMetrics", () => {
  test("promtool is installed", () => {
    expect(tool("promtool")).toBeTruthy();
  });

  test("promtool parses and lints it clean (before and after a failover, and empty)", () => {
    for (const s of [before, after, { instances: [], processes: [] }]) {
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
      const type = /^# TYPE (\S+) (counter|gauge)$/.exec(line);
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
    expect([...a.keys()].some((k) => k.includes("other"))).toBe(false);
    expect(a.get('vigil_child_up{role="vrrp"}')).toBe(1);
    expect(a.get('vigil_child_up{role="check"}')).toBe(0);
    expect(a.get('vigil_child_crash_looping{role="check"}')).toBe(1);
    expect(a.get('vigil_child_uptime_seconds{role="vrrp"}')).toBe(5);
    expect(a.get('vigil_build_info{version="0.1.0",bun="1.4.4"}')).toBe(1);
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
