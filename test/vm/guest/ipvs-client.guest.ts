// Runs INSIDE the test VM (test/vm/ipvs.test.ts boots it with ip_vs_ovf held back): programs the real
// kernel's IPVS through IpvsClient + reconcile and checks the result against ipvsadm, the external
// oracle. One process on purpose: every process start costs 35-100 ms under TCG. Tests run in order
// and build on each other's kernel state.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  applyOps,
  type IpvsClient,
  IpvsError,
  IpvsTableSync,
  openIpvs,
  readTable,
} from "../../../agent/lvs/ipvs-client.ts";
import {
  type DesiredService,
  type KernelService,
  opService,
  reconcile,
} from "../../../agent/lvs/reconcile.ts";
import {
  IP_VS_SVC_F_ONEPACKET,
  IP_VS_SVC_F_PERSISTENT,
  IP_VS_SVC_F_SCHED_SH_FALLBACK,
  IP_VS_SVC_F_SCHED_SH_PORT,
  type IpvsDest,
  type IpvsService,
  isFwmarkKey,
  type ServiceKey,
  serviceKeyString,
} from "../../../agent/wire/ipvs.ts";
import type { NetlinkSocket } from "../../../ffi/netlink-socket.ts";

if (process.env["VIGILVM"] !== "1") {
  // this file programs the kernel's IPVS table: never against a host's
  throw new Error("ipvs-client.guest.ts runs only inside the test VM (test/vm/ipvs.test.ts boots it)");
}

function sh(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: exit ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}
const ipvsadmSave = (): string[] =>
  sh(["ipvsadm", "-Sn"])
    .split("\n")
    .filter((l) => l.trim() !== "")
    .sort();

// --- our table rendered the way `ipvsadm -Sn` prints it (ipvsadm.c print_service_entry, save format)
function svcArg(k: ServiceKey): string {
  if (isFwmarkKey(k)) return `-f ${k.fwmark}${k.af === 6 ? " -6" : ""}`;
  const flag = k.protocol === "tcp" ? "-t" : k.protocol === "udp" ? "-u" : "--sctp-service";
  return `${flag} ${k.af === 6 ? `[${k.addr}]` : k.addr}:${k.port}`;
}
function maskText(s: IpvsService): string {
  if (s.key.af === 6) return String(s.netmask);
  const m = s.netmask === 0 ? 0 : (0xffffffff << (32 - s.netmask)) >>> 0;
  return [24, 16, 8, 0].map((b) => (m >>> b) & 0xff).join(".");
}
function schedFlags(s: IpvsService): string {
  const names =
    s.sched === "sh"
      ? ["sh-fallback", "sh-port", "flag-3"]
      : s.sched === "mh"
        ? ["mh-fallback", "mh-port", "flag-3"]
        : ["flag-1", "flag-2", "flag-3"];
  const on = [0x08, 0x10, 0x20].map((b, i) => (s.flags & b ? names[i] : "")).filter(Boolean);
  return on.length ? ` -b ${on.join(",")}` : "";
}
function renderSave(table: readonly KernelService[]): string[] {
  const out: string[] = [];
  for (const { service: s, dests } of table) {
    let line = `-A ${svcArg(s.key)} -s ${s.sched}`;
    if (s.flags & IP_VS_SVC_F_PERSISTENT) {
      line += ` -p ${s.timeout}`;
      if (s.netmask !== (s.key.af === 4 ? 32 : 128)) line += ` -M ${maskText(s)}`;
    }
    if (s.peName) line += ` --pe ${s.peName}`;
    if (s.flags & IP_VS_SVC_F_ONEPACKET) line += " -o";
    out.push(line + schedFlags(s));
    for (const d of dests) {
      const fwd =
        d.fwd === "masq" ? "-m" : d.fwd === "route" ? "-g" : d.fwd === "tunnel" ? "-i" : `?${d.fwd}`;
      let dl = `-a ${svcArg(s.key)} -r ${d.af === 6 ? `[${d.addr}]` : d.addr}:${d.port} ${fwd} -w ${d.weight}`;
      if (d.fwd === "tunnel") {
        dl += ` --tun-type ${d.tunType ?? "ipip"}`;
        if (d.tunType === "gue") dl += ` --tun-port ${d.tunPort ?? 0}`;
        if (d.tunType === "gue" || d.tunType === "gre")
          dl += [" --tun-nocsum", " --tun-csum", " --tun-remcsum"][Math.min(d.tunFlags ?? 0, 2)];
      }
      out.push(dl);
    }
  }
  return out.sort();
}

