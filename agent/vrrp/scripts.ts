// Running operator scripts: tracking scripts (vrrp_script) on an interval with a timeout, and notify
// scripts on transitions. Like keepalived, the script text is split into argv (quotes respected) and
// executed directly, not through a shell; keepalived's notify arguments are appended.

import { splitQuotedEscaped } from "../config/keepalived/lexer.ts";
import type { Identity } from "../config/script-user.ts";

/** Splits a keepalived script line into argv the way keepalived does (quotes, escapes). */
export function splitCommand(line: string): string[] {
  return splitQuotedEscaped(line).words;
}

export interface ScriptOutcome {
  ok: boolean;
  code: number | null;
  timedOut: boolean;
  error?: string;
}

/**
 * Runs argv with a timeout (ms), as `as` when given (script_user); the process is killed on timeout.
 * Never throws. Only root can switch identity: a vigil run by another user runs scripts as itself.
 */
export async function runScript(argv: string[], timeoutMs: number, as?: Identity): Promise<ScriptOutcome> {
  if (argv.length === 0) return { ok: false, code: null, timedOut: false, error: "empty command" };
  let proc: Bun.Subprocess<"ignore", "ignore", "ignore">;
  try {
    proc = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore", ...spawnIdentity(as) });
  } catch (e) {
    return { ok: false, code: null, timedOut: false, error: (e as Error).message };
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return { ok: !timedOut && code === 0, code: timedOut ? null : code, timedOut };
}

/**
 * Bun.spawn options that run a child as `as`: Bun sets the gid, clears the supplementary groups
 * (root's included), then sets the uid. Nothing to do when `as` is root or vigil is not root.
 */
export function spawnIdentity(as: Identity | undefined): { uid?: number; gid?: number } {
  if (!as || process.getuid?.() !== 0 || (as.uid === 0 && as.gid === 0)) return {};
  return { uid: as.uid, gid: as.gid };
}

/**
 * Starts a script that runs as long as vigil does (notify_fifo_script). Returns its stop function,
 * or an error text when it could not be started.
 */
export function startLongRunning(argv: string[], as?: Identity): { stop: () => void } | { error: string } {
  if (argv.length === 0) return { error: "empty command" };
  try {
    const proc = Bun.spawn(argv, {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
      ...spawnIdentity(as),
    });
    return { stop: () => proc.kill("SIGTERM") };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Fire-and-forget for notify scripts; the callback reports a failure for logging. */
export function spawnNotify(
  argv: string[],
  onDone: (o: ScriptOutcome) => void,
  timeoutMs = 30_000,
  as?: Identity,
): void {
  void runScript(argv, timeoutMs, as).then(onDone);
}
