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
    const switchTo = as && process.getuid?.() === 0 && (as.uid !== 0 || as.gid !== 0) ? as : undefined;
    // Bun sets the gid, clears the supplementary groups (root's included), then sets the uid
    proc = Bun.spawn(argv, {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
      ...(switchTo ? { uid: switchTo.uid, gid: switchTo.gid } : {}),
    });
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

/** Fire-and-forget for notify scripts; the callback reports a failure for logging. */
export function spawnNotify(
  argv: string[],
  onDone: (o: ScriptOutcome) => void,
  timeoutMs = 30_000,
  as?: Identity,
): void {
  void runScript(argv, timeoutMs, as).then(onDone);
}