// --- the tables under test (documentation addresses only)
const WEB: ServiceKey = { af: 4, protocol: "tcp", addr: "192.0.2.1", port: 80 };
const DNS: ServiceKey = { af: 4, protocol: "udp", addr: "192.0.2.1", port: 53 };
const MARK6: ServiceKey = { af: 6, fwmark: 3 };
const TLS6: ServiceKey = { af: 6, protocol: "tcp", addr: "2001:db8::1", port: 443 };
const GUE: ServiceKey = { af: 4, protocol: "tcp", addr: "192.0.2.3", port: 80 };
const OVF: ServiceKey = { af: 4, protocol: "tcp", addr: "192.0.2.2", port: 80 };
const SCTP: ServiceKey = { af: 4, protocol: "sctp", addr: "203.0.113.9", port: 9 };
const FOREIGN = "-A -t 203.0.113.50:25 -s rr";
const FOREIGN_DEST = "-a -t 203.0.113.50:25 -r 198.51.100.50:25 -m -w 1";

const D1: DesiredService[] = [
  {
    key: WEB,
    sched: "wrr",
    dests: [
      { addr: "198.51.100.1", port: 8080, fwd: "masq", weight: 3 },
      { addr: "198.51.100.2", port: 80, fwd: "route", weight: 0 },
      { addr: "198.51.100.3", port: 80, fwd: "tunnel", weight: 2, upperThreshold: 100, lowerThreshold: 10 },
    ],
  },
  {
    key: DNS,
    sched: "sh",
    flags: IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED_SH_PORT | IP_VS_SVC_F_SCHED_SH_FALLBACK,
    timeout: 300,
    netmask: 24,
    dests: [{ addr: "198.51.100.1", port: 53, fwd: "masq", weight: 1 }],
  },
  { key: MARK6, sched: "mh", dests: [{ addr: "2001:db8:1::1", port: 0, fwd: "route", weight: 1 }] },
  {
    key: TLS6,
    sched: "rr",
    flags: IP_VS_SVC_F_PERSISTENT,
    timeout: 60,
    netmask: 64,
    dests: [{ addr: "2001:db8:1::2", port: 443, fwd: "masq", weight: 5 }],
  },
  {
    key: GUE,
    sched: "dh",
    dests: [{ addr: "198.51.100.9", port: 80, fwd: "tunnel", weight: 1, tunType: "gue", tunPort: 6080 }],
  },
  // ip_vs_ovf is held back by the VM runner: this service must fail alone
  { key: OVF, sched: "ovf", dests: [{ addr: "198.51.100.4", port: 80, fwd: "masq", weight: 1 }] },
  { key: SCTP, sched: "lc", dests: [] },
];
const withoutOvf = (t: DesiredService[]) =>
  t.filter((s) => serviceKeyString(s.key) !== serviceKeyString(OVF));

let client: IpvsClient;
let socket: NetlinkSocket;
beforeAll(() => {
  ({ client, socket } = openIpvs());
});
afterAll(() => socket.close());

