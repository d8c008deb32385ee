// `vigil check -f FILE`: validate a config (keepalived.conf or YAML/JSON) the way `vigil run` would
// load it, without starting anything. One line per problem, `FILE:LINE: message`, on stderr, so
// editors and CI jump to the line. Exit status: 0 valid, 1 invalid, 2 usage error or unreadable file.
import { accessSync, constants, statSync } from "node:fs";
import { type LoadOptions, loadConfigFile } from "../config/load.ts";
import { formatConfigError } from "../config/model.ts";
import { parseFlags, UsageError } from "./args.ts";

const USAGE = "usage: vigil check -f FILE [--quiet]\n";

export interface CheckIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: CheckIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

/** Runs `vigil check`; `io` and `opts` let tests capture output and fake the machine. */
export function runCheck(argv: string[], io: CheckIo = stdio, opts: LoadOptions = {}): number {
  let file: string | undefined;
  let quiet = false;
  try {
    const f = parseFlags(argv, {
      file: { type: "string", short: "f" },
      quiet: { type: "boolean", short: "q" },
    });
    file = f.values["file"] as string | undefined;
    quiet = f.values["quiet"] === true;
    // `vigil check FILE` works too
    if (file === undefined && f.positionals.length === 1) file = f.positionals[0];
    else if (f.positionals.length > 0) throw new UsageError(`unexpected argument '${f.positionals[0]}'`);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`vigil check: ${e.message}\n${USAGE}`);
    return 2;
  }
  if (file === undefined) {
    io.err(`vigil check: no config file given\n${USAGE}`);
    return 2;
  }
  try {
    accessSync(file, constants.R_OK);
    if (statSync(file).isDirectory()) throw new Error("is a directory");
  } catch (e) {
    const code = (e as { code?: string }).code ?? (e as Error).message;
    io.err(`vigil check: cannot read ${file}: ${code}\n`);
    return 2;
  }
  const r = loadConfigFile(file, opts);
  if (!r.ok) {
    for (const e of r.errors) io.err(`${formatConfigError(e)}\n`);
    io.err(`${file}: invalid (${r.errors.length} error${r.errors.length === 1 ? "" : "s"})\n`);
    return 1;
  }
  for (const w of r.warnings) io.err(`warning: ${formatConfigError(w)}\n`);
  if (!quiet) {
    const n = r.config.vrrpInstances.length;
    io.out(
      `${file}: valid (${n} vrrp instance${n === 1 ? "" : "s"}, ${r.warnings.length} warning${r.warnings.length === 1 ? "" : "s"})\n`,
    );
  }
  return 0;
}
