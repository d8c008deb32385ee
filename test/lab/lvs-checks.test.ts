// The check child's checkers on a real kernel, through `vigil run` in a lab namespace:
//  - bindto: a TCP_CHECK bound to a source address reaches the backend from that address;
//  - bind_if and fwmark (TCP_CHECK, through ffi): bound to eth0 the check passes; marked packets follow
//    the policy route of their mark (here: unreachable), so that check fails without reaching the backend;
//  - ha_suspend: the checks of a virtual server run only while its address is on the director, and
//    stop and resume as the address goes and comes (keepalived 2.2.7's update_checker_activity).
//  - scripts as keepalived runs them: quorum_up at start-up, and notify_down + quorum_down for a virtual
//    server that a reload (SIGHUP) removes.
// The backend (fixtures/lvs-sink.ts) prints every connection it accepts with its source.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Agent, cleanupDir, startVigil, tempDir } from "./agents.ts";
import { isRoot, Lab, sleep, sweepStale, waitFor } from "./netns.ts";

const DIR_ADDR = "192.0.2.1";
const SOURCE = "192.0.2.5";
const VIP = "192.0.2.10";
const RS = "192.0.2.20";
const SUSPEND_PORT = 8001;
const BIND_PORT = 8002;
const NOTIFY_PORT = 8003;
const BIND_IF_PORT = 8004;
const MARKED_PORT = 8005;
/** packets with this mark are routed by table 100, where the backend is unreachable */
const UNROUTED_MARK = 9;

/** the virtual server that the reload removes; SCRIPT and LOG are filled in once the directory exists */
const REMOVED = `virtual_server ${DIR_ADDR} 82 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  quorum_up "SCRIPT qup"
  quorum_down "SCRIPT qdown"
  real_server ${RS} ${NOTIFY_PORT} {
    notify_down "SCRIPT rsdown"
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`;
const CONF_SOCKOPT = `virtual_server ${DIR_ADDR} 83 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server ${RS} ${BIND_IF_PORT} {
    TCP_CHECK {
      connect_timeout 1
      bind_if eth0
      fwmark 7
    }
  }
  real_server ${RS} ${MARKED_PORT} {
    TCP_CHECK {
      connect_timeout 1
      fwmark ${UNROUTED_MARK}
    }
  }
}
`;
const CONF = `${CONF_SOCKOPT}virtual_server ${VIP} 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  ha_suspend
  real_server ${RS} ${SUSPEND_PORT} {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
virtual_server ${DIR_ADDR} 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server ${RS} ${BIND_PORT} {
    TCP_CHECK {
      connect_timeout 1
      bindto ${SOURCE}
    }
  }
}
`;

let lab: Lab;
let script = "";
let scriptLog = "";
let scratch = "";
function tmpDirFor(): string {
  scratch ||= tempDir("lvschk-scripts");
  return scratch;
}
function scriptLines(): string[] {
  try {
    return readFileSync(scriptLog, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}
let vigil: Agent;
let sink: Bun.Subprocess<"ignore", "pipe", "pipe">;
const conns: { port: number; from: string; at: number }[] = [];

const count = (port: number, since = 0) => conns.filter((c) => c.port === port && c.at >= since).length;
/** the source addresses seen on a port (connections whose peer was already gone have none) */
const sourcesOf = (port: number) =>
  new Set(conns.filter((c) => c.port === port && c.from !== "?").map((c) => c.from.replace(/^::ffff:/, "")));

beforeAll(async () => {
  if (!isRoot()) throw new Error("lab tests need root (network namespaces)");
  sweepStale();
  lab = new Lab("lvschk");
  lab.addNode({ name: "dir", addrs: [`${DIR_ADDR}/24`, `${SOURCE}/24`] });
  lab.addNode({ name: "rs", addrs: [`${RS}/24`] });
  sink = lab.spawn("rs", [
    process.execPath,
    join(import.meta.dir, "fixtures", "lvs-sink.ts"),
    String(SUSPEND_PORT),
    String(BIND_PORT),
    String(NOTIFY_PORT),
    String(BIND_IF_PORT),
    String(MARKED_PORT),
  ]);
  let ready = false;
  void (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of sink.stdout) {
      buf += dec.decode(chunk, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) {
        if (l === "listening") ready = true;
        const m = /^(\d+) (\S+)$/.exec(l);
        if (m) conns.push({ port: Number(m[1]), from: m[2]!, at: performance.now() });
      }
    }
  })();
  if (!(await waitFor(() => ready, 10_000))) throw new Error("the sink did not start");
  const dirNs = lab.node("dir").ns;
  lab.exec(dirNs, ["ip", "rule", "add", "fwmark", String(UNROUTED_MARK), "table", "100"]);
  lab.exec(dirNs, ["ip", "route", "add", "unreachable", `${RS}/32`, "table", "100"]);
  // notify scripts append their argument to a log the test reads
  scriptLog = join(tmpDirFor(), "scripts.log");
  script = join(tmpDirFor(), "notify.sh");
  writeFileSync(script, `#!/bin/sh\necho "$1" >> ${scriptLog}\n`);
  chmodSync(script, 0o755);
  vigil = startVigil(lab, "dir", CONF + REMOVED.replaceAll("SCRIPT", script));
  const up = await vigil.waitLine((l) => l.includes("load balancing config applied"), 30_000);
  if (!up) throw new Error(`vigil did not apply its config:\n${vigil.output()}`);
}, 60_000);