describe("IPVS on a real kernel", () => {
  test("resolves the IPVS family and reads info", () => {
    const info = client.info();
    expect(info.version).toBe("1.2.1");
    expect(info.connTabSize).toBeGreaterThan(0);
    expect(client.services()).toEqual([]);
  });

  test("a service someone else made (ipvsadm) is visible to the client", () => {
    sh(["ipvsadm", "-A", "-t", "203.0.113.50:25", "-s", "rr"]);
    sh(["ipvsadm", "-a", "-t", "203.0.113.50:25", "-r", "198.51.100.50:25", "-m"]);
    const t = readTable(client);
    expect(t.length).toBe(1);
    expect(renderSave(t)).toEqual(ipvsadmSave());
  });

  test("first apply: schedulers, NAT/DR/TUN dests, IPv6, fwmark; the missing scheduler fails alone", () => {
    const ops = reconcile(D1, readTable(client));
    expect(ops.filter((o) => o.op === "add-service").length).toBe(D1.length);
    const res = applyOps(client, ops);
    expect(res.errors.length).toBe(1);
    const e = res.errors[0]!;
    expect(e).toBeInstanceOf(IpvsError);
    expect([e.kind, e.op, e.code, e.service]).toEqual([
      "kernel",
      "add-service",
      "ENOENT",
      "tcp 192.0.2.2:80",
    ]);
    expect(res.skipped).toBe(1); // its dest
    const table = readTable(client);
    expect(renderSave(table)).toEqual(ipvsadmSave());
    expect(ipvsadmSave()).toContain(FOREIGN);
    expect(ipvsadmSave()).toContain(
      "-A -u 192.0.2.1:53 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port",
    );
    expect(ipvsadmSave()).toContain(
      "-a -t 192.0.2.3:80 -r 198.51.100.9:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
    );
    expect(ipvsadmSave().some((l) => l.includes("192.0.2.2:80"))).toBe(false);
    // thresholds are not in -Sn: read them back from the kernel
    const tun = table.find((s) => serviceKeyString(s.service.key) === serviceKeyString(WEB))?.dests;
    const d3 = tun?.find((d) => d.addr === "198.51.100.3");
    expect([d3?.upperThreshold, d3?.lowerThreshold, d3?.tunType]).toEqual([100, 10, "ipip"]);
    expect(sh(["ipvsadm", "-Ln", "--thresholds", "-t", "192.0.2.1:80"])).toMatch(
      /198\.51\.100\.3:80\s+100\s+10/,
    );
  });

  test("reconcile again: only the still-missing service is retried; without it nothing to do", () => {
    const ops = reconcile(D1, readTable(client));
    expect(ops.map((o) => o.op)).toEqual(["add-service", "add-dest"]);
    expect(reconcile(withoutOvf(D1), readTable(client))).toEqual([]);
  });

  let D2: DesiredService[] = [];
  test("edit: scheduler, weights, dest swap -> the minimal ops, and ipvsadm agrees", () => {
    D2 = withoutOvf(D1).map((s) => {
      if (serviceKeyString(s.key) === serviceKeyString(WEB))
        return {
          ...s,
          dests: [
            { addr: "198.51.100.1", port: 8080, fwd: "masq" as const, weight: 7 },
            {
              addr: "198.51.100.3",
              port: 80,
              fwd: "tunnel" as const,
              weight: 2,
              upperThreshold: 100,
              lowerThreshold: 10,
            },
            { addr: "198.51.100.5", port: 80, fwd: "route" as const, weight: 1 },
          ],
        };
      if (serviceKeyString(s.key) === serviceKeyString(GUE)) return { ...s, sched: "rr" };
      return s;
    });
    const ops = reconcile(D2, readTable(client));
    expect(ops.map((o) => `${o.op} ${"dest" in o ? o.dest.addr : opService(o)}`)).toEqual([
      "del-dest 198.51.100.2",
      "edit-dest 198.51.100.1",
      "add-dest 198.51.100.5",
      "edit-service tcp 192.0.2.3:80",
    ]);
    expect(applyOps(client, ops).errors).toEqual([]);
    const save = ipvsadmSave();
    expect(renderSave(readTable(client))).toEqual(save);
    expect(save).toContain("-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -m -w 7");
    expect(save).toContain("-A -t 192.0.2.3:80 -s rr");
    expect(reconcile(D2, readTable(client))).toEqual([]);
  });

  test("adopt after restart: a new process reads the table and does nothing (no flush)", () => {
    const before = ipvsadmSave();
    const file = join("/tmp", "vigil-desired.json");
    writeFileSync(file, JSON.stringify(D2));
    const out = sh([process.execPath, join(import.meta.dir, "adopt.ts"), file]);
    const r = JSON.parse(out.trim().split("\n").pop() ?? "{}") as { ops: unknown[]; services: number };
    expect(r.ops).toEqual([]);
    expect(r.services).toBe(D2.length + 1); // + the foreign one
    expect(ipvsadmSave()).toEqual(before);
  });

  test("owned service dropped from config is deleted; the unowned one is untouched", () => {
    const owned = new Set(D2.map((s) => serviceKeyString(s.key)));
    const D3 = D2.filter((s) => serviceKeyString(s.key) !== serviceKeyString(GUE));
    const ops = reconcile(D3, readTable(client), owned);
    expect(ops).toEqual([{ op: "del-service", key: GUE }]);
    expect(applyOps(client, ops).errors).toEqual([]);
    const save = ipvsadmSave();
    expect(save.some((l) => l.includes("192.0.2.3:80"))).toBe(false);
    expect(save).toContain(FOREIGN);
    expect(save).toContain(FOREIGN_DEST);
    expect(renderSave(readTable(client))).toEqual(save);
  });

  test("kernel refusals are typed and name what they concern", () => {
    const dest: IpvsDest = {
      af: 4,
      addr: "198.51.100.77",
      port: 80,
      fwd: "masq",
      weight: 1,
      upperThreshold: 0,
      lowerThreshold: 0,
    };
    const catchErr = (f: () => void): IpvsError => {
      try {
        f();
      } catch (e) {
        if (e instanceof IpvsError) return e;
        throw e;
      }
      throw new Error("no error");
    };
    const e1 = catchErr(() => client.editDest(WEB, dest));
    expect([e1.code, e1.service, e1.dest]).toEqual(["ENOENT", "tcp 192.0.2.1:80", "198.51.100.77:80"]);
    const e2 = catchErr(() => client.delService(GUE));
    expect([e2.code, e2.service]).toEqual(["ESRCH", "tcp 192.0.2.3:80"]);
    const web = client.service(WEB);
    expect(web && catchErr(() => client.addService(web)).code).toBe("EEXIST");
    expect(client.service(GUE)).toBeUndefined();
  });
});

