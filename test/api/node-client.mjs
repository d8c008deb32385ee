// A client of vigil's API written against proto/vigil/v1/agent.proto alone, run under Node.js (not
// Bun): @grpc/grpc-js + @grpc/proto-loader reading the .proto at run time, no vigil code. It is
// what a fleet controller in another code base would do, so it proves the contract, not our
// generated TypeScript. Driven by test/lab/api.test.ts; prints one JSON line per step on stdout.
//
//   node test/api/node-client.mjs scenario SOCKET NETNS CONFIG_FILE VIP
//       apply a keepalived.conf, see VIP in NETNS's kernel, read state, watch the takeover event,
//       force BACKUP and watch the failover, drain (expect FAILED_PRECONDITION), health, reflection
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

function kernelHas(ns, vip) {
  const j = JSON.parse(
    execFileSync("ip", ["-n", ns, "-j", "addr", "show", "dev", "eth0"], { encoding: "utf8" }),
  );
  return j.some((l) => (l.addr_info ?? []).some((a) => a.local === vip));
}

async function scenario([socket, ns, confFile, vip]) {
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
  while (!kernelHas(ns, vip) && Date.now() - t0 < 10000) await sleep(20);
  out({ step: "vip", present: kernelHas(ns, vip), ms: Date.now() - t0 });

  const st = await call(client, "GetState", {});
  out({
    step: "state",
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

  const waitEvent = async (pred, ms = 10000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const e = events.find(pred);
      if (e) return e;
      await sleep(10);
    }
    return null;
  };
  const takeover = await waitEvent((e) => e.transition?.to === "MASTER");
  out({ step: "takeover-event", event: takeover });

  // failover: force this node to BACKUP; its peer takes the VIP
  const m = await call(client, "SetMaintenance", { instance: { name: "VI_1" }, active: true });
  const failover = await waitEvent((e) => e.transition?.from === "MASTER" && e.transition?.to === "BACKUP");
  out({ step: "failover-event", changed: m.changed, event: failover, vipHere: kernelHas(ns, vip) });

  try {
    await call(client, "SetMaintenance", {
      realServer: { virtualServer: "tcp 192.0.2.10:80", realServer: "192.0.2.20:80" },
      active: true,
    });
    out({ step: "drain", code: 0 });
  } catch (e) {
    out({ step: "drain", code: e.code, details: e.details });
  }

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
  else if (mode === "tls-probe") await tlsProbe(args);
  else throw new Error(`unknown mode ${mode}`);
  process.exit(0);
} catch (e) {
  out({ step: "error", message: String(e?.message ?? e), code: e?.code });
  process.exit(1);
}
