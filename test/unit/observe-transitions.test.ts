// Every state transition is logged as exactly one line with the instance, the old and new state and
// the reason (docs/operations.md#logs). The VRRP runtime runs on a fake network here (no kernel), its
// logger records lines, and each transition event must have its one line, and no line lacks an event.
import { expect, test } from "bun:test";
import pino from "pino";
import { parseConfigText } from "../../agent/config/load.ts";
import type { Logger } from "../../agent/observe/log.ts";
import type { VrrpIo, VrrpRx } from "../../agent/vrrp/io.ts";
import { type RuntimeEvent, VrrpRuntime } from "../../agent/vrrp/runtime.ts";
import { encodeVrrp, VRRP_GROUP_V4 } from "../../agent/wire/vrrp.ts";
import { keepalivedConf } from "../lab/confgen.ts";

type Line = { level: string; fields: Record<string, unknown>; msg: string | undefined };

/** A pino logger (as the agent's) whose records land in `lines`, parsed. */
function recordingLogger(lines: Line[]): Logger {
  return pino(
    { level: "trace", base: null, timestamp: false, formatters: { level: (label) => ({ level: label }) } },
    {
      write(chunk: string): void {
        const { level, msg, ...fields } = JSON.parse(chunk) as Record<string, unknown>;
        lines.push({ level: String(level), fields, msg: msg === undefined ? undefined : String(msg) });
      },
    },
  );
}

/** An IPv4 datagram carrying a VRRPv3 advert from 192.0.2.1, as the reader delivers it. */
function advert(vrid: number, priority: number, vip: string): VrrpRx {
  const msg = encodeVrrp(
    {
      version: 3,
      type: 1,
      vrid,
      priority,
      advertInterval: 5,
      authType: 0,
      authData: new Uint8Array(0),
      family: 4,
      addresses: [vip],
    },
    { src: "192.0.2.1", dst: VRRP_GROUP_V4 },
  );
  const ip = new Uint8Array(20 + msg.length);
  ip.set([0x45, 0xc0, 0, ip.length, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18]);
  ip.set(msg, 20);
  return { family: 4, data: ip, src: "192.0.2.1", dst: VRRP_GROUP_V4, ttl: 255, ifindex: 2 };
}

test("one log line per transition, with instance, from, to and reason", async () => {
  const text = keepalivedConf({
    instances: [
      { name: "VI_1", vrid: 51, priority: 100, version: 3, advertInt: 0.05, vips: ["192.0.2.100/24"] },
      { name: "VI_2", vrid: 52, priority: 100, version: 3, advertInt: 0.05, vips: ["192.0.2.101/24"] },
    ],
  });
  const parsed = parseConfigText(text, "keepalived", "test.conf");
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  let deliver: ((rx: VrrpRx) => void) | null = null;
  const io: VrrpIo = {
    kernel: { addAddress() {}, delAddress() {}, addressesOf: () => [] },
    iface: (name) => ({ name, ifindex: 2, mac: new Uint8Array(6), primary: { 4: "192.0.2.2" } }),
    linkUp: () => true,
    open: (_i, _f, _s, _m, onRx) => {
      deliver = onRx;
      return { send() {} };
    },
    sendFrame() {},
    onLinkChange() {},
    close: async () => {},
  };
  const lines: Line[] = [];
  const events: Extract<RuntimeEvent, { type: "transition" }>[] = [];
  const rt = new VrrpRuntime(parsed.config, io, recordingLogger(lines));
  rt.on((e) => {
    if (e.type === "transition") events.push(e);
  });
  rt.start();
  // both start as BACKUP; without adverts they become MASTER after Master_Down_Interval (~160 ms)
  await Bun.sleep(400);
  // a higher priority master appears for VI_1 only: it steps down
  deliver!(advert(51, 200, "192.0.2.100"));
  await Bun.sleep(20);
  rt.stop();

  const byInstance = (n: string) => events.filter((e) => e.instance === n).map((e) => `${e.from}>${e.to}`);
  expect(byInstance("VI_1")).toEqual(["INIT>BACKUP", "BACKUP>MASTER", "MASTER>BACKUP", "BACKUP>STOP"]);
  expect(byInstance("VI_2")).toEqual(["INIT>BACKUP", "BACKUP>MASTER", "MASTER>STOP"]);
  const logged = lines.filter((l) => l.fields["event"] === "transition");
  expect(logged.length).toBe(events.length);
  for (const [i, e] of events.entries()) {
    const l = logged[i]!;
    expect(l.level).toBe("info");
    expect(l.fields).toMatchObject({ instance: e.instance, from: e.from, to: e.to, reason: e.reason });
    expect(typeof l.fields["reason"] === "string" && l.fields["reason"].length > 0).toBe(true);
    expect(l.msg).toBe(`(${e.instance}) Entering ${e.to} STATE`);
  }
  // the step-down names its cause
  expect(
    events.find((e) => e.instance === "VI_1" && e.to === "BACKUP" && e.from === "MASTER")?.reason,
  ).toMatch(/higher priority advert from 192\.0\.2\.1/);
});
