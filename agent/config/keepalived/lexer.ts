// keepalived.conf lexer: physical lines -> statements and braces, each with its own file and line.
//
// It follows keepalived 2.2.7's reader (lib/parser.c) where that decides what a file means:
// - `!` and `#` start a comment outside double quotes; `\!` and `\#` are literal characters;
// - a `{` or `}` outside double quotes ends the current statement and is a token of its own, so
//   `vrrp_instance VI_1{`, `192.0.2.1 }` and `} else {` split the way keepalived splits them;
// - words are separated by blanks; a word starting with `"` runs to the next `"` (no escapes);
// - `include PATTERN` (the rest of the line, glob with braces) splices files in, relative to the
//   directory of the including file (keepalived chdir()s into it).
// Statements keep their raw text too: keepalived re-reads script lines with quote and escape
// processing (splitQuotedEscaped below), which the plain word split does not do.
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type { ConfigError } from "../model.ts";

/** One statement: the words between line ends and braces. */
export interface Statement {
  kind: "stmt";
  words: string[];
  /** the statement's text after comment removal, for keywords that re-read it (scripts) */
  raw: string;
  file: string;
  line: number;
}

export interface Brace {
  kind: "open" | "close";
  file: string;
  line: number;
}

export type LexItem = Statement | Brace;

export interface LexResult {
  items: LexItem[];
  errors: ConfigError[];
  /** every file read, in order (the top file first) */
  files: string[];
}

/** The file system as the lexer sees it, injectable so tests and the API can lex without disk. */
export interface SourceFs {
  readFile(path: string): string;
  /** null when the path does not exist */
  kind(path: string): "file" | "dir" | "other" | null;
  readdir(path: string): string[];
  realpath(path: string): string;
}

export const nodeFs: SourceFs = {
  readFile: (p) => readFileSync(p, "utf8"),
  kind: (p) => {
    try {
      const st = statSync(p);
      return st.isFile() ? "file" : st.isDirectory() ? "dir" : "other";
    } catch {
      return null;
    }
  },
  readdir: (p) => readdirSync(p),
  realpath: (p) => realpathSync(p),
};

const BLANKS = " \t\f\n\r\v";
// keepalived nests includes through a stack of open files; a limit turns a runaway into an error
const MAX_INCLUDE_DEPTH = 32;

function isBlank(c: string | undefined): boolean {
  return c !== undefined && BLANKS.includes(c);
}

/**
 * Removes a comment and surrounding blanks from one physical line, as keepalived's decomment():
 * `!`/`#` outside double quotes start a comment, a backslash before them (outside quotes) makes
 * them literal. Returns the text and whether a double quote was left open.
 */
export function decomment(line: string): { text: string; unterminatedQuote: boolean } {
  let out = "";
  let quote = false;
  let i = 0;
  while (i < line.length && (line[i] === " " || line[i] === "\t")) i++;
  for (; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') {
      quote = !quote;
      out += c;
    } else if (c === "\\" && i + 1 < line.length) {
      const n = line[i + 1]!;
      // an escaped comment character loses its backslash outside quotes; other escapes stay for
      // the script reader
      out += !quote && (n === "#" || n === "!") ? n : c + n;
      i++;
    } else if (!quote && (c === "!" || c === "#")) {
      break;
    } else {
      out += c;
    }
  }
  return { text: out.replace(/[ \t]+$/, ""), unterminatedQuote: quote };
}

/** keepalived's word split (alloc_strvec_r): blanks separate, `"..."` is one word without the quotes. */
export function splitWords(segment: string): { words: string[]; error?: string } {
  const words: string[] = [];
  let i = 0;
  const n = segment.length;
  while (true) {
    while (i < n && isBlank(segment[i])) i++;
    if (i >= n) break;
    if (segment[i] === '"') {
      const end = segment.indexOf('"', i + 1);
      if (end < 0) return { words, error: `unmatched quote in '${segment}'` };
      words.push(segment.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < n && !isBlank(segment[j]) && segment[j] !== '"') j++;
      words.push(segment.slice(i, j));
      i = j;
    }
  }
  return { words };
}

