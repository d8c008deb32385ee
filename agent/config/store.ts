// Persistence of the accepted config: one file in the state directory holding a whole generation
// (number, source, model JSON). Written before the config is applied, so that an agent killed at
// any point restarts from a complete generation, the previous one or the new one, never a mix:
// the new content goes to a temp file that is fsync'ed, then renamed over the old file (atomic on
// one file system), then the directory is fsync'ed so the rename itself survives a power cut.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { Config } from "./model.ts";

export const STORE_FILE = "config.json";

/** Where a generation came from, for logs and the API. */
export type ConfigSource = "file" | "persisted" | "api" | "sighup" | "rollback";

const Persisted = z.object({
  version: z.literal(1),
  generation: z.number().int().nonnegative(),
  source: z.string(),
  savedAt: z.number(),
  config: Config,
});

export interface StoredConfig {
  generation: number;
  /** source of the generation when it was saved */
  source: string;
  savedAt: number;
  config: Config;
}

export type LoadStored =
  | { kind: "absent" }
  | { kind: "ok"; stored: StoredConfig }
  | { kind: "corrupt"; error: string };

export class ConfigStore {
  readonly path: string;

  constructor(readonly dir: string) {
    this.path = join(dir, STORE_FILE);
  }

  /** Reads the last persisted generation. A file that does not parse is reported, never thrown. */
  load(): LoadStored {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { kind: "absent" };
      return { kind: "corrupt", error: String(e) };
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      return { kind: "corrupt", error: `not JSON: ${(e as Error).message}` };
    }
    const r = Persisted.safeParse(raw);
    if (!r.success) {
      const i = r.error.issues[0];
      return { kind: "corrupt", error: `${i?.path.join(".") ?? ""}: ${i?.message ?? "invalid"}` };
    }
    const { generation, source, savedAt, config } = r.data;
    return { kind: "ok", stored: { generation, source, savedAt, config } };
  }

  /** Atomically replaces the persisted generation (temp file, fsync, rename, fsync dir). */
  save(generation: number, config: Config, source: ConfigSource): void {
    writeFileAtomic(
      this.path,
      JSON.stringify({ version: 1, generation, source, savedAt: Date.now(), config }),
    );
  }
}

/**
 * Replaces `path` with `body` so that a crash at any moment leaves the old content or the new one,
 * never a mix: temp file (mode 0600) in the same directory, fsync, rename over, fsync the directory
 * so the rename itself survives a power cut.
 */
export function writeFileAtomic(path: string, body: string): void {
  // pid in the name: two agents pointed at one state dir by mistake do not share a temp file
  // (the pid file stops the second one, but only after it started)
  const tmp = `${path}.tmp.${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    const buf = Buffer.from(body);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), "r");
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
