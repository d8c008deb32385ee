// Tracking (interfaces, scripts), notify scripts and sync groups, on a real kernel.
import { afterEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { type Agent, holders, startVigil, tempDir } from "./agents.ts";
import { keepalivedConf } from "./confgen.ts";
import { Lab, waitFor } from "./netns.ts";

const VIP = "192.0.2.100";
const VIP2 = "192.0.2.101";
let lab: Lab | null = null;
const agents: Agent[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop("SIGKILL", 1000);
  await lab?.destroy();
  lab = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function twoNodes(tag: string): Lab {
  lab = new Lab(tag);
  lab.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
  // a veth pair stands in for a tracked uplink (this kernel may lack the dummy driver)
  for (const n of ["n1", "n2"]) {
    lab.exec(lab.node(n).ns, ["ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1"]);
    lab.exec(lab.node(n).ns, ["ip", "link", "set", "trk1", "up"]);
    lab.exec(lab.node(n).ns, ["ip", "link", "set", "trk0", "up"]);
  }
  return lab;
}

function vigil(l: Lab, node: string, conf: string): Agent {
  const a = startVigil(l, node, conf);
  agents.push(a);
  return a;
}

async function holderIs(l: Lab, node: string, timeoutMs: number, vip = VIP): Promise<boolean> {
  return waitFor(() => {
    const h = holders(l, ["n1", "n2"], vip);
    return h.length === 1 && h[0] === node;
  }, timeoutMs);
}

describe("tracking, notify, sync groups", () => {
  test("track_interface without weight: link down puts the master in FAULT; up brings it back", async () => {
    const l = twoNodes("trif");
    const conf = (p: number) =>
      keepalivedConf({
        instances: [
          {
            priority: p,
            version: 3,
            advertInt: 0.2,
            vips: [`${VIP}/24`],
            trackInterfaces: [{ name: "trk0" }],
          },
        ],
      });
    const a1 = vigil(l, "n1", conf(200));
    vigil(l, "n2", conf(100));
    expect(await holderIs(l, "n1", 5000)).toBe(true);
    l.exec(l.node("n1").ns, ["ip", "link", "set", "trk0", "down"]);
    expect(await holderIs(l, "n2", 3000)).toBe(true);
    expect(await a1.waitLine((x) => x.includes('"to":"FAULT"'), 2000)).not.toBeNull();
    l.exec(l.node("n1").ns, ["ip", "link", "set", "trk0", "up"]);
    expect(await holderIs(l, "n1", 5000)).toBe(true);
  });

  test("track_interface with weight and track_script with weight change the priority", async () => {
    const l = twoNodes("trw");
    const dir = tempDir("trw");
    dirs.push(dir);
    const flag = join(dir, "healthy");
    writeFileSync(flag, "");
    const conf = (p: number, withScript: boolean) =>
      keepalivedConf({
        scripts: withScript
          ? [{ name: "chk", script: `/usr/bin/test -f ${flag}`, interval: 1, weight: -150 }]
          : [],
        instances: [
          {
            priority: p,
            version: 3,
            advertInt: 0.2,
            vips: [`${VIP}/24`],
            trackInterfaces: [{ name: "trk0", weight: -150 }],
            trackScripts: withScript ? [{ name: "chk" }] : [],
          },
        ],
      });
    vigil(l, "n1", conf(200, true));
    vigil(l, "n2", conf(100, false));
    expect(await holderIs(l, "n1", 5000)).toBe(true);
    // weight -150 on a down interface: 200 -> 50 < 100, the backup preempts
    l.exec(l.node("n1").ns, ["ip", "link", "set", "trk0", "down"]);
    expect(await holderIs(l, "n2", 3000)).toBe(true);
    l.exec(l.node("n1").ns, ["ip", "link", "set", "trk0", "up"]);
    expect(await holderIs(l, "n1", 3000)).toBe(true);
    // the script failing has the same effect
    rmSync(flag);
    expect(await holderIs(l, "n2", 3000)).toBe(true);
    writeFileSync(flag, "");
    expect(await holderIs(l, "n1", 3000)).toBe(true);
  });

  test("track_file: the number moves the priority, weight 0 faults, a deleted file counts as 0", async () => {
    const l = twoNodes("trfile");
    const dir = tempDir("trfile");
    dirs.push(dir);
    const load = join(dir, "load");
    const maint = join(dir, "maint");
    const conf1 = keepalivedConf({
      trackFiles: [
        { name: "load", file: load, init: "" },
        { name: "maint", file: maint, weight: 0 },
      ],
      instances: [
        {
          priority: 200,
          version: 3,
          advertInt: 0.2,
          vips: [`${VIP}/24`],
          extra: ["track_file {", "  load", "  maint", "}"],
        },
      ],
    });
    const conf2 = keepalivedConf({
      instances: [{ priority: 100, version: 3, advertInt: 0.2, vips: [`${VIP}/24`] }],
    });
    const a1 = vigil(l, "n1", conf1);
    vigil(l, "n2", conf2);
    expect(await holderIs(l, "n1", 5000)).toBe(true);
    // init_file created the missing file with 0
    expect(readFileSync(load, "utf8")).toBe("0\n");
    // 200 - 150 = 50 < 100: the backup preempts
    writeFileSync(load, "-150\n");
    expect(await holderIs(l, "n2", 3000)).toBe(true);
    const changed = await a1.waitLine(
      (x) => x.includes('"msg":"track file changed"') && x.includes('"to":-150'),
      1000,
    );
    expect(changed).not.toBeNull();
    writeFileSync(load, "0\n");
    expect(await holderIs(l, "n1", 3000)).toBe(true);
    // a file moved into place counts (how tools replace files atomically)
    writeFileSync(join(dir, "load.tmp"), "-120");
    renameSync(join(dir, "load.tmp"), load);
    expect(await holderIs(l, "n2", 3000)).toBe(true);
    // deleted: 0 again
    rmSync(load);
    expect(await holderIs(l, "n1", 3000)).toBe(true);
    // weight 0: any non-zero number is a fault
    const from = a1.lines.length;
    writeFileSync(maint, "1\n");
    expect(await holderIs(l, "n2", 3000)).toBe(true);
    expect(await a1.waitLine((x) => x.includes('"to":"FAULT"'), 2000, from)).not.toBeNull();
    writeFileSync(maint, "0\n");
    expect(await holderIs(l, "n1", 3000)).toBe(true);
    // a file half written and not yet closed is not read: only the closed file counts
    const fd = openSync(load, "w");
    writeSync(fd, "-");
    await Bun.sleep(600);
    expect(holders(l, ["n1", "n2"], VIP)).toEqual(["n1"]);
    writeSync(fd, "150\n");
    closeSync(fd);
    expect(await holderIs(l, "n2", 3000)).toBe(true);
  });

  test("notify_fifo_script: started with the FIFO's path, it reads the state lines", async () => {
    const l = twoNodes("nfscript");
    const dir = tempDir("nfscript");
    dirs.push(dir);
    const out = join(dir, "out");
    const reader = join(dir, "reader.sh");
    writeFileSync(reader, `#!/bin/sh\nexec cat "$1" >> ${out}\n`, { mode: 0o755 });
    const fifo = join(dir, "notify.fifo");
    const a = vigil(
      l,
      "n1",
      keepalivedConf({
        globals: [
          "enable_script_security",
          "script_user root",
          `notify_fifo ${fifo}`,
          `notify_fifo_script ${reader}`,
        ],
        instances: [{ priority: 100, version: 3, advertInt: 0.2, vips: [`${VIP}/24`] }],
      }),
    );
    const text = () => (existsSync(out) ? readFileSync(out, "utf8") : "");
    expect(await waitFor(() => text().includes('INSTANCE "VI_1" MASTER 100\n'), 5000)).toBe(true);
    expect(text().startsWith('INSTANCE "VI_1" BACKUP 100\n')).toBe(true);
    await a.stop("SIGTERM", 5000);
    // vigil created the FIFO, so it removes it
    expect(existsSync(fifo)).toBe(false);
  });

  test("notify scripts get keepalived's arguments", async () => {
    const l = twoNodes("notif");
    const dir = tempDir("notif");
    dirs.push(dir);
    const script = join(dir, "notify.sh");
    const out = join(dir, "out");
    writeFileSync(script, `#!/bin/sh\necho "$@" >> ${out}\n`, { mode: 0o755 });
    const masterFile = join(dir, "master");
    const conf = keepalivedConf({
      instances: [
        {
          name: "VI_N",
          priority: 200,
          version: 3,
          advertInt: 0.2,
          vips: [`${VIP}/24`],
          notify: script,
          notifyMaster: `/usr/bin/touch ${masterFile}`,
        },
      ],
    });
    vigil(l, "n1", conf);
    expect(await waitFor(() => existsSync(out) && readFileSync(out, "utf8").includes("MASTER"), 5000)).toBe(
      true,
    );
    const lines = readFileSync(out, "utf8").trim().split("\n");
    expect(lines).toContain("INSTANCE VI_N BACKUP 200");
    expect(lines).toContain("INSTANCE VI_N MASTER 200");
    expect(await waitFor(() => existsSync(masterFile), 2000)).toBe(true);
  });

  test("script_user: notify and tracking scripts run as that user; a script's own user wins", async () => {
    const l = twoNodes("suser");
    const dir = tempDir("suser");
    dirs.push(dir);
    // the unprivileged users must be able to reach the scripts and write their results
    chmodSync(dir, 0o777);
    const notify = join(dir, "notify.sh");
    const notifyOut = join(dir, "notify.out");
    writeFileSync(notify, `#!/bin/sh\necho "$(id -u):$(id -g):$(id -G)" >> ${notifyOut}\n`, { mode: 0o755 });
    const track = join(dir, "track.sh");
    const trackOut = join(dir, "track.out");
    writeFileSync(track, `#!/bin/sh\necho "$(id -u):$(id -g)" > ${trackOut}\n`, { mode: 0o755 });
    const conf = keepalivedConf({
      globals: ["script_user nobody", "enable_script_security"],
      scripts: [{ name: "chk", script: track, interval: 1, user: "daemon" }],
      instances: [
        {
          name: "VI_U",
          priority: 200,
          version: 3,
          advertInt: 0.2,
          vips: [`${VIP}/24`],
          notify,
          trackScripts: [{ name: "chk" }],
        },
      ],
    });
    vigil(l, "n1", conf);
    const id = (...args: string[]) => l.exec(l.node("n1").ns, ["id", ...args]).stdout.trim();
    const nobody = id("-u", "nobody");
    const nogroup = id("-g", "nobody");
    const daemonUid = id("-u", "daemon");
    const daemonGid = id("-g", "daemon");
    expect(await waitFor(() => existsSync(notifyOut) && existsSync(trackOut), 5000)).toBe(true);
    // nobody's ids and no supplementary group (root's group 0 in particular is not inherited)
    for (const line of readFileSync(notifyOut, "utf8").trim().split("\n")) {
      const [u, g, groups] = line.split(":");
      expect(u).toBe(nobody);
      expect(g).toBe(nogroup);
      expect((groups ?? "").split(" ")).not.toContain("0");
    }
    expect(readFileSync(trackOut, "utf8").trim()).toBe(`${daemonUid}:${daemonGid}`);
  });

  test("sync group: a fault on one member moves the whole group", async () => {
    const l = twoNodes("sync");
    const conf = (p: number) =>
      keepalivedConf({
        syncGroups: [{ name: "G1", group: ["VA", "VB"] }],
        instances: [
          {
            name: "VA",
            vrid: 71,
            priority: p,
            version: 3,
            advertInt: 0.2,
            vips: [`${VIP}/24`],
            trackInterfaces: [{ name: "trk0" }],
          },
          { name: "VB", vrid: 72, priority: p, version: 3, advertInt: 0.2, vips: [`${VIP2}/24`] },
        ],
      });
    vigil(l, "n1", conf(200));
    vigil(l, "n2", conf(100));
    expect(await holderIs(l, "n1", 5000)).toBe(true);
    expect(await holderIs(l, "n1", 5000, VIP2)).toBe(true);
    l.exec(l.node("n1").ns, ["ip", "link", "set", "trk0", "down"]);
    expect(await holderIs(l, "n2", 3000)).toBe(true);
    // VB has nothing wrong of its own: it follows its group
    expect(await holderIs(l, "n2", 3000, VIP2)).toBe(true);
    l.exec(l.node("n1").ns, ["ip", "link", "set", "trk0", "up"]);
    expect(await holderIs(l, "n1", 5000)).toBe(true);
    expect(await holderIs(l, "n1", 5000, VIP2)).toBe(true);
  });

  test("dynamic_interfaces: an instance on a missing interface waits; the others run; it starts when the interface appears", async () => {
    const l = twoNodes("dynif");
    const conf = keepalivedConf({
      globals: ["dynamic_interfaces"],
      instances: [
        { name: "VA", vrid: 81, priority: 200, version: 3, advertInt: 0.2, vips: [`${VIP}/24`] },
        {
          name: "VL",
          vrid: 82,
          priority: 200,
          version: 3,
          advertInt: 0.2,
          iface: "late0",
          vips: ["198.51.100.100/24"],
        },
      ],
    });
    const a = vigil(l, "n1", conf);
    expect(await holderIs(l, "n1", 5000)).toBe(true);
    expect(
      await a.waitLine((x) => x.includes('"instance waiting"') && x.includes("late0"), 3000),
    ).not.toBeNull();
    const ns = l.node("n1").ns;
    l.exec(ns, ["ip", "link", "add", "late0", "type", "veth", "peer", "name", "late1"]);
    l.exec(ns, ["ip", "addr", "add", "198.51.100.1/24", "dev", "late0"]);
    l.exec(ns, ["ip", "link", "set", "late1", "up"]);
    l.exec(ns, ["ip", "link", "set", "late0", "up"]);
    // alone on its link, VL becomes master after Master_Down_Interval and adds its VIP on late0
    expect(await waitFor(() => l.hasAddress("n1", "198.51.100.100", "late0"), 5000)).toBe(true);
    expect(l.hasAddress("n1", VIP)).toBe(true);
  });
});
