// YAML and JSON configs -> the config model, and the model -> YAML (`vigil convert`).
//
// The file is the model's input shape (camelCase keepalived names, defaults may be omitted), checked
// by the zod schema itself. The yaml library's node ranges turn every problem into FILE:LINE: an
// unknown key at its key, a bad value at the value, a missing field at the object that lacks it.
// Objects get the same `loc`/`locs` the keepalived parser records, so the shared semantic checks
// (validate.ts) name YAML lines too. JSON goes through the same parser (JSON is YAML 1.2 flow style).
//
// Shorthands a person writes by hand: a VIP may be "ADDR[/LEN]", a unicast peer "ADDR", a tracked
// interface or script its name. `instance.family` may be left out: it follows the addresses.
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  stringify,
  type Node as YamlNode,
} from "yaml";
import { z } from "zod";
import { familyOf } from "../wire/ip.ts";
import { Config, type ConfigError, type SourceLoc, type SourceLocs } from "./model.ts";
import { deriveFamily, sortByPlace } from "./validate.ts";

type Path = (string | number)[];

/** Strips optional/default/prefault/pipe wrappers down to the schema that shapes the value. */
export function unwrapSchema(s: z.ZodType): z.ZodType {
  let cur: z.ZodType = s;
  for (let i = 0; i < 16; i++) {
    if (cur instanceof z.ZodOptional || cur instanceof z.ZodDefault || cur instanceof z.ZodPrefault) {
      cur = cur.unwrap() as z.ZodType;
    } else if (cur instanceof z.ZodNullable) {
      cur = cur.unwrap() as z.ZodType;
    } else if (cur instanceof z.ZodPipe) {
      cur = cur.in as z.ZodType;
    } else break;
  }
  return cur;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The member of a discriminated union (the checkers) that shapes `value`, chosen by its
 * discriminator; the schema itself when it is no union or nothing matches (zod reports that).
 */
export function unionMember(s: z.ZodType, value: unknown): z.ZodType {
  if (!(s instanceof z.ZodDiscriminatedUnion) || !isRecord(value)) return s;
  const disc = (s as unknown as { _zod: { def: { discriminator: string } } })._zod.def.discriminator;
  for (const opt of s.options as readonly z.ZodType[]) {
    const o = unwrapSchema(opt);
    if (!(o instanceof z.ZodObject)) continue;
    const d = (o.shape as Record<string, z.ZodType>)[disc];
    if (d?.safeParse(value[disc]).success) return o;
  }
  return s;
}

// keys the loaders fill in; a file must not set them
const INTERNAL_KEYS = new Set(["loc", "locs"]);

function camel(snake: string): string {
  return snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Offsets -> 1-based lines, and path -> the nearest node that exists (key node when asked). */
class Locator {
  constructor(
    readonly contents: unknown,
    readonly lc: LineCounter,
  ) {}

  line(node: YamlNode | null | undefined): number {
    const r = node?.range;
    return r ? this.lc.linePos(r[0]).line : 1;
  }

  /** line of the deepest node on `path`; for the last segment of a map, the key's line if `atKey` */
  find(path: Path, atKey = false): number {
    let node: unknown = this.contents;
    let line = isNodeLike(node) ? this.line(node) : 1;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg),
        );
        if (!pair) return line;
        const last = i === path.length - 1;
        if (last && atKey && isNodeLike(pair.key)) return this.line(pair.key);
        node = pair.value;
        line = isNodeLike(pair.value)
          ? this.line(pair.value)
          : isNodeLike(pair.key)
            ? this.line(pair.key)
            : line;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg];
        if (!isNodeLike(item)) return line;
        node = item;
        line = this.line(item);
      } else return line;
    }
    return line;
  }

  /** line of the key of `path` (a map entry), else of its value */
  keyLine(path: Path): number {
    return this.find(path, true);
  }
}

function isNodeLike(n: unknown): n is YamlNode {
  return typeof n === "object" && n !== null && "range" in n;
}

/** Human path: vrrpInstances[0].virtualIpaddress[1] */
export function pathText(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? String(p) : `.${String(p)}`;
  return s || "(top level)";
}

interface Ctx {
  file: string;
  loc: Locator;
  errors: ConfigError[];
}

