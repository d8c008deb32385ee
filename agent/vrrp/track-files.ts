// keepalived's track_file for the VRRP child: the number in each tracked file, kept current from
// inotify events on the file's directory (track_file.c init_track_files / process_inotify), and
// init_file, which creates the file at start.
import { readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { TrackFileDef } from "../config/model.ts";
import type { Logger } from "../observe/log.ts";
import { parseTrackFileValue } from "../wire/inotify.ts";
import type { VrrpIo } from "./io.ts";

interface Tracked {
  def: TrackFileDef;
  /** absolute path with the directory's symlinks resolved, as keepalived watches it */
  path: string;
  dir: string;
  base: string;
  value: number;
}

/** The absolute path keepalived watches: the file's realpath, or its directory's when it is missing. */
function trackedPath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    const abs = resolve(file);
    try {
      return `${realpathSync(dirname(abs))}/${basename(abs)}`.replace(/^\/\//, "/");
    } catch {
      return abs;
    }
  }
}

export class TrackFiles {
  private files = new Map<string, Tracked>();
  private readonly unwatch = new Map<string, () => void>();

  constructor(
    private readonly io: Pick<VrrpIo, "watchDirectory">,
    private readonly log: Logger,
    /** called after a tracked value changed */
    private readonly onChange: () => void,
  ) {}

  /** Current number of a track_file (0 when it is unknown, missing or empty). */
  value(name: string): number {
    return this.files.get(name)?.value ?? 0;
  }

  /**
   * Applies the track_file definitions: new ones get their init_file, and every file is read now
   * (onChange when a known one changed). `reload`: init_file's overwrite does not apply (as in
   * keepalived, a reload never overwrites an existing file).
   */
  configure(defs: readonly TrackFileDef[], reload: boolean): void {
    const next = new Map<string, Tracked>();
    let changed = false;
    for (const def of defs) {
      const old = this.files.get(def.name);
      if (old && old.def.file === def.file) {
        // keepalived reads every file again on reload
        const v = this.read(old) ?? old.value;
        changed ||= v !== old.value;
        next.set(def.name, { ...old, def, value: v });
        continue;
      }
      this.initFile(def, reload);
      const path = trackedPath(def.file);
      const t: Tracked = { def, path, dir: dirname(path), base: basename(path), value: 0 };
      t.value = this.read(t) ?? 0;
      next.set(def.name, t);
    }
    this.files = next;
    const dirs = new Set([...next.values()].map((t) => t.dir));
    for (const [dir, stop] of this.unwatch) {
      if (!dirs.has(dir)) {
        stop();
        this.unwatch.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.unwatch.has(dir) || !this.io.watchDirectory) continue;
      try {
        this.unwatch.set(
          dir,
          this.io.watchDirectory(dir, (name, gone) => this.onEvent(dir, name, gone)),
        );
      } catch (err) {
        this.log.error({ dir, err: String(err) }, "track_file: cannot watch directory");
      }
    }
    if (changed) this.onChange();
  }

  close(): void {
    for (const stop of this.unwatch.values()) stop();
    this.unwatch.clear();
  }

  private initFile(def: TrackFileDef, reload: boolean): void {
    if (!def.init) return;
    let exists = false;
    try {
      const st = statSync(def.file);
      exists = true;
      if (!def.init.overwrite || reload) return;
      if (!st.isFile()) {
        this.log.error(
          { trackFile: def.name, file: def.file },
          "track_file: cannot initialise, not a regular file",
        );
        return;
      }
    } catch {
      // missing: create it
    }
    try {
      writeFileSync(def.file, `${def.init.value}\n`);
    } catch (err) {
      this.log.error(
        { trackFile: def.name, file: def.file, exists, err: String(err) },
        "track_file: cannot initialise",
      );
    }
  }

  /** The file's number; 0 when it cannot be read; null when it does not fit (keep the previous one). */
  private read(t: Tracked): number | null {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(t.path);
    } catch {
      return 0;
    }
    const v = parseTrackFileValue(bytes);
    if (v === null)
      this.log.warn({ trackFile: t.def.name, file: t.path }, "track_file: invalid number ignored");
    return v;
  }

  private onEvent(dir: string, name: string | null, gone: boolean): void {
    let changed = false;
    for (const t of this.files.values()) {
      if (t.dir !== dir || (name !== null && t.base !== name)) continue;
      // a file that disappears counts as 0 (keepalived: IN_DELETE / IN_MOVED_FROM)
      const v = gone ? 0 : this.read(t);
      if (v === null || v === t.value) continue;
      this.log.info({ trackFile: t.def.name, file: t.path, from: t.value, to: v }, "track file changed");
      t.value = v;
      changed = true;
    }
    if (changed) this.onChange();
  }
}
