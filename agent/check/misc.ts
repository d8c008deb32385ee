// MISC_CHECK (keepalived check_misc.c): run misc_path (split with keepalived's quoting rules, no shell)
// and judge its exit status:
//  - 0 -> success (with misc_dynamic: weight back to the configured one, reported as no weight);
//  - misc_dynamic and 2..255 -> success with weight = status - 2 (effective range 0..253);
//  - anything else, or killed by a signal -> failure.
// misc_timeout (default delay_loop) bounds the run: SIGTERM to the script's process group, then
// SIGKILL 2 s later, as keepalived does; a timed-out script is a failure.
import { splitQuotedEscaped } from "../config/keepalived/lexer.ts";
import { resolveIdentity, systemAccounts } from "../config/script-user.ts";
import { spawnIdentity } from "../vrrp/scripts.ts";
import { type CheckResult, type MiscCheckSpec, nowMs, withDefaults } from "./types.ts";

/** Grace between SIGTERM and SIGKILL for a timed-out script (check_misc.c). */
export const MISC_KILL_GRACE_MS = 2_000;

/** The verdict of an exit status, keepalived's rules. */
export function judgeExit(
  status: number | null,
  signal: string | null,
  dynamic: boolean,
): { ok: boolean; weight?: number; reason: string } {
  if (status === null) return { ok: false, reason: `signal ${signal ?? "?"}` };
  if (status === 0) return { ok: true, reason: "exit 0" };
  if (dynamic && status >= 2 && status <= 255)
    return { ok: true, weight: status - 2, reason: `exit ${status}` };
  return { ok: false, reason: `exit ${status}` };
}

export async function miscCheck(spec: MiscCheckSpec): Promise<CheckResult> {
  const start = nowMs();
  const split = splitQuotedEscaped(spec.miscPath);
  if (split.error || split.words.length === 0) {
    return { ok: false, reason: `bad misc_path: ${split.error ?? "empty"}`, latencyMs: 0 };
  }
  const timeoutMs = spec.miscTimeoutMs ?? withDefaults(spec).delayLoopMs;
  const as = resolveIdentity(systemAccounts(), spec.runAs?.global ?? {}, spec.runAs?.own ?? {});
  // an account that vanished since the config was checked fails the check rather than run it as root
  if ("error" in as) return { ok: false, reason: as.error, latencyMs: 0 };
  let proc: Bun.Subprocess<"ignore", "ignore", "ignore">;
  try {
    proc = Bun.spawn(split.words, {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
      env: { ...process.env, ...spec.env },
      // its own process group, so a timeout can kill whatever the script started as well
      detached: true,
      ...spawnIdentity(as),
    });
  } catch (e) {
    return { ok: false, reason: `spawn: ${e instanceof Error ? e.message : String(e)}`, latencyMs: 0 };
  }
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const termTimer = setTimeout(() => {
    timedOut = true;
    signalGroup(proc.pid, "SIGTERM");
    killTimer = setTimeout(() => signalGroup(proc.pid, "SIGKILL"), MISC_KILL_GRACE_MS);
  }, timeoutMs);
  await proc.exited;
  clearTimeout(termTimer);
  if (killTimer) clearTimeout(killTimer);
  const latencyMs = nowMs() - start;
  if (timedOut) {
    // leftovers of the script's group must not outlive the check
    signalGroup(proc.pid, "SIGKILL");
    return { ok: false, reason: "timeout", latencyMs };
  }
  const sig = proc.signalCode === null ? null : String(proc.signalCode);
  const v = judgeExit(proc.exitCode, sig, spec.miscDynamic ?? false);
  return { ...v, latencyMs };
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is already gone
  }
}
