// The API's acceptance on a kernel with IPVS, inside the test VM (run by test/vm/api-lvs.test.ts). This
// process runs in the director's network namespace (`ip netns exec lvsdir`), so `ipvsadm` here sees
// the table vigil programs:
//   lvscli 192.0.2.100/24 --veth-- dir0 192.0.2.1/24 (+ the VIP 192.0.2.10 when VI_1 is master)
//   br0 198.51.100.254/24 --veth-- lvsrs1, lvsrs2 (busybox httpd), lvsrs3 (nothing listens: DOWN)
// The real `vigil run` (the compiled dist/vigil, --child-timeout for TCG) starts with an empty config;
// then a Node.js client written against the .proto alone (test/api/node-client.mjs, run with `node`)
// applies a config with a VRRP instance and a virtual server, sees the VIP come up, reads state,
// watches a failover event, and drains/undrains a real server with `ipvsadm -Ln` as the oracle; then
// `vigil ctl` does the same, with traffic through the VIP showing the drained server gets none, and a
// check child killed while a server is drained comes back without touching its weight 0.
// The tests are steps of one scenario and run in order.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..", "..");
const WORK = "/tmp/api-lvs";
const SOCK = `${WORK}/api.sock`;
const VIP = "192.0.2.10";
const VS = `${VIP}:80/TCP`;
const RS = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
const check = "TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }";
const CONTROLLER_CONF = `vrrp_instance VI_1 {
  interface dir0
  state MASTER
  virtual_router_id 51
  priority 255
  advert_int 1
  virtual_ipaddress {
    ${VIP}/24
  }
}
virtual_server ${VIP} 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
${RS.map((a) => `  real_server ${a} 80 {\n    ${check}\n  }`).join("\n")}
}
`;

function sh(cmd: string): { code: number; out: string } {
  const p = Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}
