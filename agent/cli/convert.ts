// `vigil convert FILE`: print a config (usually a keepalived.conf) as YAML in vigil's model, the
// form `vigil run -f x.yaml` reads back into the same model. Invalid configs are not converted:
// the errors are printed as `vigil check` prints them. Exit status as for check.
import { type LoadOptions, loadConfigFile, toYaml } from "../config/load.ts";
import { formatConfigError } from "../config/model.ts";
import { parseFlags, UsageError } from "./args.ts";
import type { CheckIo } from "./check.ts";

const USAGE = "usage: vigil convert FILE  (or -f FILE)\n";

const stdio: CheckIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

export function runConvert(argv: string[], io: CheckIo = stdio, opts: LoadOptions = {}): number {
  let file: string | undefined;
  try {
    const f = parseFlags(argv, { file: { type: "string", short: "f" } });
    file = (f.values["file"] as string | undefined) ?? f.positionals[0];
    if (f.positionals.length > (f.values["file"] === undefined ? 1 : 0)) {
      throw new UsageError("only one config file can be converted");
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`vigil convert: ${e.message}\n${USAGE}`);
    return 2;
  }
  if (file === undefined) {
    io.err(`vigil convert: no config file given\n${USAGE}`);
    return 2;
  }
  const r = loadConfigFile(file, opts);
  if (!r.ok) {
    const unreadable = r.errors.length === 1 && r.errors[0]!.line === 0 && r.errors[0]!.file === file;
    for (const e of r.errors) io.err(`${formatConfigError(e)}\n`);
    return unreadable ? 2 : 1;
  }
  for (const w of r.warnings) io.err(`warning: ${formatConfigError(w)}\n`);
  io.out(`# vigil config converted from ${file}\n${toYaml(r.config)}`);
  return 0;
}
