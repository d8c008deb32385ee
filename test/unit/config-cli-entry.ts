// Tiny entry for the CLI tests: `bun test/unit/config-cli-entry.ts check|convert ARGS...` runs the
// real command in its own process on the tests' fake machine (the interfaces config-oracle.ts
// creates for keepalived), so the exit status and stdout/stderr are the command's own.
import { runCheck } from "../../agent/cli/check.ts";
import { runConvert } from "../../agent/cli/convert.ts";
import { FAKE_ENV } from "./config-oracle.ts";

const [cmd, ...rest] = process.argv.slice(2);
const code = cmd === "convert" ? runConvert(rest, undefined, FAKE_ENV) : runCheck(rest, undefined, FAKE_ENV);
process.exit(code);