/** Expands the hand-written shorthands in place; reports malformed ones. */
function expandShorthands(raw: Record<string, unknown>, ctx: Ctx): void {
  const insts = raw["vrrpInstances"];
  if (Array.isArray(insts)) {
    insts.forEach((inst, i) => {
      if (!isRecord(inst)) return;
      for (const key of ["virtualIpaddress", "virtualIpaddressExcluded"]) {
        const list = inst[key];
        if (!Array.isArray(list)) continue;
        list.forEach((v, j) => {
          if (typeof v !== "string") return;
          const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(v.trim());
          if (!m || familyOf(m[1]!) === null) {
            ctx.errors.push({
              file: ctx.file,
              line: ctx.loc.find(["vrrpInstances", i, key, j]),
              message: `${pathText(["vrrpInstances", i, key, j])}: '${v}' is not ADDRESS[/PREFIX]`,
            });
            return;
          }
          list[j] = m[2] === undefined ? { address: m[1] } : { address: m[1], prefixLen: Number(m[2]) };
        });
      }
      const peers = inst["unicastPeer"];
      if (Array.isArray(peers))
        inst["unicastPeer"] = peers.map((p) => (typeof p === "string" ? { address: p } : p));
    });
  }
  const owners = [
    ...(Array.isArray(insts) ? insts : []),
    ...(Array.isArray(raw["vrrpSyncGroups"]) ? raw["vrrpSyncGroups"] : []),
  ];
  for (const o of owners) {
    if (!isRecord(o)) continue;
    for (const key of ["trackInterface", "trackScript", "trackFile"]) {
      const list = o[key];
      if (Array.isArray(list)) o[key] = list.map((t) => (typeof t === "string" ? { name: t } : t));
    }
  }
}

/** Unknown keys are errors (with a hint for keepalived's snake_case names), located at the key. */
function checkKeys(schema: z.ZodType, value: unknown, path: Path, ctx: Ctx): void {
  const s = unionMember(unwrapSchema(schema), value);
  if (s instanceof z.ZodObject && isRecord(value)) {
    const shape = s.shape as Record<string, z.ZodType>;
    for (const key of Object.keys(value)) {
      const sub = shape[key];
      if (!sub || INTERNAL_KEYS.has(key)) {
        const c = camel(key);
        const hint = c !== key && shape[c] ? ` (did you mean '${c}'?)` : "";
        ctx.errors.push({
          file: ctx.file,
          line: ctx.loc.keyLine([...path, key]),
          message: `${pathText([...path, key])}: unknown key${hint}`,
        });
        continue;
      }
      checkKeys(sub, value[key], [...path, key], ctx);
    }
  } else if (s instanceof z.ZodArray && Array.isArray(value)) {
    value.forEach((v, i) => {
      checkKeys(s.element as z.ZodType, v, [...path, i], ctx);
    });
  }
}

/** Whether a schema object carries `loc` / `locs` fields. */
function hasField(schema: z.ZodType, field: string): boolean {
  const s = unwrapSchema(schema);
  return s instanceof z.ZodObject && field in (s.shape as Record<string, unknown>);
}

/**
 * Fills `loc` (the object's line) and `locs` (the line of every setting under it, keyed by its
 * path inside the object) wherever the schema has them.
 */
function attachLocs(schema: z.ZodType, value: unknown, path: Path, ctx: Ctx): void {
  const s = unionMember(unwrapSchema(schema), value);
  if (s instanceof z.ZodArray && Array.isArray(value)) {
    value.forEach((v, i) => {
      attachLocs(s.element as z.ZodType, v, [...path, i], ctx);
    });
    return;
  }
  if (!(s instanceof z.ZodObject) || !isRecord(value)) return;
  const shape = s.shape as Record<string, z.ZodType>;
  if (hasField(s, "loc")) value["loc"] = { file: ctx.file, line: ctx.loc.find(path) } satisfies SourceLoc;
  if (hasField(s, "locs")) {
    const locs: SourceLocs = {};
    const walk = (v: unknown, rel: Path): void => {
      if (rel.length > 0) locs[rel.join(".")] = { file: ctx.file, line: ctx.loc.keyLine([...path, ...rel]) };
      if (Array.isArray(v)) {
        v.forEach((x, i) => {
          walk(x, [...rel, i]);
        });
      } else if (isRecord(v))
        for (const k of Object.keys(v)) if (!INTERNAL_KEYS.has(k)) walk(v[k], [...rel, k]);
    };
    for (const k of Object.keys(value)) if (!INTERNAL_KEYS.has(k)) walk(value[k], [k]);
    value["locs"] = locs;
  }
  for (const [k, sub] of Object.entries(shape)) {
    if (!INTERNAL_KEYS.has(k) && k in value) attachLocs(sub, value[k], [...path, k], ctx);
  }
}

export type YamlParse = { ok: true; config: Config } | { ok: false; errors: ConfigError[] };

/**
 * Parses YAML (or JSON) text into the model: syntax, unknown keys and the zod schema, every
 * problem at its line. Semantic checks are the caller's (load.ts), as for keepalived.conf.
 */
