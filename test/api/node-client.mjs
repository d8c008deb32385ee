// A client of vigil's API written against proto/vigil/v1/agent.proto alone, run under Node.js (not
// Bun): @grpc/grpc-js + @grpc/proto-loader reading the .proto at run time, no vigil code. It is
// what a fleet controller in another code base would do, so it proves the contract, not our
// generated TypeScript. Driven by test/lab/api.test.ts and test/vm/guest/api-lvs.guest.ts; prints one
// JSON line per step on stdout.
//
//   node test/api/node-client.mjs scenario SOCKET NETNS CONFIG_FILE VIP [DEV]
//       apply a keepalived.conf, see VIP on DEV (default eth0) in NETNS's kernel, read state, watch
//       the takeover event, force BACKUP and watch the failover, health, reflection
//   node test/api/node-client.mjs lb SOCKET VS RS IPVS(0|1)
//       read the virtual/real server state, see a health event, drain RS (maintenance event, drained
//       in GetState, and with IPVS=1 weight 0 in `ipvsadm -Ln`), drain again (unchanged), undrain
//       (weight back), and an unknown real server (NOT_FOUND)
//   node test/api/node-client.mjs tls-probe HOST:PORT CA [CERT KEY]
//       one GetState over TLS (with or without a client certificate); prints {ok} or {code}
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const opts = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };
const def = protoLoader.loadSync(join(root, "proto/vigil/v1/agent.proto"), opts);
const vigil = grpc.loadPackageDefinition(def).vigil.v1;

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function call(client, method, req, timeoutMs = 15000) {
  return new Promise((resolve, reject) =>
    client[method](req, { deadline: Date.now() + timeoutMs }, (e, r) => (e ? reject(e) : resolve(r))),
  );
}

function kernelHas(ns, vip, dev = "eth0") {
  const j = JSON.parse(
    execFileSync("ip", ["-n", ns, "-j", "addr", "show", "dev", dev], { encoding: "utf8" }),
  );
  return j.some((l) => (l.addr_info ?? []).some((a) => a.local === vip));
}

async function scenario([socket, ns, confFile, vip, dev = "eth0"]) {
  const client = new vigil.Agent(`unix:${socket}`, grpc.credentials.createInsecure());
  const events = [];
  const stream = client.WatchEvents({ fromSequence: 1 });
  stream.on("data", (e) => events.push({ ...e, receivedAt: Date.now() }));
  stream.on("error", () => {});

  const before = await call(client, "GetConfig", {});
  out({ step: "config-before", generation: before.generation });

  const applied = await call(client, "ApplyConfig", {
    text: { format: "CONFIG_FORMAT_KEEPALIVED", text: readFileSync(confFile, "utf8"), name: "controller" },
    expectedGeneration: before.generation,
  });
  out({ step: "applied", generation: applied.generation, diff: applied.diff });

  const t0 = Date.now();
  while (!kernelHas(ns, vip, dev) && Date.now() - t0 < 30000) await sleep(20);
  out({ step: "vip", present: kernelHas(ns, vip, dev), ms: Date.now() - t0 });

  // the vrrp child publishes its state right after the transition that added the VIP: GetState
  // may trail the kernel by a moment
  let st = await call(client, "GetState", {});
  const t1 = Date.now();
  while (!st.instances.some((i) => i.vipsHeld.includes(vip)) && Date.now() - t1 < 5000) {
    await sleep(20);
    st = await call(client, "GetState", {});
  }
  out({
    step: "state",
    trailMs: Date.now() - t1,
    generation: st.generation,
    instances: st.instances.map((i) => ({
      name: i.name,
      state: i.state,
      vipsHeld: i.vipsHeld,
      vrid: i.vrid,
    })),
    processes: st.processes.map((p) => p.role),
    loadBalancingAvailable: st.loadBalancingAvailable,
  });

  const waitEvent = (pred, ms = 10000) => waitFor(events, pred, ms);
  const takeover = await waitEvent((e) => e.transition?.to === "MASTER");
  out({ step: "takeover-event", event: takeover });

  // failover: force this node to BACKUP; its peer takes the VIP
  const m = await call(client, "SetMaintenance", { instance: { name: "VI_1" }, active: true });
  const failover = await waitEvent((e) => e.transition?.from === "MASTER" && e.transition?.to === "BACKUP");
  out({ step: "failover-event", changed: m.changed, event: failover, vipHere: kernelHas(ns, vip, dev) });

  // health and reflection, the standard services any gRPC tooling expects
  const hdef = protoLoader.loadSync(join(root, "proto/grpc/health/v1/health.proto"), opts);
  const health = new (grpc.loadPackageDefinition(hdef).grpc.health.v1.Health)(
    `unix:${socket}`,
    grpc.credentials.createInsecure(),
  );
  const h = await call(health, "Check", { service: "" });
  out({ step: "health", status: h.status });

  const rdef = protoLoader.loadSync(join(root, "proto/grpc/reflection/v1/reflection.proto"), opts);
  const Refl = grpc.loadPackageDefinition(rdef).grpc.reflection.v1.ServerReflection;
  const refl = new Refl(`unix:${socket}`, grpc.credentials.createInsecure());
  const services = await new Promise((resolve, reject) => {
    const s = refl.ServerReflectionInfo();
    s.on("data", (r) => {
      resolve(r.listServicesResponse?.service.map((x) => x.name) ?? []);
      s.end();
    });
    s.on("error", reject);
    s.write({ listServices: "*" });
  });
  out({ step: "reflection", services });

  stream.cancel();
  client.close();
}

