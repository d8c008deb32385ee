// `vigil run`: the watchdog. It validates the config (nothing starts on an invalid one), holds the
// pid file, starts the vrrp and check children by re-executing itself, sends them the config,
// respawns them when they die, reloads on SIGHUP and stops everything gracefully on SIGTERM/SIGINT.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadConfigFile } from "../config/load.ts";
import { type Config, formatConfigError } from "../config/model.ts";
import { Kernel } from "../net/kernel.ts";
import { createLogger, type Logger } from "../observe/log.ts";
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
      "log-level": { type: "string" },
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

  const loaded = loadConfigFile(file);
  if (!loaded.ok) {
    for (const e of loaded.errors) log.error({ file: e.file, line: e.line }, formatConfigError(e));
    process.stderr.write(loaded.errors.map((e) => `${formatConfigError(e)}\n`).join(""));
    return 1;
  }
  for (const w of loaded.warnings) log.warn({ file: w.file, line: w.line }, formatConfigError(w));
  let config: Config = loaded.config;
  let generation = 1;

  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
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
  const wd = new Watchdog({
    stateDir,
    log,
    roles: [
      { name: "vrrp", ...(childEnv ? { env: childEnv } : {}) },
      { name: "check", ...(childEnv ? { env: childEnv } : {}) },
    ],
    childArgv: (role) => ["child", role, "-f", file, "--state-dir", stateDir],
    // A VRRP child down is a host without failover: respawn fast, and cap the backoff low enough that
    // a crash-looping child is still retried every couple of seconds (the loop is reported in state).
    backoff: { initialMs: 100, maxMs: 2000, resetAfterMs: 10_000 },
  });
  wd.on("up", (role) => {
    wd.send(role, { type: "config", generation, config });
  });
  wd.on("exit", (role, info) => {
    // A dead VRRP child cannot advertise: its VIPs must go at once, or the backup that takes over
    // after Master_Down_Interval would share them with this host until the respawn.
    if (role === "vrrp") releaseVips(config, log, info.reason);
  });
  wd.on("message", (role, msg) => {
    if (msg.type === "reload_result" && !msg.ok) {
      log.error({ role, generation: msg.generation, err: msg.error }, "child refused the config");
    }
  });
  wd.start();
  await wd.whenAllUp();
  sd.ready(`${config.vrrpInstances.length} VRRP instances`);
  sd.startWatchdogPings();
  log.info({ file, stateDir, instances: config.vrrpInstances.length, pid: process.pid }, "vigil started");

  process.on("SIGHUP", () => {
    sd.reloading();
    const next = loadConfigFile(file);
    if (!next.ok) {
      for (const e of next.errors) log.error({ file: e.file, line: e.line }, formatConfigError(e));
      log.error(
        { file, errors: next.errors.length },
        "reload refused: config invalid; the running config stays",
      );
      sd.ready("reload refused");
      return;
    }
    config = next.config;
    generation += 1;
    log.info({ file, generation }, "reloading");
    wd.send("vrrp", { type: "config", generation, config });
    wd.send("check", { type: "config", generation, config });
    sd.ready(`${config.vrrpInstances.length} VRRP instances`);
  });

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, "stopping");
    sd.stopping();
    await wd.stop();
    sd.close();
    pid.release();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  return -1;
}

/** Removes the configured VIPs from the kernel (idempotent); used when the VRRP child died. */
function releaseVips(config: Config, log: Logger, reason: string): void {
  let kernel: Kernel | null = null;
  try {
    kernel = Kernel.open();
    for (const inst of config.vrrpInstances) {
      for (const v of [...inst.virtualIpaddress, ...inst.virtualIpaddressExcluded]) {
        const link = kernel.link(v.dev ?? inst.interface);
        if (!link) continue;
        const prefix = v.prefixLen ?? (v.address.includes(":") ? 128 : 32);
        if (kernel.delAddress(link.ifindex, v.address, prefix)) {
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