export function parseYamlConfig(text: string, file: string): YamlParse {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const errors: ConfigError[] = [];
  for (const e of doc.errors) {
    const line = e.linePos?.[0]?.line ?? lc.linePos(e.pos[0]).line;
    errors.push({ file, line, message: e.message.split("\n")[0] ?? e.message });
  }
  if (errors.length) return { ok: false, errors };
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { ok: false, errors: [{ file, line: 1, message: String((e as Error).message ?? e) }] };
  }
  if (raw === null || raw === undefined) raw = {};
  const ctx: Ctx = { file, loc: new Locator(doc.contents, lc), errors };
  if (!isRecord(raw))
    return {
      ok: false,
      errors: [{ file, line: ctx.loc.find([]), message: "the top level must be a mapping" }],
    };
  expandShorthands(raw, ctx);
  checkKeys(Config, raw, [], ctx);
  if (errors.length) return { ok: false, errors: sortByPlace(errors) };
  // an instance without `family` takes its addresses' family
  const insts = raw["vrrpInstances"];
  if (Array.isArray(insts)) {
    for (const inst of insts) {
      if (!isRecord(inst) || inst["family"] !== undefined) continue;
      const f = deriveFamily({
        virtualIpaddress: addrList(inst["virtualIpaddress"]),
        unicastSrcIp: typeof inst["unicastSrcIp"] === "string" ? inst["unicastSrcIp"] : undefined,
        unicastPeer: addrList(inst["unicastPeer"]),
      });
      if (f !== undefined) inst["family"] = f;
    }
  }
  attachLocs(Config, raw, [], ctx);
  const parsed = Config.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // zod says "expected string, received undefined" for a field that is simply missing
      const msg = /received undefined$/.test(issue.message) ? "required but missing" : issue.message;
      errors.push({
        file,
        line: ctx.loc.find(issue.path as Path),
        message: `${pathText(issue.path)}: ${msg}`,
      });
    }
    return { ok: false, errors: sortByPlace(errors) };
  }
  return { ok: true, config: parsed.data };
}

function addrList(v: unknown): { address: string }[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: { address: string }[] = [];
  for (const x of v) if (isRecord(x) && typeof x["address"] === "string") out.push({ address: x["address"] });
  return out;
}

// ---- model -> YAML ------------------------------------------------------------------------------

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** The value a field takes when left out, or undefined when it has none. */
function defaultOf(s: z.ZodType): unknown {
  const r = s.safeParse(undefined);
  return r.success ? r.data : undefined;
}

/** Drops loader-only fields and every value equal to its default; keeps the schema's key order. */
function strip(schema: z.ZodType, value: unknown): unknown {
  const s = unionMember(unwrapSchema(schema), value);
  if (s instanceof z.ZodArray && Array.isArray(value))
    return value.map((v) => strip(s.element as z.ZodType, v));
  if (!(s instanceof z.ZodObject) || !isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, sub] of Object.entries(s.shape as Record<string, z.ZodType>)) {
    // `ignored` records keepalived-only keywords for `vigil check`; it has no meaning in YAML
    if (INTERNAL_KEYS.has(k) || k === "ignored") continue;
    const v = value[k];
    if (v === undefined) continue;
    const d = defaultOf(sub);
    if (d !== undefined && deepEqual(v, d)) continue;
    out[k] = strip(sub, v);
  }
  return out;
}

/**
 * The config as YAML in vigil's model, as short as stays faithful: defaults left out, loader
 * locations dropped, shorthands used where they say everything. Parsing the result gives back an
 * equal model (locations and keepalived's ignored-keyword list aside).
 */
export function toYaml(config: Config): string {
  const out = strip(Config, config) as Record<string, unknown>;
  const insts = out["vrrpInstances"];
  if (Array.isArray(insts)) {
    insts.forEach((inst, i) => {
      if (!isRecord(inst)) return;
      const orig = config.vrrpInstances[i]!;
      // family follows the addresses when the file leaves it out; keep it only where it does not
      if ((deriveFamily(orig) ?? 4) === orig.family) delete inst["family"];
      else inst["family"] = orig.family;
      for (const key of ["virtualIpaddress", "virtualIpaddressExcluded"]) {
        const list = inst[key];
        if (!Array.isArray(list)) continue;
        inst[key] = list.map((v) => {
          if (!isRecord(v)) return v;
          const keys = Object.keys(v);
          if (!keys.every((k) => k === "address" || k === "prefixLen")) return v;
          return v["prefixLen"] === undefined ? v["address"] : `${v["address"]}/${v["prefixLen"]}`;
        });
      }
      const peers = inst["unicastPeer"];
      if (Array.isArray(peers)) {
        inst["unicastPeer"] = peers.map((p) =>
          isRecord(p) && Object.keys(p).length === 1 ? p["address"] : p,
        );
      }
    });
  }
  const owners = [
    ...(Array.isArray(insts) ? insts : []),
    ...(Array.isArray(out["vrrpSyncGroups"]) ? out["vrrpSyncGroups"] : []),
  ];
  for (const o of owners) {
    if (!isRecord(o)) continue;
    for (const key of ["trackInterface", "trackScript", "trackFile"]) {
      const list = o[key];
      if (Array.isArray(list))
        o[key] = list.map((t) => (isRecord(t) && Object.keys(t).length === 1 ? t["name"] : t));
    }
  }
  if (isRecord(out["globalDefs"]) && Object.keys(out["globalDefs"]).length === 0) delete out["globalDefs"];
  for (const k of [
    "vrrpScripts",
    "trackFiles",
    "vrrpInstances",
    "vrrpSyncGroups",
    "virtualServerGroups",
    "virtualServers",
  ]) {
    if (Array.isArray(out[k]) && (out[k] as unknown[]).length === 0) delete out[k];
  }
  return stringify(out, { lineWidth: 0 });
}
