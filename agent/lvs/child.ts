// The check role of `vigil child`: runs the LVS runtime on the configs the watchdog sends and publishes
// its status. Kept here so agent/cli/child.ts only delegates.
import { Config } from "../config/model.ts";
import type { Logger } from "../observe/log.ts";
import type { ChildLink } from "../supervisor/child.ts";
import { LvsRuntime } from "./runtime.ts";

export interface LvsChild {
  stop(): void;
  runtime(): LvsRuntime | null;
}

/**
 * Wires a runtime to a watchdog link: the first config creates it, later ones reload it (same
 * generation twice is a no-op). A config the runtime cannot take is answered with ok: false and the
 * child keeps running the previous one; no IPVS in the kernel is a state, not a failure.
 */
export function serveLvs(link: ChildLink, log: Logger): LvsChild {
  let rt: LvsRuntime | null = null;
  let generation = -1;
  const publish = () => {
    if (rt) link.send({ type: "state", instances: {}, lvs: rt.status() });
  };
  // check counters and latencies move between health changes: metrics see them within 5 s
  setInterval(publish, 5000).unref();
  link.onMessage((msg) => {
    if (msg.type !== "config") return;
    const parsed = Config.safeParse(msg.config);
    if (!parsed.success) {
      link.send({
        type: "reload_result",
        generation: msg.generation,
        ok: false,
        error: parsed.error.message,
      });
      return;
    }
    try {
      if (!rt) rt = new LvsRuntime({ log, onUpdate: publish });
      if (msg.generation !== generation) {
        const diff = rt.apply(parsed.data, msg.generation);
        log.info(
          { generation: msg.generation, virtualServers: parsed.data.virtualServers.length, ...diff },
          "load balancing config applied",
        );
      }
      generation = msg.generation;
      link.send({ type: "reload_result", generation, ok: true });
      publish();
    } catch (e) {
      log.error({ err: String(e) }, "applying load balancing config failed");
      link.send({ type: "reload_result", generation: msg.generation, ok: false, error: String(e) });
    }
  });
  return {
    stop: () => rt?.stop(),
    runtime: () => rt,
  };
}
