// Builds the single-file executable: `bun scripts/build.ts` -> dist/vigil (from agent/main.ts).
// Never strip the result: the JavaScript is appended to the bun runtime and strip turns it back into plain bun.
//
// Every Worker file must be an extra entry point of the compile, and the binary finds it by a path
// relative to its embedded root (/$bunfs/root/): the root is pinned to the repository so that
// ffi/reader.worker.ts is "./ffi/reader.worker.ts" in every build (see ffi/reader.ts).
import { statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

export const ROOT = join(import.meta.dir, "..");

/** Worker entry points, relative to ROOT; each is embedded beside the main entry. */
export const WORKER_ENTRIES = ["ffi/reader.worker.ts"];

export interface BuildOptions {
  /** main entry point (absolute or relative to ROOT) */
  entry: string;
  /** output file (absolute or relative to ROOT) */
  outfile: string;
}

export interface BuildResult {
  outfile: string;
  bytes: number;
  ms: number;
}

/** Compiles entry (plus the worker entries) into a standalone executable. Throws with bun's output on failure. */
export async function buildBinary(opts: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const outfile = resolve(ROOT, opts.outfile);
  const entry = relative(ROOT, resolve(ROOT, opts.entry));
  const cmd = [
    process.execPath,
    "build",
    "--compile",
    "--minify",
    "--bytecode",
    // --bytecode defaults to CommonJS, which has no top-level await (agent/main.ts uses it)
    "--format=esm",
    `--root=${ROOT}`,
    // a daemon must not pick up .env or bunfig.toml from whatever directory it is started in
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    entry,
    ...WORKER_ENTRIES,
    `--outfile=${outfile}`,
  ];
  const p = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) {
    throw new Error(`bun build failed (${p.exitCode}):\n${p.stdout.toString()}${p.stderr.toString()}`);
  }
  return { outfile, bytes: statSync(outfile).size, ms: Math.round(performance.now() - started) };
}

if (import.meta.main) {
  const r = await buildBinary({ entry: "agent/main.ts", outfile: "dist/vigil" });
  const smoke = Bun.spawnSync([r.outfile, "version"], { stdout: "pipe", stderr: "pipe" });
  if (smoke.exitCode !== 0) {
    console.error(`built ${r.outfile} but it does not run:\n${smoke.stderr.toString()}`);
    process.exit(1);
  }
  console.log(
    `built ${relative(ROOT, r.outfile)}: ${(r.bytes / 1e6).toFixed(1)} MB in ${r.ms} ms (${smoke.stdout.toString().trim()})`,
  );
}
