// `vigil child ROLE ...`: a process the watchdog started. The vrrp role runs the VRRP runtime on the
// config the watchdog sends; the check role runs health checks and programs IPVS (agent/lvs/child.ts).
// Both arm a parent-death signal first, so no orphan outlives the watchdog holding VIPs.
//
// Each role imports its own engine only when it starts: a module imported here statically would be
// loaded and initialised in both children (the check child has no use for the packet reader and its
// worker, the vrrp child none for the HTTP/TLS/DNS checkers).
import { Config } from "../config/model.ts";
import type { LvsChild } from "../lvs/child.ts";
import { createLogger } from "../observe/log.ts";
import { armParentDeathSignal, type ChildLink, configFrom, connectToWatchdog } from "../supervisor/child.ts";
import type { KernelIo } from "../vrrp/io-kernel.ts";
import type { VrrpRuntime } from "../vrrp/runtime.ts";

export async function runChild(argv: string[]): Promise<number> {
  armParentDeathSignal();
  const role = argv[0];
  if (role === "vrrp") return runVrrpChild();
  if (role === "check") return runCheckChild();
  process.stderr.write(`vigil child: unknown role '${role ?? ""}'\n`);
  return 2;
}

async function runVrrpChild(): Promise<number> {
  const log = createLogger({ bindings: { proc: "vrrp" } });
  const [{ KernelIo }, { VrrpRuntime }] = await Promise.all([
    import("../vrrp/io-kernel.ts"),
    import("../vrrp/runtime.ts"),
  ]);
  let rt: VrrpRuntime | null = null;
  let io: KernelIo | null = null;
  let generation = -1;
  const link: ChildLink = await connectToWatchdog("vrrp", {
    log,
    onShutdown: async () => {
      rt?.stop();
      await io?.close();
    },
  });
  const publish = () => {
    if (!rt) return;
    link.send({
      type: "state",
      instances: Object.fromEntries(rt.status().map((s) => [s.name, s])),
      counters: rt.counters.toObject(),
    });
  };
  // instances an operator forced to BACKUP; re-applied after every config, since reload() re-creates
  // changed instances and a new instance may already be named here
  let maintenance = new Set<string>();
  const applyMaintenance = () => {
    if (!rt) return;
    for (const s of rt.status()) {
      if (s.maintenance !== maintenance.has(s.name)) rt.setMaintenance(s.name, maintenance.has(s.name));
    }
  };
  link.onMessage((msg) => {
    if (msg.type === "maintenance") {
      maintenance = new Set(msg.instances);
      applyMaintenance();
      publish();
      return;
    }
    if (msg.type !== "config") return;
    const config = configFrom(link, msg, Config);
    if (!config) return;
    void (async () => {
      try {
        if (!rt) {
          io = await KernelIo.open(log);
          rt = new VrrpRuntime(config, io, log);
          rt.on((e) => {
            if (e.type !== "transition") return;
            link.send({ type: "event", name: "transition", at: Date.now(), data: e });
            publish();
          });
          rt.start();
          // counters (adverts, drops) move between transitions too: metrics and GetState see them
          setInterval(publish, 5000).unref();
          log.info({ generation: msg.generation, instances: config.vrrpInstances.length }, "VRRP started");
        } else if (msg.generation !== generation) {
          const diff = rt.reload(config);
          log.info({ generation: msg.generation, ...diff }, "config reloaded");
        }
        generation = msg.generation;
        applyMaintenance();
        link.send({ type: "reload_result", generation, ok: true });
        publish();
      } catch (e) {
        log.error({ err: String(e) }, "applying config failed");
        link.send({ type: "reload_result", generation: msg.generation, ok: false, error: String(e) });
        // a VRRP child that cannot run its config is useless: exit and let the watchdog report it
        if (!rt || generation < 0) await link.shutdown(`config failed: ${String(e)}`);
      }
    })();
  });
  return -1;
}

async function runCheckChild(): Promise<number> {
  const log = createLogger({ bindings: { proc: "check" } });
  const { serveLvs } = await import("../lvs/child.ts");
  let lvs: LvsChild | null = null;
  // health checks + IPVS live in agent/lvs/child.ts; stopping leaves the IPVS table in place
  const link = await connectToWatchdog("check", { log, onShutdown: () => lvs?.stop() });
  lvs = serveLvs(link, log);
  return -1;
}
