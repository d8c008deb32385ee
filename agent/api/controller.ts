// The single path by which a config becomes the running one, whatever brought it (gRPC ApplyConfig,
// SIGHUP, start-up): validate -> check generation -> diff -> persist -> deliver to the children ->
// report. Applies are serialized, so a generation check and the apply it guards cannot interleave
// with another apply. Any refusal before the persist step changes nothing; a child that refuses a
// persisted config gets the previous generation back (persisted again) and the caller is told why.
import { type ConfigDiff, diffInstances } from "../config/diff.ts";
import type { LoadResult } from "../config/load.ts";
import type { Config, ConfigError } from "../config/model.ts";
import type { ConfigSource, ConfigStore } from "../config/store.ts";
import type { Logger } from "../observe/log.ts";

export interface Running {
  generation: number;
  config: Config;
  source: ConfigSource;
}

export type ApplyOutcome =
  | { ok: true; generation: number; diff: ConfigDiff; warnings: ConfigError[]; dryRun: boolean }
  | { ok: false; kind: "invalid"; errors: ConfigError[] }
  | { ok: false; kind: "stale"; expected: number; running: number }
  | { ok: false; kind: "failed"; message: string; rolledBackTo: number };

export interface ApplyRequest {
  /** parse + validate; called inside the apply lock (it may read files, e.g. on SIGHUP) */
  load: () => LoadResult;
  expectedGeneration?: number;
  dryRun?: boolean;
  source: ConfigSource;
}

/** Hands a generation to the children; resolves with the first refusal, or null when accepted. */
export type Deliver = (generation: number, config: Config) => Promise<string | null>;

export interface ControllerOptions {
  initial: Running;
  store: ConfigStore;
  deliver: Deliver;
  log: Logger;
  /** after a generation became the running one (including a rollback) */
  onApplied?: (running: Running, diff: ConfigDiff) => void;
}

export class ConfigController {
  private running: Running;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: ControllerOptions) {
    this.running = opts.initial;
  }

  get current(): Running {
    return this.running;
  }

  apply(req: ApplyRequest): Promise<ApplyOutcome> {
    const p = this.queue.then(() => this.applyNow(req));
    // a failed apply must not poison the queue for the next one
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async applyNow(req: ApplyRequest): Promise<ApplyOutcome> {
    const loaded = req.load();
    if (!loaded.ok) return { ok: false, kind: "invalid", errors: loaded.errors };
    const prev = this.running;
    if (req.expectedGeneration !== undefined && req.expectedGeneration !== prev.generation) {
      return { ok: false, kind: "stale", expected: req.expectedGeneration, running: prev.generation };
    }
    const diff = diffInstances(prev.config, loaded.config);
    const generation = prev.generation + 1;
    if (req.dryRun) return { ok: true, generation, diff, warnings: loaded.warnings, dryRun: true };

    // persisted before the children see it: after a crash from here on, the restart runs this
    // generation, which is what the children were about to run anyway
    this.opts.store.save(generation, loaded.config, req.source);
    this.running = { generation, config: loaded.config, source: req.source };
    const refusal = await this.opts.deliver(generation, loaded.config);
    if (refusal === null) {
      this.opts.log.info(
        { generation, source: req.source, added: diff.added, changed: diff.changed, removed: diff.removed },
        "config applied",
      );
      this.opts.onApplied?.(this.running, diff);
      return { ok: true, generation, diff, warnings: loaded.warnings, dryRun: false };
    }

    // roll back: the previous generation, with its own number, on disk and in the children
    this.opts.log.error({ generation, source: req.source, err: refusal }, "apply failed; rolling back");
    this.opts.store.save(prev.generation, prev.config, prev.source);
    this.running = prev;
    const again = await this.opts.deliver(prev.generation, prev.config);
    if (again !== null) {
      this.opts.log.error({ generation: prev.generation, err: again }, "rollback refused by a child too");
    }
    this.opts.onApplied?.({ ...prev, source: "rollback" }, diffInstances(loaded.config, prev.config));
    return {
      ok: false,
      kind: "failed",
      message: `generation ${generation} refused: ${refusal}; rolled back to generation ${prev.generation}`,
      rolledBackTo: prev.generation,
    };
  }
}

/**
 * Waits for `reload_result` messages of one generation. The watchdog routes every child message to
 * `settle`; `wait` resolves with the refusal text, null on success, or null after `timeoutMs`
 * (a child that is down or slow gets the running config when it comes up: waiting longer would only
 * block the API, and a restart re-delivers the persisted generation anyway).
 */
export class ReloadWaiter {
  private readonly pending = new Map<string, (error: string | null) => void>();

  settle(role: string, generation: number | undefined, ok: boolean, error: string | undefined): void {
    if (generation === undefined) return;
    const key = `${role}/${generation}`;
    const done = this.pending.get(key);
    if (!done) return;
    this.pending.delete(key);
    done(ok ? null : `${role} child: ${error ?? "refused"}`);
  }

  wait(role: string, generation: number, timeoutMs: number): Promise<string | null> {
    const key = `${role}/${generation}`;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.pending.delete(key);
        resolve(null);
      }, timeoutMs);
      this.pending.set(key, (err) => {
        clearTimeout(t);
        resolve(err);
      });
    });
  }

  /** The child died: nobody will answer for it now. */
  abandon(role: string): void {
    for (const [key, done] of this.pending) {
      if (!key.startsWith(`${role}/`)) continue;
      this.pending.delete(key);
      done(null);
    }
  }
}
