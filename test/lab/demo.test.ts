// The README's demo, run the way a test can: one scripted failover without a terminal.
import { expect, test } from "bun:test";
import { join } from "node:path";

test("npm run demo -- --once: election, failover with a measured outage, preempt", async () => {
  const root = join(import.meta.dir, "..", "..");
  const p = Bun.spawn([process.execPath, join(root, "scripts", "demo.ts"), "--once"], {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  expect(err).toBe("");
  expect(code).toBe(0);
  expect(out).toContain("election: n1 is master");
  expect(out).toContain("n1 is master again");
  const outage = /longest client outage: (\d+) ms/.exec(out);
  expect(outage).not.toBeNull();
  // the client did lose the VIP while n1 was dead, and not for longer than detection allows
  // (Master_Down_Interval 1805 ms at advert_int 0.5 plus slack for a loaded machine)
  const ms = Number(outage![1]);
  expect(ms).toBeGreaterThan(500);
  expect(ms).toBeLessThan(3000);
  // the lab is gone
  const left = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString();
  expect(left).not.toContain("demo-");
}, 60_000);