/**
 * keepalived's script-line reader (alloc_strvec_quoted_escaped): words separated by blanks, where
 * `"..."` and `'...'` group (and may be glued to other text: `a"b c"` is one word `ab c`) and
 * backslash escapes work: \n \t \r \a \b \f \v \E, \xHH, \cX, \NNN octal, anything else literal.
 * Used for `script`, `notify*` (the command line and, inside it, its arguments).
 */
export function splitQuotedEscaped(s: string): { words: string[]; error?: string } {
  const words: string[] = [];
  const n = s.length;
  let i = 0;
  while (true) {
    while (i < n && isBlank(s[i])) i++;
    if (i >= n) break;
    let word = "";
    let quote: string | null = null;
    while (i < n) {
      const c = s[i]!;
      if (c === "\\") {
        i++;
        if (i >= n) return { words, error: `escape character at the end of '${s}'` };
        const e = s[i]!;
        if (e === "x" && /[0-9a-fA-F]/.test(s[i + 1] ?? "")) {
          let v = 0;
          i++;
          while (i < n && /[0-9a-fA-F]/.test(s[i]!)) v = ((v << 4) | Number.parseInt(s[i++]!, 16)) & 0xff;
          word += String.fromCharCode(v);
        } else if (e === "c" && i + 1 < n) {
          word += String.fromCharCode(s.charCodeAt(i + 1) & 0x1f);
          i += 2;
        } else if (e >= "0" && e <= "7") {
          let v = 0;
          let k = 0;
          while (k < 3 && i < n && s[i]! >= "0" && s[i]! <= "7") {
            v = ((v << 3) + Number(s[i])) & 0xff;
            i++;
            k++;
          }
          word += String.fromCharCode(v);
        } else {
          const map: Record<string, string> = {
            a: "\x07",
            b: "\b",
            E: "\x1b",
            f: "\f",
            n: "\n",
            r: "\r",
            t: "\t",
            v: "\v",
          };
          word += map[e] ?? e;
          i++;
        }
        continue;
      }
      if (quote !== null) {
        if (c === quote) quote = null;
        else word += c;
        i++;
        continue;
      }
      if (c === '"' || c === "'") {
        quote = c;
        i++;
        continue;
      }
      if (isBlank(c)) break;
      word += c;
      i++;
    }
    if (quote !== null) return { words, error: `missing terminating ${quote} in '${s}'` };
    words.push(word);
  }
  return { words };
}

/** Index of the first `{` or `}` outside double quotes, or -1 (keepalived's read_line scan). */
function findBrace(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "{" || c === "}") return i;
    if (c === '"') {
      const end = s.indexOf('"', i + 1);
      // an unclosed quote hides everything after it, as in keepalived
      if (end < 0) return -1;
      i = end;
    }
  }
  return -1;
}

const INCLUDE_RE = /^include[rmwba]?[ \t]+(.*)$/;

/** Expands `{a,b}` alternatives (nested allowed), as glob(GLOB_BRACE) does, keeping their order. */
export function expandBraces(pattern: string): string[] {
  let depth = 0;
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (c === "{") {
      if (depth === 0) open = i;
      depth++;
    } else if (c === "}" && depth > 0) {
      depth--;
      if (depth === 0) {
        const inner = pattern.slice(open + 1, i);
        const alts: string[] = [];
        let d = 0;
        let start = 0;
        for (let k = 0; k < inner.length; k++) {
          const ch = inner[k];
          if (ch === "\\") k++;
          else if (ch === "{") d++;
          else if (ch === "}") d--;
          else if (ch === "," && d === 0) {
            alts.push(inner.slice(start, k));
            start = k + 1;
          }
        }
        alts.push(inner.slice(start));
        // glob leaves a brace group without a comma alone
        if (alts.length < 2) continue;
        const head = pattern.slice(0, open);
        const tails = expandBraces(pattern.slice(i + 1));
        return alts.flatMap((a) => expandBraces(head + a).flatMap((h) => tails.map((t) => h + t)));
      }
    }
  }
  return [pattern];
}