async function waitFor(events, pred, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const e = events.find(pred);
    if (e) return e;
    await sleep(10);
  }
  return null;
}

/** dest weights of one service in `ipvsadm -Ln`: SERVICE is "TCP 192.0.2.10:80" */
function ipvsWeights(service) {
  const weights = {};
  let inService = false;
  for (const line of execFileSync("ipvsadm", ["-Ln"], { encoding: "utf8" }).split("\n")) {
    const svc = /^(TCP|UDP|SCTP|FWM)\s+(\S+)/.exec(line);
    if (svc) {
      inService = `${svc[1]} ${svc[2]}` === service;
      continue;
    }
    const d = /^\s+->\s+(\S+)\s+\S+\s+(\d+)/.exec(line);
    if (d && inService) weights[d[1]] = Number(d[2]);
  }
  return weights;
}

async function lb([socket, vsName, rsName, ipvs]) {
  const withIpvs = ipvs === "1";
  const client = new vigil.Agent(`unix:${socket}`, grpc.credentials.createInsecure());
  const events = [];
  // 1: everything still held (after an EventsLost naming what came before this run)
  const stream = client.WatchEvents({ fromSequence: 1 });
  stream.on("data", (e) => events.push(e));
  stream.on("error", () => {});
  // "192.0.2.10:80/TCP" -> "TCP 192.0.2.10:80", as ipvsadm names it
  const [hostPort, proto] = vsName.split("/");
  const service = `${proto} ${hostPort}`;
  const rsState = async () => {
    const st = await call(client, "GetState", {});
    const vs = st.virtualServers.find((v) => v.name === vsName);
    return { st, vs, rs: vs?.realServers.find((r) => r.key === `${vsName} -> ${rsName}`) };
  };
  const waitWeight = async (want, ms = 30000) => {
    const end = Date.now() + ms;
    let w;
    do {
      w = ipvsWeights(service)[rsName];
      if (w === want) return w;
      await sleep(100);
    } while (Date.now() < end);
    return w;
  };

  // GetState reports what the check child knows: wait until it has checked the real servers
  let s0 = await rsState();
  const t0 = Date.now();
  while (!s0.vs?.realServers.every((r) => r.lastCheckResult) && Date.now() - t0 < 30000) {
    await sleep(200);
    s0 = await rsState();
  }
  out({
    step: "lb-state",
    ipvs: s0.st.ipvs,
    ipvsError: s0.st.ipvsError,
    loadBalancingAvailable: s0.st.loadBalancingAvailable,
    virtualServers: s0.st.virtualServers,
  });
  const health = await waitFor(events, (e) => e.health, 30000);
  out({ step: "health-event", event: health, lost: events.find((e) => e.eventsLost) ?? null });
  const weightBefore = withIpvs ? await waitWeight(s0.rs?.weight ?? -1) : null;

  // timings: the call's round trip (persisted, sent to the check child) and until ipvsadm shows it
  const tDrain = Date.now();
  const d = await call(client, "SetMaintenance", {
    realServer: { virtualServer: vsName, realServer: rsName },
    active: true,
  });
  const drainRttMs = Date.now() - tDrain;
  const m = await waitFor(events, (e) => e.maintenance?.realServer === rsName && e.maintenance.active, 10000);
  const kernelDrained = withIpvs ? await waitWeight(0) : null;
  const drainToKernelMs = withIpvs ? Date.now() - tDrain : null;
  // the check child publishes after its reconcile: wait for GetState to show the kernel side
  let s1 = await rsState();
  const t1 = Date.now();
  while (withIpvs && s1.rs?.kernelWeight !== 0 && Date.now() - t1 < 10000) {
    await sleep(100);
    s1 = await rsState();
  }
  out({
    step: "drain",
    drainRttMs,
    drainToKernelMs,
    changed: d.changed,
    event: m,
    ipvsWeightBefore: weightBefore,
    ipvsWeight: kernelDrained,
    rs: s1.rs,
  });
  const again = await call(client, "SetMaintenance", {
    realServer: { virtualServer: vsName, realServer: rsName },
    active: true,
  });
  out({ step: "drain-again", changed: again.changed });

  const tUndrain = Date.now();
  const u = await call(client, "SetMaintenance", {
    realServer: { virtualServer: vsName, realServer: rsName },
    active: false,
  });
  const um = await waitFor(
    events,
    (e) => e.maintenance?.realServer === rsName && !e.maintenance.active,
    10000,
  );
  const restored = withIpvs ? await waitWeight(weightBefore) : null;
  const undrainToKernelMs = withIpvs ? Date.now() - tUndrain : null;
  let s2 = await rsState();
  const t2 = Date.now();
  while (withIpvs && s2.rs?.kernelWeight !== weightBefore && Date.now() - t2 < 10000) {
    await sleep(100);
    s2 = await rsState();
  }
  out({ step: "undrain", undrainToKernelMs, changed: u.changed, event: um, ipvsWeight: restored, rs: s2.rs });

  try {
    await call(client, "SetMaintenance", {
      realServer: { virtualServer: vsName, realServer: "198.51.100.250:9" },
      active: true,
    });
    out({ step: "unknown", code: 0 });
  } catch (e) {
    out({ step: "unknown", code: e.code, details: e.details });
  }
  stream.cancel();
  client.close();
}

async function tlsProbe([addr, ca, cert, key]) {
  const creds = grpc.credentials.createSsl(
    readFileSync(ca),
    key ? readFileSync(key) : null,
    cert ? readFileSync(cert) : null,
  );
  const client = new vigil.Agent(addr, creds, { "grpc.ssl_target_name_override": "localhost" });
  try {
    const st = await call(client, "GetState", {}, 5000);
    out({ ok: true, generation: st.generation });
  } catch (e) {
    out({ ok: false, code: e.code, details: e.details });
  }
  client.close();
}

const [mode, ...args] = process.argv.slice(2);
try {
  if (mode === "scenario") await scenario(args);
  else if (mode === "lb") await lb(args);
  else if (mode === "tls-probe") await tlsProbe(args);
  else throw new Error(`unknown mode ${mode}`);
  process.exit(0);
} catch (e) {
  out({ step: "error", message: String(e?.message ?? e), code: e?.code });
  process.exit(1);
}
