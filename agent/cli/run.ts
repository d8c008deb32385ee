// `vigil run`: the watchdog. It validates the config (nothing starts on an invalid one), holds the
// pid file, starts the vrrp and check children by re-executing itself, sends them the config,
// respawns them when they die, serves the gRPC API, reloads on SIGHUP and stops everything
// gracefully on SIGTERM/SIGINT. Every config change (API or SIGHUP) takes the one apply path of
// agent/api/controller.ts: validate, persist, deliver, roll back on refusal.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { status as grpcStatus } from "@grpc/grpc-js";
import pkg from "../../package.json" with { type: "json" };
import * as pb from "../../proto/gen/vigil/v1/agent.ts";
import { ApiConfigError, type Listener, listenersFromFlags } from "../api/auth.ts";
import { ConfigController, ReloadWaiter, type Running } from "../api/controller.ts";
import { EventRing } from "../api/events.ts";
import { MaintenanceSet, resolveRealServer } from "../api/maintenance.ts";
import { diffToProto } from "../api/mapping.ts";
import { nextSequenceBase, takeSequenceBase } from "../api/sequence-base.ts";
import { ApiServer, type MaintenanceResult } from "../api/server.ts";
import { AgentState, parseLvsEvent, parseTransition, processStates } from "../api/state.ts";
import { loadConfigFile } from "../config/load.ts";
import { type Config, formatConfigError, instanceVips, vipPrefixLen } from "../config/model.ts";
import { ConfigStore } from "../config/store.ts";
import { Kernel } from "../net/kernel.ts";
import { createLogger, type Logger } from "../observe/log.ts";
import { instancesFromState, type MetricsServer, startMetricsServer } from "../observe/metrics.ts";
import { acquirePidFile, PidFileLockedError } from "../supervisor/pidfile.ts";
import { SdNotify } from "../supervisor/sdnotify.ts";
import { Watchdog } from "../supervisor/watchdog.ts";
import { parseFlags, UsageError } from "./args.ts";

