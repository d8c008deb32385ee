// `npm test`: type check, lint, build, then every test tier. Ends with the line CI reads:
// "N passed, N failed[, N skipped]". Tiers run as separate `bun test` processes so that a crash in one
// tier cannot hide the results of the others.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const bun = process.execPath;
let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];

async function step(
  name: string,
  cmd: string[],
  env: Record<string, string> = {},
): Promise<{ out: string; code: number }> {
  console.log(`\n=== ${name}: ${cmd.join(" ")}`);
  const p = Bun.spawn(cmd, {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>, w: (t: string) => void) => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      const t = dec.decode(chunk, { stream: true });
      out += t;
      w(t);
    }
  };
  await Promise.all([
    pump(p.stdout, (t) => process.stdout.write(t)),
    pump(p.stderr, (t) => process.stderr.write(t)),
  ]);
  const code = await p.exited;
  return { out, code };
}

async function check(name: string, cmd: string[]): Promise<void> {
  const { code } = await step(name, cmd);
  if (code === 0) passed++;
  else {
    failed++;
    failures.push(name);
  }
}

function testFiles(dir: string): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => `./${dir}/${f}`)
    .sort();
}

async function tier(name: string, dir: string, timeoutMs: number): Promise<void> {
  const files = testFiles(dir);
  if (files.length === 0) return;
  const { out, code } = await step(name, [bun, "test", "--timeout", String(timeoutMs), ...files]);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const p = num(/^\s*(\d+) pass\s*$/m);
  const f = num(/^\s*(\d+) fail\s*$/m);
  const s = num(/^\s*(\d+) skip\s*$/m);
  passed += p;
  failed += f;
  skipped += s;
  if (f > 0) {
    failures.push(`${name}: ${f} failed`);
    // the names again at the end: CI keeps only the tail of the output
    // (bun prints each failing test twice: where it ran and in its closing summary)
    const names = new Set([...out.matchAll(/^\(fail\) (.*)$/gm)].map((m) => m[1]));
    for (const n of names) failures.push(`  ${n}`);
  }
  // a runner crash or a file that failed to load shows as a non-zero exit with no failing test
  if (code !== 0 && f === 0) {
    failed++;
    failures.push(`${name}: bun test exited ${code}`);
  }
}

const only = process.argv.slice(2);
const want = (t: string) => only.length === 0 || only.includes(t);

if (want("static")) {
  await check("typecheck", [bun, join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", "."]);
  await check("lint", [join(root, "node_modules/.bin/biome"), "check", "."]);
}
if (want("build") || want("lab") || want("interop")) {
  await check("build", [bun, "scripts/build.ts"]);
}
if (want("unit")) await tier("unit", "test/unit", 60_000);
if (want("lab")) await tier("lab", "test/lab", 180_000);
if (want("interop")) await tier("interop", "test/interop", 300_000);
if (want("vm")) await tier("vm", "test/vm", 900_000);

if (failures.length) console.log(`\nfailures:\n  ${failures.join("\n  ")}`);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