function must(cmd: string): string {
  const r = sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.out}`);
  return r.out;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what: string, f: () => boolean, timeoutS: number): Promise<number> {
  const t0 = performance.now();
  while (!f()) {
    if (performance.now() - t0 > timeoutS * 1000) throw new Error(`timed out after ${timeoutS} s: ${what}`);
    await sleep(200);
  }
  return (performance.now() - t0) / 1000;
}

/** dest -> weight of the VIP:80 service in `ipvsadm -Ln` */
function weights(): Record<string, number> {
  const out: Record<string, number> = {};
  let inVs = false;
  for (const l of must("ipvsadm -Ln").split("\n")) {
    const svc = /^(TCP|UDP|SCTP|FWM)\s+(\S+)/.exec(l);
    if (svc) {
      inVs = svc[1] === "TCP" && svc[2] === `${VIP}:80`;
      continue;
    }
    const d = /^\s+->\s+(\d\S+)\s+\S+\s+(\d+)/.exec(l);
    if (d && inVs) out[d[1]!] = Number(d[2]);
  }
  return out;
}

/** n requests from the client namespace, one TCP connection each; bodies in order ("ERR" on failure) */
function requests(n: number): string[] {
  const out = must(
    `ip netns exec lvscli sh -c 'for i in $(seq ${n}); do busybox timeout 5 busybox wget -q -O - http://${VIP}/ 2>/dev/null || echo ERR; done'`,
  );
  return out.trim().split("\n");
}

function nodeClient(args: string[]): Record<string, Record<string, unknown>> {
  const p = Bun.spawnSync(["node", join(ROOT, "test/api/node-client.mjs"), ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  const steps: Record<string, Record<string, unknown>> = {};
  for (const l of p.stdout.toString().split("\n")) {
    if (!l.startsWith("{")) continue;
    const j = JSON.parse(l) as Record<string, unknown> & { step: string };
    steps[j.step] = j;
  }
  if (p.exitCode !== 0) throw new Error(`node client: exit ${p.exitCode}\n${p.stdout}\n${p.stderr}`);
  return steps;
}

const bin = process.env["VIGIL_BIN"] ?? join(ROOT, "dist/vigil");
function ctl(...args: string[]): { code: number; out: string } {
  const p = Bun.spawnSync([bin, "ctl", "--api", `unix:${SOCK}`, "--timeout", "60", ...args], {
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}

let vigil: Bun.Subprocess | null = null;
const LOG = `${WORK}/vigil.log`;
function logText(): string {
  try {
    return readFileSync(LOG, "utf8");
  } catch {
    return "";
  }
}
const httpd: Bun.Subprocess[] = [];
const timings: Record<string, number> = {};

beforeAll(() => {
  mkdirSync(`${WORK}/state`, { recursive: true });
  writeFileSync(`${WORK}/initial.conf`, "global_defs {\n  router_id api-lvs\n}\n");
  writeFileSync(`${WORK}/controller.conf`, CONTROLLER_CONF);
  must("ip link set lo up && sysctl -qw net.ipv4.ip_forward=1");
  must(
    [
      "ip netns add lvscli",
      "ip link add dir0 type veth peer name eth0 netns lvscli",
      "ip addr add 192.0.2.1/24 dev dir0 && ip link set dir0 up",
      "ip netns exec lvscli sh -c 'ip link set lo up && ip addr add 192.0.2.100/24 dev eth0 && ip link set eth0 up && ip route add default via 192.0.2.1'",
      "ip link add br0 type bridge && ip addr add 198.51.100.254/24 dev br0 && ip link set br0 up",
    ].join(" && "),
  );
  RS.forEach((addr, i) => {
    const ns = `lvsrs${i + 1}`;
    must(
      [
        `ip netns add ${ns}`,
        `ip link add v${ns} type veth peer name eth0 netns ${ns}`,
        `ip link set v${ns} master br0 up`,
        `ip netns exec ${ns} sh -c 'ip link set lo up && ip addr add ${addr}/24 dev eth0 && ip link set eth0 up && ip route add default via 198.51.100.254'`,
      ].join(" && "),
    );
    if (i === 2) return; // the third one has nothing listening: its check fails
    const dir = `${WORK}/www-${ns}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/index.html`, `rs${i + 1}\n`);
    httpd.push(
      Bun.spawn(["ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", "80", "-h", dir], {
        stdout: "ignore",
        stderr: "ignore",
      }),
    );
  });
});

afterAll(async () => {
  if (vigil) {
    vigil.kill("SIGTERM");
    await vigil.exited;
  }
  for (const p of httpd) p.kill("SIGKILL");
  console.log(`api-lvs timings (s): ${JSON.stringify(timings)}`);
});

describe("the API on a kernel with IPVS", () => {
  test("vigil run starts (compiled binary, empty config)", async () => {
    vigil = Bun.spawn(
      [
        bin,
        "run",
        "-f",
        `${WORK}/initial.conf`,
        "--state-dir",
        `${WORK}/state`,
        "--api",
        `unix:${SOCK}`,
        "--child-timeout",
        "60000",
      ],
      { stdout: Bun.file(LOG), stderr: Bun.file(`${LOG}.err`), env: { ...process.env, NO_COLOR: "1" } },
    );
    try {
      timings["start"] = await waitFor(
        "vigil started",
        () => logText().includes('"msg":"vigil started"'),
        240,
      );
    } catch (e) {
      console.log(logText());
      throw e;
    }
  }, 250_000);

  test("Node.js client: apply, VIP on the kernel, state, takeover and failover events", () => {
    const t0 = performance.now();
    const s = nodeClient(["scenario", SOCK, "lvsdir", `${WORK}/controller.conf`, VIP, "dir0"]);
    timings["scenario"] = (performance.now() - t0) / 1000;
    expect(s["applied"]).toMatchObject({
      generation: 2,
      diff: { instances: { added: ["VI_1"] }, virtualServers: { added: [VS] } },
    });
    expect(s["vip"]).toMatchObject({ present: true });
    expect(s["state"]).toMatchObject({
      generation: 2,
      instances: [{ name: "VI_1", state: "MASTER", vipsHeld: [VIP] }],
      processes: ["watchdog", "vrrp", "check"],
    });
    expect(s["takeover-event"]?.["event"]).toMatchObject({ transition: { instance: "VI_1", to: "MASTER" } });
    expect(s["failover-event"]).toMatchObject({
      changed: true,
      event: { transition: { instance: "VI_1", from: "MASTER", to: "BACKUP" } },
    });
  }, 240_000);

  test("the configured service is in the kernel; the dead real server is not", async () => {
    timings["table"] = await waitFor(
      "rs1, rs2 in IPVS, rs3 out",
      () => {
        const w = weights();
        return w[`${RS[0]}:80`] === 1 && w[`${RS[1]}:80`] === 1 && w[`${RS[2]}:80`] === undefined;
      },
      60,
    );
  }, 70_000);

  test("Node.js client: LB state, health event, drain -> weight 0 in ipvsadm, undrain -> weight back", () => {
    const t0 = performance.now();
    const s = nodeClient(["lb", SOCK, VS, `${RS[0]}:80`, "1"]);
    timings["lb"] = (performance.now() - t0) / 1000;
    for (const [k, st] of [
      ["drainRtt", "drain"],
      ["drainToKernel", "drain"],
      ["undrainToKernel", "undrain"],
    ] as const) {
      timings[k] = Number(s[st]?.[`${k}Ms`]) / 1000;
    }
    expect(s["lb-state"]).toMatchObject({ ipvs: "ok", loadBalancingAvailable: true });
    const vss = s["lb-state"]?.["virtualServers"] as {
      name: string;
      realServers: Record<string, unknown>[];
    }[];
    expect(vss[0]).toMatchObject({ name: VS, inKernel: true, quorumUp: true });
    expect(vss[0]!.realServers.map((r) => [r["key"], r["health"], r["inKernel"], r["kernelWeight"]])).toEqual(
      [
        [`${VS} -> ${RS[0]}:80`, "UP", true, 1],
        [`${VS} -> ${RS[1]}:80`, "UP", true, 1],
        [`${VS} -> ${RS[2]}:80`, "DOWN", false, 0],
      ],
    );
    expect(s["health-event"]?.["event"]).toMatchObject({
      health: { virtualServer: VS, realServer: `${RS[2]}:80`, healthy: false },
    });
    expect(s["drain"]).toMatchObject({
      changed: true,
      event: { maintenance: { virtualServer: VS, realServer: `${RS[0]}:80`, active: true } },
      ipvsWeightBefore: 1,
      ipvsWeight: 0,
      rs: { drained: true, inKernel: true, kernelWeight: 0, weight: 1, health: "UP" },
    });
    expect(s["drain-again"]).toMatchObject({ changed: false });
    expect(s["undrain"]).toMatchObject({
      changed: true,
      ipvsWeight: 1,
      rs: { drained: false, inKernel: true, kernelWeight: 1 },
    });
    expect(s["unknown"]).toMatchObject({ code: 5 /* NOT_FOUND */ });
  }, 240_000);

  test("vigil ctl: drain -> weight 0 and no new connections to it; undrain -> back in rotation", async () => {
    const t0 = performance.now();
    // VI_1 back to master, so the client reaches the VIP
    expect(ctl("maintenance", "VI_1", "off")).toMatchObject({ code: 0 });
    await waitFor("VIP back", () => sh(`ip -o addr show dev dir0`).out.includes(`${VIP}/24`), 30);
    expect(new Set(requests(4))).toEqual(new Set(["rs1", "rs2"]));

    const d = ctl("drain", `${VIP}:80`, RS[1]!);
    expect(d).toEqual({ code: 0, out: `${RS[1]} in ${VIP}:80: drained (weight 0)\n` });
    await waitFor("rs2 weight 0", () => weights()[`${RS[1]}:80`] === 0, 30);
    expect(weights()).toEqual({ [`${RS[0]}:80`]: 1, [`${RS[1]}:80`]: 0 });
    expect(requests(4)).toEqual(["rs1", "rs1", "rs1", "rs1"]);
    const st = ctl("status");
    expect(st.code).toBe(0);
    expect(st.out).toMatch(
      new RegExp(`${RS[1]!.replace(/\./g, "\\.")}:80\\s+UP \\(drained\\)\\s+1\\s+yes, weight 0`),
    );

    // a respawned check child gets the drained set before its config
    const js = ctl("status", "--json");
    const checkPid = (JSON.parse(js.out) as { processes: { role: string; pid: number }[] }).processes.find(
      (p) => p.role === "check",
    )?.pid;
    expect(checkPid).toBeGreaterThan(1);
    const adopted = () =>
      logText()
        .split("\n")
        .filter((l) => l.includes('"proc":"check"') && l.includes('"msg":"IPVS table'));
    const before = adopted().length;
    process.kill(checkPid!, "SIGKILL");
    const t1 = performance.now();
    await waitFor("the respawned check child's first reconcile", () => adopted().length > before, 120);
    timings["checkRespawnToAdopt"] = (performance.now() - t1) / 1000;
    // its first reconcile edits no dest: had it not known the drain, rs2 would have gone back to 1
    // (rs3, dead but not yet checked by the new child, is added until its first check: keepalived's rule)
    const first = JSON.parse(adopted().at(-1)!) as { edit?: number; ops: number };
    expect(first.edit ?? 0).toBe(0);
    await waitFor("rs3 out again", () => weights()[`${RS[2]}:80`] === undefined, 30);
    expect(weights()).toEqual({ [`${RS[0]}:80`]: 1, [`${RS[1]}:80`]: 0 });

    expect(ctl("undrain", VS, `${RS[1]}:80`)).toMatchObject({ code: 0 });
    await waitFor("rs2 weight 1", () => weights()[`${RS[1]}:80`] === 1, 30);
    expect(new Set(requests(4))).toEqual(new Set(["rs1", "rs2"]));
    // watch streams until stopped: what it printed in 20 s is the held event log
    const watch = sh(`timeout 20 ${bin} ctl --api unix:${SOCK} watch --from 1 --json`);
    const lines = watch.out.split("\n").filter((l) => l.startsWith("{"));
    expect(lines[0]).toContain('"eventsLost"');
    timings["ctl"] = (performance.now() - t0) / 1000;
    const drains = lines.filter((l) => l.includes('"maintenance"') && l.includes(RS[1]!));
    expect(drains.length).toBe(2);
  }, 400_000);
});
