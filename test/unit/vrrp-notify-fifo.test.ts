// Notify FIFOs on the real file system: created with keepalived's mode, lines in keepalived's
// format, a script started with the FIFO's path, and removal of what vigil created.
import { afterAll, describe, expect, test } from "bun:test";
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { fifoLine, NotifyFifos } from "../../agent/vrrp/notify-fifo.ts";
import { until } from "./wait.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "vigil-fifo-"));
  dirs.push(d);
  return d;
}
const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, user: "me" };

function drain(fd: number): string {
  const buf = Buffer.alloc(4096);
  let out = "";
  for (;;) {
    try {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) return out;
      out += buf.subarray(0, n).toString();
    } catch {
      return out; // EAGAIN
    }
  }
}

describe("notify FIFOs", () => {
  test("keepalived's line format", () => {
    expect(fifoLine("INSTANCE", "VI_1", "MASTER", 100)).toBe('INSTANCE "VI_1" MASTER 100\n');
    expect(fifoLine("GROUP", "G1", "BACKUP", 0)).toBe('GROUP "G1" BACKUP 0\n');
  });

  test("creates the FIFO (mode 0644), writes lines, removes it when closed", () => {
    const path = join(tmp(), "notify.fifo");
    const f = new NotifyFifos(pino({ level: "silent" }), () => me);
    f.configure([{ path }]);
    const st = statSync(path);
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o644);
    const rd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    f.write(fifoLine("INSTANCE", "VI_1", "BACKUP", 100));
    f.write(fifoLine("INSTANCE", "VI_1", "MASTER", 100));
    expect(drain(rd)).toBe('INSTANCE "VI_1" BACKUP 100\nINSTANCE "VI_1" MASTER 100\n');
    f.close();
    closeSync(rd);
    expect(existsSync(path)).toBe(false);
  });

  test("an existing FIFO is used and left in place; a full pipe loses lines without blocking", () => {
    const path = join(tmp(), "mine.fifo");
    const first = new NotifyFifos(pino({ level: "silent" }), () => me);
    first.configure([{ path }]);
    // a second user of the same path finds it existing: it must not remove it
    const second = new NotifyFifos(pino({ level: "silent" }), () => me);
    second.configure([{ path }]);
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) second.write(fifoLine("INSTANCE", "VI_1", "MASTER", i));
    expect(performance.now() - t0).toBeLessThan(5000);
    second.close();
    expect(existsSync(path)).toBe(true);
    first.close();
    expect(existsSync(path)).toBe(false);
  });

  test("the script gets the FIFO's path and reads the lines; reconfiguring closes what is gone", async () => {
    const dir = tmp();
    const path = join(dir, "s.fifo");
    const out = join(dir, "out");
    const script = join(dir, "reader.sh");
    writeFileSync(script, `#!/bin/sh\nexec cat "$1" > ${out}\n`, { mode: 0o755 });
    const f = new NotifyFifos(pino({ level: "silent" }), () => me);
    f.configure([{ path, script }]);
    f.write(fifoLine("GROUP", "G1", "MASTER", 0));
    await until(() => existsSync(out) && readFileSync(out, "utf8").includes('GROUP "G1" MASTER 0'), 3000);
    f.configure([]);
    expect(existsSync(path)).toBe(false);
  });
});