afterAll(async () => {
  await vigil?.stop();
  if (vigil) cleanupDir(vigil);
  sink?.kill();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  await lab?.destroy();
});

describe("lvs checkers in namespaces", () => {
  test("a TCP_CHECK with bindto reaches the backend from that source address", async () => {
    expect(await waitFor(() => count(BIND_PORT) >= 2 && sourcesOf(BIND_PORT).size > 0, 10_000)).toBe(true);
    expect([...sourcesOf(BIND_PORT)]).toEqual([SOURCE]);
  }, 20_000);

  test("ha_suspend: no checks while the VIP is elsewhere, checks with it, none again after it leaves", async () => {
    // vigil has been checking the other service for a few rounds by now; not once this one
    expect(count(BIND_PORT)).toBeGreaterThanOrEqual(2);
    await sleep(2500);
    expect(count(SUSPEND_PORT)).toBe(0);
    expect(vigil.output()).toContain("suspending health checkers");

    lab.exec(lab.node("dir").ns, ["ip", "addr", "add", `${VIP}/24`, "dev", "eth0"]);
    const added = performance.now();
    // the poll sees the address within 1 s; the checker's next tick is at most delay_loop later
    expect(await waitFor(() => count(SUSPEND_PORT, added) >= 2, 8_000)).toBe(true);
    expect(vigil.output()).toContain("activating health checkers");

    lab.exec(lab.node("dir").ns, ["ip", "addr", "del", `${VIP}/24`, "dev", "eth0"]);
    // a check in flight or a tick already due may still land; then nothing
    await sleep(2500);
    const quiet = performance.now();
    await sleep(3000);
    expect(count(SUSPEND_PORT, quiet)).toBe(0);
    // while the other virtual server kept being checked
    expect(count(BIND_PORT, quiet)).toBeGreaterThanOrEqual(2);
  }, 40_000);

  test("quorum_up at start-up; a reload that removes a virtual server runs notify_down and quorum_down", async () => {
    // keepalived starts every virtual server with quorum down, so enough weight at start is a gain
    expect(await waitFor(() => scriptLines().includes("qup"), 10_000)).toBe(true);
    expect(await waitFor(() => count(NOTIFY_PORT) >= 1, 10_000)).toBe(true);
    expect(scriptLines()).toEqual(["qup"]);
    writeFileSync(join(vigil.dir, "vigil.conf"), CONF);
    vigil.signal("SIGHUP");
    expect(await waitFor(() => scriptLines().length >= 3, 15_000)).toBe(true);
    // the two scripts of the reload are spawned together (as keepalived forks them): either may log first
    const lines = scriptLines();
    expect(lines[0]).toBe("qup");
    expect(lines.slice(1).sort()).toEqual(["qdown", "rsdown"]);
    // and its checks stop
    await sleep(1500);
    const after = performance.now();
    await sleep(2500);
    expect(count(NOTIFY_PORT, after)).toBe(0);
  }, 40_000);

  test("bind_if eth0 + fwmark 7: checked and up; fwmark routed to unreachable: down, never reached", async () => {
    expect(await waitFor(() => count(BIND_IF_PORT) >= 2 && sourcesOf(BIND_IF_PORT).size > 0, 10_000)).toBe(
      true,
    );
    expect([...sourcesOf(BIND_IF_PORT)]).toEqual([DIR_ADDR]);
    const down = await vigil.waitLine(
      (l) => l.includes("real server down") && l.includes(`${RS}:${MARKED_PORT}`),
      10_000,
    );
    expect(down).not.toBeNull();
    // the kernel refuses the marked connect at once: its route says unreachable
    expect(down).toMatch(/EHOSTUNREACH|ENETUNREACH/);
    expect(count(MARKED_PORT)).toBe(0);
  }, 30_000);
});
