// `vigil run`: the agent in the foreground. Loads and validates the config (nothing starts on an
// invalid one), then runs the VRRP runtime until SIGTERM/SIGINT, when masters hand over with
// priority-0 adverts and VIPs are released.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfigFile } from "../config/load.ts";
import { formatConfigError } from "../config/model.ts";
import { createLogger } from "../observe/log.ts";
import { KernelIo } from "../vrrp/io-kernel.ts";
import { VrrpRuntime } from "../vrrp/runtime.ts";
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
  const log = createLogger({ level: flags.values["log-level"] as string | undefined });

  const loaded = loadConfigFile(file);
  if (!loaded.ok) {
    for (const e of loaded.errors) log.error({ file: e.file, line: e.line }, formatConfigError(e));
    process.stderr.write(loaded.errors.map((e) => `${formatConfigError(e)}\n`).join(""));
    return 1;
  }
  for (const w of loaded.warnings) log.warn({ file: w.file, line: w.line }, formatConfigError(w));

  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const pidFile = join(stateDir, "vigil.pid");
  writeFileSync(pidFile, `${process.pid}\n`);

  const io = await KernelIo.open(log);
  const rt = new VrrpRuntime(loaded.config, io, log);
  try {
    rt.start();
  } catch (e) {
    log.error({ err: String(e) }, "start failed");
    rt.stop();
    await io.close();
    return 1;
  }
  log.info({ file, instances: loaded.config.vrrpInstances.length, stateDir }, "vigil started");

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, "stopping");
    rt.stop();
    await io.close();
    rmSync(pidFile, { force: true });
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // keep running: the event loop stays alive through sockets and timers
  return -1;
}