export async function runAgent(argv: string[]): Promise<number> {
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(argv, {
      file: { type: "string", short: "f" },
      "state-dir": { type: "string" },
      api: { type: "string" },
      "api-listen": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-client-ca": { type: "string" },
      "insecure-loopback": { type: "boolean" },
      "log-level": { type: "string" },
      "metrics-listen": { type: "string" },
      "child-timeout": { type: "string" },
    });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`vigil run: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const file = (flags.values["file"] as string | undefined) ?? "/etc/keepalived/keepalived.conf";
  const stateDir = (flags.values["state-dir"] as string | undefined) ?? "/var/lib/vigil";
  const logLevel = flags.values["log-level"] as string | undefined;
  const log = createLogger({ level: logLevel, bindings: { proc: "watchdog" } });
  const early = holdSignals(log);
  const str = (k: string) => flags.values[k] as string | undefined;
  /** the VRRP child's latest per-instance snapshot, for metrics */
  let vrrpState: Record<string, unknown> = {};
  /** the VRRP child's runtime counters (drops before an instance is known), for metrics */
  let vrrpCounters: Record<string, number> = {};
  /** the check child's latest load-balancing status (agent/lvs/runtime.ts LvsStatus), opaque here */
  let lvsState: Record<string, unknown> | null = null;
  // How long a child may take to say hello after spawn, and to stay silent before it is presumed hung.
  // The defaults suit a real host; a slow emulated machine (qemu TCG in the tests) needs more.
  let childTimeoutMs: number | undefined;
  const childTimeout = str("child-timeout");
  if (childTimeout !== undefined) {
    childTimeoutMs = Number(childTimeout);
    if (!Number.isInteger(childTimeoutMs) || childTimeoutMs < 1000 || childTimeoutMs > 600_000) {
      process.stderr.write(
        `vigil run: --child-timeout ${childTimeout}: expected milliseconds, 1000-600000\n`,
      );
      return 2;
    }
  }

  // who may reach the API is settled before anything starts: a refused listener is a refused start
  let listeners: Listener[];
  try {
    listeners = listenersFromFlags({
      stateDir,
      api: str("api"),
      apiListen: str("api-listen"),
      tlsCert: str("tls-cert"),
      tlsKey: str("tls-key"),
      tlsClientCa: str("tls-client-ca"),
      insecureLoopback: flags.values["insecure-loopback"] === true,
    });
  } catch (e) {
    if (e instanceof ApiConfigError) {
      log.error({ err: e.message }, "API listener refused");
      process.stderr.write(`vigil run: ${e.message}\n`);
      return 2;
    }
    throw e;
  }

  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const store = new ConfigStore(stateDir);
  const initial = initialConfig(file, store, log);
  if (!initial) return 1;
  let pid: ReturnType<typeof acquirePidFile>;
  try {
    pid = acquirePidFile(join(stateDir, "vigil.pid"));
  } catch (e) {
    if (e instanceof PidFileLockedError) {
      process.stderr.write(`vigil run: ${e.message}\n`);
      return 1;
    }
    throw e;
  }

  const sd = SdNotify.fromEnv(process.env, log);
  const childEnv = logLevel ? { VIGIL_LOG_LEVEL: logLevel } : undefined;
  const role = (name: "vrrp" | "check") => ({ name, ...(childEnv ? { env: childEnv } : {}) });
  const wd = new Watchdog({
    stateDir,
    log,
    // like keepalived, no checker process without virtual servers; a reload or an apply that adds
    // the first one starts it, one that removes the last one stops it (after it removed their services)
    roles: needsCheckChild(initial.config) ? [role("vrrp"), role("check")] : [role("vrrp")],
    childArgv: (role) => ["child", role, "-f", file, "--state-dir", stateDir],
    // A VRRP child down is a host without failover: respawn fast, and cap the backoff low enough that
    // a crash-looping child is still retried every couple of seconds (the loop is reported in state).
    backoff: { initialMs: 100, maxMs: 2000, resetAfterMs: 10_000 },
    ...(childTimeoutMs !== undefined
      ? { helloTimeoutMs: childTimeoutMs, heartbeatTimeoutMs: Math.max(3000, childTimeoutMs / 2) }
      : {}),
  });
  const state = new AgentState();
  const events = new EventRing(4096, sequenceBase(stateDir, log));
  const waiter = new ReloadWaiter();
  const startedAt = performance.now();
  /** instances forced to BACKUP and drained real servers: persisted, re-sent to every new child */
  const maintenance = MaintenanceSet.load(stateDir, log);
  const sendMaintenance = () => wd.send("vrrp", { type: "maintenance", instances: maintenance.instances });
  const sendDrain = () => wd.send("check", { type: "drain", realServers: maintenance.realServers });
  /** forgets maintenance targets the config no longer has (see agent/api/maintenance.ts) */
  const pruneMaintenance = (config: Config) => {
    let gone: ReturnType<MaintenanceSet["prune"]>;
    try {
      gone = maintenance.prune(config);
    } catch (e) {
      log.error({ err: String(e) }, "persisting the maintenance set failed");
      return;
    }
    for (const instance of gone.instances) {
      log.warn({ instance }, "instance left the config: maintenance released");
      events.push({ maintenance: pb.MaintenanceChanged.fromPartial({ instance, active: false }) });
    }
    for (const r of gone.realServers) {
      log.warn({ vs: r.virtualServer, rs: r.realServer }, "real server left the config: drain released");
      events.push({
        maintenance: pb.MaintenanceChanged.fromPartial({
          virtualServer: r.virtualServer,
          realServer: r.realServer,
          active: false,
        }),
      });
    }
    if (gone.instances.length > 0) sendMaintenance();
    if (gone.realServers.length > 0) sendDrain();
  };
  pruneMaintenance(initial.config);
  const controller = new ConfigController({
    initial,
    store,
    log,
    deliver: async (generation, config) => {
      // a new check child says hello and is sent the running config, which is already this one
      if (needsCheckChild(config)) wd.addRole(role("check"));
      const waits: Promise<string | null>[] = [];
      for (const role of ["vrrp", "check"] as const) {
        // a child that is not connected gets the running config when it says hello
        if (wd.send(role, { type: "config", generation, config })) {
          waits.push(waiter.wait(role, generation, CHILD_APPLY_TIMEOUT_MS));
        }
      }
      return (await Promise.all(waits)).find((r) => r !== null) ?? null;
    },
    onApplied: (running, diff) => {
      pruneMaintenance(running.config);
      if (!needsCheckChild(running.config) && wd.hasRole("check")) {
        void wd.removeRole("check").then(() => {
          lvsState = null;
        });
      }
      events.push({
        configApplied: pb.ConfigApplied.fromPartial({
          generation: running.generation,
          source: running.source,
          diff: diffToProto(diff),
        }),
      });
    },
  });
  /** the running config (the controller owns it; this reads it for the shell's own needs) */
  const running = (): Config => controller.current.config;

  wd.on("up", (role) => {
    const cur = controller.current;
    // the operator's wish first: the child then never runs its first config without it
    if (role === "vrrp" && maintenance.instances.length > 0) sendMaintenance();
    if (role === "check" && maintenance.realServers.length > 0) sendDrain();
    wd.send(role, { type: "config", generation: cur.generation, config: cur.config });
  });
  wd.on("exit", (role, info) => {
    // A dead VRRP child cannot advertise: its VIPs must go at once, or the backup that takes over
    // after Master_Down_Interval would share them with this host until the respawn.
    if (role === "vrrp") {
      releaseVips(running(), log, info.reason);
      state.onVrrpGone();
      vrrpState = {};
      vrrpCounters = {};
    }
    if (role === "check") {
      lvsState = null;
      state.onLvsStatus(null);
    }
    waiter.abandon(role);
    const restarts = wd.status().find((c) => c.role === role)?.restarts ?? 0;
    events.push({
      processRestart: pb.ProcessRestart.fromPartial({ role, pid: info.pid, reason: info.reason, restarts }),
    });
  });
  wd.on("message", (role, msg) => {
    switch (msg.type) {
      case "reload_result":
        if (!msg.ok)
          log.error({ role, generation: msg.generation, err: msg.error }, "child refused the config");
        waiter.settle(role, msg.generation, msg.ok, msg.error);
        return;
      case "state":
        if (role === "vrrp") {
          state.onVrrpSnapshot(msg.instances);
          vrrpState = msg.instances;
          vrrpCounters = msg.counters ?? {};
        } else if (role === "check" && msg.lvs) {
          lvsState = msg.lvs;
          state.onLvsStatus(msg.lvs);
        }
        return;
      case "event": {
        if (role === "check") {
          const body = parseLvsEvent(msg.name, msg.data);
          if (body) events.push(body, msg.at);
          return;
        }
        if (msg.name !== "transition") return;
        const t = parseTransition(msg.data);
        if (!t) return;
        state.onTransition(t.instance, msg.at, t.priority);
        events.push({ transition: t }, msg.at);
        return;
      }
    }
  });
  // before any child runs, so that a bad address refuses the start cleanly
  let metrics: MetricsServer | null = null;
  const metricsListen = str("metrics-listen");
  if (metricsListen !== undefined) {
    try {
      metrics = startMetricsServer(metricsListen, () => ({
        instances: instancesFromState(vrrpState),
        vrrpCounters,
        processes: wd.status(),
        lvs: lvsState,
        build: { version: pkg.version, bun: Bun.version },
      }));
    } catch (e) {
      process.stderr.write(`vigil run: --metrics-listen ${metricsListen}: ${String(e)}\n`);
      pid.release();
      return 1;
    }
    log.info({ url: metrics.url }, "metrics listening");
  }
  wd.start();

  const api = new ApiServer({
    controller,
    state,
    events,
    log,
    processes: () =>
      processStates({ pid: process.pid, uptimeMs: performance.now() - startedAt }, wd.status()),
    setInstanceMaintenance: (name, active): MaintenanceResult => {
      if (!running().vrrpInstances.some((i) => i.name === name)) {
        return { ok: false, code: NOT_FOUND, message: `no VRRP instance '${name}'` };
      }
      let changed: boolean;
      try {
        changed = maintenance.setInstance(name, active);
      } catch (e) {
        return { ok: false, code: INTERNAL, message: `cannot persist the maintenance set: ${String(e)}` };
      }
      sendMaintenance();
      if (changed) {
        log.warn({ instance: name, active }, active ? "instance forced to BACKUP" : "instance released");
        events.push({ maintenance: pb.MaintenanceChanged.fromPartial({ instance: name, active }) });
      }
      return { ok: true, changed };
    },
    // Accepted whenever the real server is in the running config, IPVS or not: the wish is recorded
    // and persisted, and takes effect in the kernel whenever the check child can program it (GetState
    // says `ipvs` and `in_kernel`).
    setRealServerMaintenance: (vsName, rsName, active): MaintenanceResult => {
      const r = resolveRealServer(running(), vsName, rsName);
      if (!r.ok)
        return { ok: false, code: r.kind === "ambiguous" ? INVALID_ARGUMENT : NOT_FOUND, message: r.message };
      let changed: boolean;
      try {
        changed = maintenance.setRealServer(r.ref, active);
      } catch (e) {
        return { ok: false, code: INTERNAL, message: `cannot persist the maintenance set: ${String(e)}` };
      }
      sendDrain();
      if (changed) {
        log.warn(
          { vs: r.ref.virtualServer, rs: r.ref.realServer, active },
          active ? "real server drained" : "real server undrained",
        );
        events.push({
          maintenance: pb.MaintenanceChanged.fromPartial({
            virtualServer: r.ref.virtualServer,
            realServer: r.ref.realServer,
            active,
          }),
        });
      }
      return { ok: true, changed };
    },
    drained: (vsKey, rsKey) => maintenance.isDrained(vsKey, rsKey),
  });
  // children first: they get their config on hello, and loading the API (grpc-js, descriptors)
  // costs CPU that must not delay the VRRP child's start
  await wd.whenAllUp();
  try {
    const bound = await api.listen(listeners);
    log.info({ listeners: bound }, "API listening");
  } catch (e) {
    log.error({ err: String(e) }, "API cannot listen");
    process.stderr.write(`vigil run: ${String(e)}\n`);
    await wd.stop();
    metrics?.stop();
    pid.release();
    return 1;
  }

  sd.ready(`${running().vrrpInstances.length} VRRP instances`);
  sd.startWatchdogPings();
  log.info(
    {
      file,
      stateDir,
      instances: running().vrrpInstances.length,
      generation: controller.current.generation,
      source: controller.current.source,
      pid: process.pid,
    },
    "vigil started",
  );

  const reload = () => {
    sd.reloading();
    log.info({ file, generation: controller.current.generation + 1 }, "reloading");
    void controller.apply({ load: () => loadConfigFile(file), source: "sighup" }).then(
      (o) => {
        if (!o.ok && o.kind === "invalid") {
          for (const e of o.errors) log.error({ file: e.file, line: e.line }, formatConfigError(e));
          log.error(
            { file, errors: o.errors.length },
            "reload refused: config invalid; the running config stays",
          );
          sd.ready("reload refused");
          return;
        }
        if (!o.ok) log.error({ file, why: o.kind === "failed" ? o.message : o.kind }, "reload failed");
        sd.ready(`${running().vrrpInstances.length} VRRP instances`);
      },
      (e: unknown) => {
        log.error({ file, err: String(e) }, "reload failed");
        sd.ready("reload failed");
      },
    );
  };

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, "stopping");
    sd.stopping();
    // the children first: the VRRP child's priority-0 adverts are what the backup is waiting for
    const children = wd.stop();
    await Promise.all([children, api.stop()]);
    metrics?.stop();
    sd.close();
    pid.release();
    log.info("stopped");
    process.exit(0);
  };
  for (const sig of EARLY_SIGNALS) process.off(sig, early.handler);
  process.on("SIGHUP", reload);
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // signals that arrived while starting: a stop wins over a reload
  const stop = early.seen.find((s) => s !== "SIGHUP");
  if (stop) void shutdown(stop);
  else if (early.seen.includes("SIGHUP")) reload();
  return -1;
}

const EARLY_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

/**
 * Until the agent is up, signals are only recorded (the default action would kill the watchdog
 * half-started and orphan nothing but leave the state unclear); they are acted on once it is up.
 * SIGUSR1/SIGUSR2 (keepalived's dump signals) are logged and ignored instead of killing vigil.
 */
function holdSignals(log: Logger): { seen: NodeJS.Signals[]; handler: (sig: NodeJS.Signals) => void } {
  const seen: NodeJS.Signals[] = [];
  const handler = (sig: NodeJS.Signals) => {
    log.info({ signal: sig }, "signal received while starting; handled once started");
    seen.push(sig);
  };
  for (const sig of EARLY_SIGNALS) process.on(sig, handler);
  for (const sig of ["SIGUSR1", "SIGUSR2"] as const) {
    process.on(sig, () => log.info({ signal: sig }, "signal ignored: use `vigil ctl status` for state"));
  }
  return { seen, handler };
}

/** The check child (health checks, IPVS) runs only for a config with virtual servers. */
function needsCheckChild(config: Config): boolean {
  return config.virtualServers.length > 0;
}

/** A child that has not answered a config by then is presumed busy; it re-reads it on respawn. */
const CHILD_APPLY_TIMEOUT_MS = 10_000;
const { NOT_FOUND, INVALID_ARGUMENT, INTERNAL } = grpcStatus;

/** This run's first event sequence (agent/api/sequence-base.ts); the clock alone if it cannot persist. */
function sequenceBase(stateDir: string, log: Logger): number {
  try {
    return takeSequenceBase(stateDir, log);
  } catch (e) {
    log.error({ err: String(e) }, "cannot persist the event sequence base; using the clock alone");
    return nextSequenceBase(null, Date.now());
  }
}

/**
 * The config to start with: the last persisted generation when there is one (a config accepted over
 * the API or by a reload survives a restart), else the file. The log says which source was used.
 */
function initialConfig(file: string, store: ConfigStore, log: Logger): Running | null {
  const stored = store.load();
  if (stored.kind === "ok") {
    const { generation, source, savedAt } = stored.stored;
    log.info(
      {
        source: "persisted",
        path: store.path,
        generation,
        savedFrom: source,
        savedAt: new Date(savedAt).toISOString(),
      },
      "config source: last persisted generation",
    );
    return { generation, config: stored.stored.config, source: "persisted" };
  }
  if (stored.kind === "corrupt") {
    log.error({ path: store.path, err: stored.error }, "persisted config unreadable; using the config file");
  }
  const loaded = loadConfigFile(file);
  if (!loaded.ok) {
    for (const e of loaded.errors) log.error({ file: e.file, line: e.line }, formatConfigError(e));
    process.stderr.write(loaded.errors.map((e) => `${formatConfigError(e)}\n`).join(""));
    return null;
  }
  for (const w of loaded.warnings) log.warn({ file: w.file, line: w.line }, formatConfigError(w));
  log.info({ source: "file", file, generation: 1 }, "config source: config file");
  return { generation: 1, config: loaded.config, source: "file" };
}

/** Removes the configured VIPs from the kernel (idempotent); used when the VRRP child died. */
function releaseVips(config: Config, log: Logger, reason: string): void {
  let kernel: Kernel | null = null;
  try {
    kernel = Kernel.open();
    for (const inst of config.vrrpInstances) {
      for (const v of instanceVips(inst)) {
        const link = kernel.link(v.dev ?? inst.interface);
        if (!link) continue;
        if (kernel.delAddress(link.ifindex, v.address, vipPrefixLen(v))) {
          log.warn({ instance: inst.name, vip: v.address, reason }, "VRRP child died: VIP released");
        }
      }
    }
  } catch (e) {
    log.error({ err: String(e) }, "releasing VIPs after a VRRP child death failed");
  } finally {
    kernel?.close();
  }
}
