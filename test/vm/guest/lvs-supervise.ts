// `vigil run` reduced to what the load balancing e2e needs, for the TCG guest: the real Watchdog
// (agent/supervisor/watchdog.ts) supervising the real check child (`vigil child check`, the compiled
// binary in $VIGIL_BIN) and handing it the keepalived.conf model, as agent/cli/run.ts does. Why not
// `vigil run` itself: under TCG on a loaded host a child needs more than the watchdog's fixed 10 s to
// say hello (its FFI set-up alone takes seconds there), and run.ts has no knob for that deadline.
//   bun test/vm/guest/lvs-supervise.ts CONF STATE_DIR     (SIGTERM: graceful stop, as vigil run)
import { loadConfigFile } from "../../../agent/config/load.ts";
import { createLogger } from "../../../agent/observe/log.ts";
import { Watchdog } from "../../../agent/supervisor/watchdog.ts";

const [conf, stateDir] = process.argv.slice(2);
const bin = process.env["VIGIL_BIN"];
if (!conf || !stateDir || !bin) {
  process.stderr.write("usage: VIGIL_BIN=... lvs-supervise.ts CONF STATE_DIR\n");
  process.exit(2);
}
const log = createLogger({ bindings: { proc: "watchdog" } });
const loaded = loadConfigFile(conf);
if (!loaded.ok) {
  process.stderr.write(`${JSON.stringify(loaded.errors)}\n`);
  process.exit(1);
}
const config = loaded.config;
const wd = new Watchdog({
  stateDir,
  log,
  roles: [{ name: "check" }],
  command: [bin],
  childArgv: (role) => ["child", role, "-f", conf, "--state-dir", stateDir],
  helloTimeoutMs: 120_000,
  heartbeatTimeoutMs: 30_000,
});
wd.on("up", (role) => {
  wd.send(role, { type: "config", generation: 1, config });
});
wd.on("message", (role, msg) => {
  if (msg.type === "reload_result") log.info({ role, ...msg }, "reload_result");
});
let stopping = false;
process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  void wd.stop().then(() => process.exit(0));
});
wd.start();