function hasMagic(s: string): boolean {
  return /[*?[]/.test(s);
}

/** One path segment of a glob as a regular expression: `*`, `?`, `[...]`/`[!...]`, `\x`. */
function segmentRegex(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < seg.length) re += seg[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    else if (c === "[") {
      const end = seg.indexOf("]", i + 2);
      if (end < 0) {
        re += "\\[";
        continue;
      }
      let body = seg.slice(i + 1, end);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/\\/g, "\\\\")}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * Files matching one brace-free glob pattern, sorted per directory like glob(3). `missingDir` tells
 * that a directory before the first wildcard does not exist (keepalived's "Config files missing").
 */
function globOne(pattern: string, fs: SourceFs): { paths: string[]; missingDir: boolean } {
  const absolute = pattern.startsWith("/");
  const segs = pattern.split("/").filter((s, i) => s !== "" || i === 0);
  let bases = [absolute ? "/" : ""];
  if (absolute) segs.shift();
  let missingDir = false;
  for (let k = 0; k < segs.length; k++) {
    const seg = segs[k]!;
    const last = k === segs.length - 1;
    const next: string[] = [];
    for (const base of bases) {
      if (!hasMagic(seg)) {
        const p = base === "" ? seg : join(base, seg);
        if (!last && fs.kind(p) !== "dir") {
          if (!bases.some((b) => hasMagic(b))) missingDir = true;
          continue;
        }
        next.push(p);
        continue;
      }
      const dir = base === "" ? "." : base;
      let names: string[];
      try {
        names = fs.readdir(dir);
      } catch {
        missingDir = true;
        continue;
      }
      const re = segmentRegex(seg);
      // like the shell, a wildcard does not match a leading dot
      const matched = names
        .filter((nm) => re.test(nm) && (seg.startsWith(".") || !nm.startsWith(".")))
        .sort();
      for (const nm of matched) {
        const p = base === "" ? nm : join(base, nm);
        if (last || fs.kind(p) === "dir") next.push(p);
      }
    }
    bases = next;
  }
  return { paths: bases, missingDir };
}

interface LexState {
  fs: SourceFs | null;
  items: LexItem[];
  errors: ConfigError[];
  files: string[];
  /** real paths of the files being read, innermost last, to refuse include loops */
  stack: string[];
}

function lexInto(st: LexState, text: string, file: string): void {
  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const lineNo = ln + 1;
    const err = (message: string) => st.errors.push({ file, line: lineNo, message });
    const physical = (lines[ln] ?? "").replace(/\r+$/, "");
    const { text: line, unterminatedQuote } = decomment(physical);
    if (line === "") continue;
    if (unterminatedQuote) err(`unterminated quote in '${line}'`);
    if (line.startsWith("@")) {
      err("conditional lines (@SYSTEM_ID ...) are not supported by vigil");
      continue;
    }
    if (/^\$[A-Za-z_][A-Za-z0-9_]*[ \t]*=/.test(line)) {
      err("parameter definitions ($NAME=...) are not supported by vigil");
      continue;
    }
    if (line.startsWith("~SEQ") || line.startsWith("~LST")) {
      err("~SEQ/~LST expansions are not supported by vigil");
      continue;
    }
    let rest = line;
    while (rest !== "") {
      // keepalived checks for `include` before splitting at braces (so `include a{b,c}.conf` globs)
      // and again on what follows a brace
      const inc = INCLUDE_RE.exec(rest);
      if (inc) {
        include(st, inc[1]!.trim(), file, lineNo);
        break;
      }
      const c = rest[0];
      if (c === "{" || c === "}") {
        st.items.push({ kind: c === "{" ? "open" : "close", file, line: lineNo });
        rest = rest.slice(1).replace(/^[ \t]+/, "");
        continue;
      }
      const b = findBrace(rest);
      const segment = (b < 0 ? rest : rest.slice(0, b)).replace(/[ \t]+$/, "");
      rest = b < 0 ? "" : rest.slice(b);
      const { words, error } = splitWords(segment);
      // decomment already reported an open quote on this line
      if (error && !unterminatedQuote) err(error);
      if (words.length > 0) st.items.push({ kind: "stmt", words, raw: segment, file, line: lineNo });
    }
  }
}

function include(st: LexState, pattern: string, file: string, line: number): void {
  const err = (message: string) => st.errors.push({ file, line, message });
  if (pattern === "") {
    err("include: missing file name");
    return;
  }
  if (!st.fs) {
    err("include: not available when the config is given as text");
    return;
  }
  const fs = st.fs;
  if (st.stack.length >= MAX_INCLUDE_DEPTH) {
    err(`include: nested more than ${MAX_INCLUDE_DEPTH} deep`);
    return;
  }
  const base = dirname(file);
  for (const alt of expandBraces(pattern)) {
    const full = isAbsolute(alt) ? alt : join(base, alt);
    let targets: string[];
    if (!hasMagic(alt)) {
      const k = fs.kind(full);
      if (k === null) {
        err(`include: ${full}: no such file`);
        continue;
      }
      if (k !== "file") {
        err(`include: ${full}: not a regular file`);
        continue;
      }
      targets = [full];
    } else {
      const g = globOne(full, fs);
      if (g.missingDir) {
        err(`include: ${full}: directory does not exist`);
        continue;
      }
      // an empty conf.d/*.conf is fine, as in keepalived
      targets = g.paths.filter((p) => fs.kind(p) === "file");
    }
    for (const t of targets) readInto(st, t, { file, line });
  }
}

function readInto(st: LexState, path: string, from: { file: string; line: number } | null): void {
  const fs = st.fs!;
  const at = from ?? { file: path, line: 0 };
  let real: string;
  let text: string;
  try {
    real = fs.realpath(path);
    text = fs.readFile(path);
  } catch (e) {
    st.errors.push({ ...at, message: `${from ? "include: " : ""}cannot read ${path}: ${errText(e)}` });
    return;
  }
  if (st.stack.includes(real)) {
    st.errors.push({ ...at, message: `include: ${path} includes itself (include loop)` });
    return;
  }
  st.files.push(path);
  st.stack.push(real);
  lexInto(st, text, path);
  st.stack.pop();
}

function errText(e: unknown): string {
  if (e && typeof e === "object" && "code" in e && typeof e.code === "string") {
    return e.code === "ENOENT" ? "no such file" : e.code === "EACCES" ? "permission denied" : e.code;
  }
  return String(e);
}

/** Lexes a config file and everything it includes. A top file that cannot be read is an error at line 0. */
export function lexFile(path: string, fs: SourceFs = nodeFs): LexResult {
  const st: LexState = { fs, items: [], errors: [], files: [], stack: [] };
  readInto(st, path, null);
  return { items: st.items, errors: st.errors, files: st.files };
}

/**
 * Lexes config text named `file`. With a file system, `include` works relative to dirname(file);
 * with `null` (text from the API) an include is an error.
 */
export function lexText(text: string, file: string, fs: SourceFs | null = null): LexResult {
  const st: LexState = { fs, items: [], errors: [], files: [file], stack: [] };
  if (fs) {
    try {
      st.stack.push(fs.realpath(file));
    } catch {
      // the text need not exist on disk
    }
  }
  lexInto(st, text, file);
  return { items: st.items, errors: st.errors, files: st.files };
}