// --- batches of many requests per datagram, and the incremental programmer, on the real kernel
const BIG_ADDR = "203.0.113.100";
/** 150 services x 5 dests from port `port0`; the 76th asks for the held-back ovf scheduler */
function big(port0: number, withOvf: boolean): DesiredService[] {
  const out: DesiredService[] = [];
  for (let i = 0; i < 150; i++) {
    if (i === 75 && !withOvf) continue;
    out.push({
      key: { af: 4, protocol: "tcp", addr: BIG_ADDR, port: port0 + i },
      sched: i === 75 ? "ovf" : "wlc",
      dests: [1, 2, 3, 4, 5].map((r) => ({
        addr: `198.51.100.${r}`,
        port: 80,
        fwd: "masq" as const,
        weight: 1,
      })),
    });
  }
  return out;
}
const bigLines = () => ipvsadmSave().filter((l) => l.includes(`${BIG_ADDR}:`));

describe("batched netlink and incremental sync on a real kernel", () => {
  test("900 ops per ack mode, many per datagram: the refused service fails alone, ipvsadm agrees", () => {
    for (const [mode, port0] of [
      ["each", 2000],
      ["errors", 3000],
    ] as const) {
      const s = openIpvs({ ackMode: mode });
      try {
        const ops = reconcile(big(port0, true), readTable(s.client));
        expect(ops.length).toBe(900);
        const res = applyOps(s.client, ops);
        expect(res.errors.map((e) => [e.op, e.service, e.code])).toEqual([
          ["add-service", `tcp ${BIG_ADDR}:${port0 + 75}`, "ENOENT"],
        ]);
        expect([res.applied, res.skipped]).toEqual([894, 5]);
      } finally {
        s.socket.close();
      }
    }
    expect(bigLines().length).toBe(2 * 149 * 6);
    expect(renderSave(readTable(client))).toEqual(ipvsadmSave());
    expect(ipvsadmSave()).toContain(FOREIGN_DEST);
  });

  test("IpvsTableSync: adopts, a change is one request without a dump, a manual edit is repaired at resync", () => {
    const desired = [...big(2000, false), ...big(3000, false)];
    const sync = new IpvsTableSync(client);
    const first = sync.sync(desired, new Set());
    expect([first.dumped, first.ops]).toEqual([true, []]);

    const changed = desired.map((s, i) =>
      i === 10 ? { ...s, dests: s.dests.map((d, j) => (j === 1 ? { ...d, weight: 4 } : d)) } : s,
    );
    const second = sync.sync(changed, new Set());
    expect([second.dumped, second.ops.map((o) => o.op), second.result.errors]).toEqual([
      false,
      ["edit-dest"],
      [],
    ]);
    expect(ipvsadmSave()).toContain(`-a -t ${BIG_ADDR}:2010 -r 198.51.100.2:80 -m -w 4`);

    // an operator edits a vigil dest by hand: vigil does not know until it reads the kernel again
    sh(["ipvsadm", "-e", "-t", `${BIG_ADDR}:3020`, "-r", "198.51.100.3:80", "-m", "-w", "9"]);
    expect(sync.sync(changed, new Set()).ops).toEqual([]);
    sync.resync();
    const third = sync.sync(changed, new Set());
    expect([third.dumped, third.ops.map((o) => o.op)]).toEqual([true, ["edit-dest"]]);
    expect(ipvsadmSave()).toContain(`-a -t ${BIG_ADDR}:3020 -r 198.51.100.3:80 -m -w 1`);

    // dropping them all (owned, no longer desired): batched del-service, the rest untouched
    const before = ipvsadmSave().filter((l) => !l.includes(`${BIG_ADDR}:`));
    const owned = new Set([...big(2000, true), ...big(3000, true)].map((s) => serviceKeyString(s.key)));
    const last = sync.sync([], owned);
    expect(last.ops.length).toBe(298);
    expect(last.result.errors).toEqual([]);
    expect(bigLines()).toEqual([]);
    expect(ipvsadmSave()).toEqual(before);
  });
});
