// Loading a config from any syntax into the one model (principle 2), with the same semantic checks
// whatever the syntax: keepalived.conf (lexer + parser), YAML/JSON (yaml.ts). This is the only
// entry point the rest of vigil uses; it also supplies the real environment (interfaces, users)
// to the checks, which tests replace.
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { lexFile, lexText, nodeFs, type SourceFs } from "./keepalived/lexer.ts";
import { parseKeepalived } from "./keepalived/parser.ts";
import { Config, type ConfigError, type ConfigInput, type SourceLoc } from "./model.ts";
import { systemAccounts } from "./script-user.ts";
import { type CheckEnv, sortByPlace, validateConfig } from "./validate.ts";
import { parseYamlConfig, pathText, toYaml } from "./yaml.ts";

export { toYaml };

export type ConfigFormat = "keepalived" | "yaml" | "json";

export interface LoadOptions {
  /** default: /sys/class/net/NAME exists */
  interfaceExists?: (name: string) => boolean;
  /** default: /sys/class/net/NAME/type is 772 (ARPHRD_LOOPBACK); with an injected interfaceExists, name "lo" */
  isLoopback?: (name: string) => boolean;
  /** default: NAME is in /etc/passwd */
  userExists?: (name: string) => boolean;
  /** default: the file exists and is executable (scripts named by absolute path) */
  commandExists?: (path: string) => boolean;
  /** default: the path is a directory */
  directoryExists?: (path: string) => boolean;
  /** file access for keepalived.conf includes (default: the real file system) */
  fs?: SourceFs;
}

export type LoadResult =
  | { ok: true; config: Config; warnings: ConfigError[] }
  | { ok: false; errors: ConfigError[] };

/** keepalived.conf unless the name ends in .yaml/.yml/.json */
export function formatOf(path: string): ConfigFormat {
  const p = path.toLowerCase();
  if (p.endsWith(".yaml") || p.endsWith(".yml")) return "yaml";
  if (p.endsWith(".json")) return "json";
  return "keepalived";
}

function validIfName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0");
}

function sysfsInterfaceExists(name: string): boolean {
  return validIfName(name) && existsSync(`/sys/class/net/${name}`);
}

function sysfsIsLoopback(name: string): boolean {
  if (!validIfName(name)) return false;
  try {
    return readFileSync(`/sys/class/net/${name}/type`, "utf8").trim() === "772";
  } catch {
    return false;
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function systemUserExists(name: string): boolean {
  return systemAccounts().users.has(name);
}

function envOf(opts: LoadOptions): CheckEnv {
  return {
    interfaceExists: opts.interfaceExists ?? sysfsInterfaceExists,
    // an injected interface list is a fake machine: do not mix it with this machine's sysfs
    isLoopback: opts.isLoopback ?? (opts.interfaceExists ? (n) => n === "lo" : sysfsIsLoopback),
    userExists: opts.userExists ?? systemUserExists,
    commandExists: opts.commandExists ?? executable,
    directoryExists: opts.directoryExists ?? isDirectory,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Location of a zod issue in a parser-built input: the deepest object on the path that carries a
 * location, preferring its `locs` entry for the rest of the path.
 */
function locateInInput(input: ConfigInput, path: readonly PropertyKey[], file: string): SourceLoc {
  let best: SourceLoc = { file, line: 0 };
  let cur: unknown = input;
  for (let i = 0; i <= path.length; i++) {
    if (isRecord(cur)) {
      const locs = cur["locs"];
      const rest = path.slice(i).map(String).join(".");
      if (isRecord(locs) && rest !== "" && isRecord(locs[rest])) return locs[rest] as SourceLoc;
      const own = cur["loc"];
      if (isRecord(own) && typeof own["line"] === "number") best = own as SourceLoc;
    }
    if (i === path.length) break;
    const seg = path[i]!;
    if (Array.isArray(cur) && typeof seg === "number") cur = cur[seg];
    else if (isRecord(cur) && typeof seg === "string") cur = cur[seg];
    else break;
  }
  return best;
}

function finish(config: Config, warnings: ConfigError[], opts: LoadOptions, file: string): LoadResult {
  const v = validateConfig(config, envOf(opts), file);
  if (v.errors.length) return { ok: false, errors: v.errors };
  return { ok: true, config, warnings: [...warnings, ...v.warnings] };
}

function fromKeepalived(
  lexed: { errors: ConfigError[]; items: Parameters<typeof parseKeepalived>[0] },
  file: string,
  opts: LoadOptions,
): LoadResult {
  const parsed = parseKeepalived(lexed.items);
  const errors = [...lexed.errors, ...parsed.errors];
  // syntax and value errors first: semantic checks on a half-read config would only add noise
  if (errors.length) return { ok: false, errors: sortByPlace(errors) };
  const r = Config.safeParse(parsed.config);
  if (!r.success) {
    return {
      ok: false,
      errors: r.error.issues.map((iss) => ({
        ...locateInInput(parsed.config, iss.path, file),
        message: `${pathText(iss.path)}: ${iss.message}`,
      })),
    };
  }
  return finish(r.data, parsed.warnings, opts, file);
}

/** Loads, parses and checks a config file; the syntax follows the extension. Never throws. */
export function loadConfigFile(path: string, opts: LoadOptions = {}): LoadResult {
  const format = formatOf(path);
  if (format === "keepalived") return fromKeepalived(lexFile(path, opts.fs ?? nodeFs), path, opts);
  let text: string;
  try {
    text = (opts.fs ?? nodeFs).readFile(path);
  } catch (e) {
    const code = isRecord(e) && typeof e["code"] === "string" ? e["code"] : String(e);
    return { ok: false, errors: [{ file: path, line: 0, message: `cannot read ${path}: ${code}` }] };
  }
  return parseConfigText(text, format, path, opts);
}

/**
 * Parses and checks config text (the API's ApplyConfig, tests). `name` is used in messages; for
 * keepalived.conf, includes are resolved relative to it only when `opts.fs` is given.
 */
export function parseConfigText(
  text: string,
  format: ConfigFormat,
  name: string,
  opts: LoadOptions = {},
): LoadResult {
  if (format === "keepalived") return fromKeepalived(lexText(text, name, opts.fs ?? null), name, opts);
  const y = parseYamlConfig(text, name);
  if (!y.ok) return { ok: false, errors: y.errors };
  return finish(y.config, [], opts, name);
}
