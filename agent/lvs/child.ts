// The check role of `vigil child`: runs the LVS runtime on the configs the watchdog sends and publishes
// its status and its health/quorum events. Kept here so agent/cli/child.ts only delegates.
import { Config } from "../config/model.ts";
import type { Logger } from "../observe/log.ts";
import { type ChildLink, configFrom } from "../supervisor/child.ts";
import { rsIdOf } from "./desired.ts";
import { LvsRuntime } from "./runtime.ts";

export interface LvsChild {
  stop(): void;
  runtime(): LvsRuntime | null;
}

/** Check results and kernel weights move between health changes: GetState and metrics see them. */
const PUBLISH_INTERVAL_MS = 5000;
/**
 * Health changes publish at most this often: the status of a large table is megabytes of JSON
 * (1,000 virtual servers x 10 real servers: 2.2 MB, 10-20 ms to build), and a flapping server must
 * not make the child spend its time reporting instead of checking.
 */
const CHANGE_PUBLISH_MIN_MS = 1000;

/**
 * Wires a runtime to a watchdog link: the first config creates it, later ones reload it (same
 * generation twice is a no-op). A config the runtime cannot take is answered with ok: false and the
 * child keeps running the previous one; no IPVS in the kernel is a state, not a failure. The drained
 * set may arrive before the first config (the watchdog sends it first to a new child), so that the
 * first table programmed already has those servers at weight 0.
 */
export function serveLvs(link: ChildLink, log: Logger): LvsChild {
  let rt: LvsRuntime | null = null;
  let generation = -1;
  let drained: string[] = [];
  let lastPublish = 0;
  let trailing: ReturnType<typeof setTimeout> | null = null;
  const publish = () => {
    if (trailing) clearTimeout(trailing);
    trailing = null;
    lastPublish = performance.now();
    if (rt) link.send({ type: "state", instances: {}, lvs: rt.status() });
  };
  /** after a reconcile: at once if the last report is old enough, else once when it is */
  const publishSoon = () => {
    if (trailing) return;
    const wait = lastPublish + CHANGE_PUBLISH_MIN_MS - performance.now();
    if (wait <= 0) publish();
    else trailing = setTimeout(publish, wait);
  };
  const timer = setInterval(publish, PUBLISH_INTERVAL_MS);
  timer.unref();
  link.onMessage((msg) => {
    if (msg.type === "drain") {
      drained = msg.realServers.map((r) => rsIdOf(r.virtualServer, r.realServer));
      log.info({ drained: drained.length }, "drained real servers set");
      rt?.setDrained(drained);
      publish();
      return;
    }
    if (msg.type !== "config") return;
    const config = configFrom(link, msg, Config);
    if (!config) return;
    try {
      if (!rt) {
        rt = new LvsRuntime({
          log,
          onUpdate: publishSoon,
          onEvent: (e) => {
            const { type, ...data } = e;
            link.send({ type: "event", name: type, at: Date.now(), data });
          },
        });
        rt.setDrained(drained);
      }
      if (msg.generation !== generation) {
        const diff = rt.apply(config, msg.generation);
        log.info(
          { generation: msg.generation, virtualServers: config.virtualServers.length, ...diff },
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
    stop: () => {
      clearInterval(timer);
      if (trailing) clearTimeout(trailing);
      rt?.stop();
    },
    runtime: () => rt,
  };
}
