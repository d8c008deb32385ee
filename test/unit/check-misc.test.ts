import { describe, expect, test } from "bun:test";
import { judgeExit, miscCheck } from "../../agent/check/misc.ts";
import type { MiscCheckSpec } from "../../agent/check/types.ts";

const misc = (miscPath: string, extra: Partial<MiscCheckSpec> = {}): MiscCheckSpec => ({
  type: "MISC_CHECK",
  miscPath,
  miscTimeoutMs: 2000,
  ...extra,
});

describe("MISC_CHECK exit status rules", () => {
  test("judgeExit", () => {
    expect(judgeExit(0, null, false)).toMatchObject({ ok: true });
    expect(judgeExit(1, null, false)).toMatchObject({ ok: false });
    expect(judgeExit(7, null, false)).toMatchObject({ ok: false });
    expect(judgeExit(1, null, true)).toMatchObject({ ok: false });
    expect(judgeExit(2, null, true)).toEqual({ ok: true, weight: 0, reason: "exit 2" });
    expect(judgeExit(255, null, true)).toEqual({ ok: true, weight: 253, reason: "exit 255" });
    expect(judgeExit(0, null, true)).toEqual({ ok: true, reason: "exit 0" });
    expect(judgeExit(null, "SIGKILL", true)).toMatchObject({ ok: false, reason: "signal SIGKILL" });
  });
});

describe("MISC_CHECK runs the script", () => {
  test("exit 0 passes, exit 1 fails", async () => {
    expect(await miscCheck(misc("/bin/true"))).toMatchObject({ ok: true, reason: "exit 0" });
    expect(await miscCheck(misc("/bin/false"))).toMatchObject({ ok: false, reason: "exit 1" });
  });

  test("misc_dynamic: exit 2..255 sets weight = code - 2", async () => {
    expect(await miscCheck(misc("/bin/sh -c 'exit 7'", { miscDynamic: true }))).toMatchObject({
      ok: true,
      weight: 5,
    });
    expect(await miscCheck(misc("/bin/sh -c 'exit 2'", { miscDynamic: true }))).toMatchObject({
      ok: true,
      weight: 0,
    });
    expect(await miscCheck(misc("/bin/sh -c 'exit 1'", { miscDynamic: true }))).toMatchObject({ ok: false });
    // without misc_dynamic the same code is a failure
    expect(await miscCheck(misc("/bin/sh -c 'exit 7'"))).toMatchObject({ ok: false, reason: "exit 7" });
  });

  test("quoting and escapes are keepalived's", async () => {
    const r = await miscCheck(misc(`/bin/sh -c "test \\"$0\\" = 'a b'" "a b"`));
    expect(r).toMatchObject({ ok: true });
    const bad = await miscCheck(misc(`/bin/sh -c "test \\"$0\\" = 'a b'" a b`));
    expect(bad.ok).toBe(false);
  });

  test("runs as its own user, else script_user; an unknown account fails the check", async () => {
    const id = (u: string) => Bun.spawnSync(["id", "-u", u]).stdout.toString().trim();
    // only root can switch; another user runs scripts as itself
    const expectUid = (u: string) => (process.getuid?.() === 0 ? id(u) : String(process.getuid?.()));
    const uidIs = (uid: string) => `/bin/sh -c 'test "$(id -u)" = ${uid}'`;
    expect(
      await miscCheck(misc(uidIs(expectUid("nobody")), { runAs: { own: { user: "nobody" }, global: {} } })),
    ).toMatchObject({ ok: true });
    expect(
      await miscCheck(
        misc(uidIs(expectUid("daemon")), {
          runAs: { own: { user: "daemon" }, global: { scriptUser: "nobody" } },
        }),
      ),
    ).toMatchObject({ ok: true });
    expect(
      await miscCheck(
        misc(uidIs(expectUid("nobody")), { runAs: { own: {}, global: { scriptUser: "nobody" } } }),
      ),
    ).toMatchObject({ ok: true });
    expect(
      await miscCheck(misc("/bin/true", { runAs: { own: { user: "no-such-user-here" }, global: {} } })),
    ).toEqual({ ok: false, reason: "script user 'no-such-user-here' does not exist", latencyMs: 0 });
  });

  test("environment reaches the script", async () => {
    expect(
      (
        await miscCheck(
          misc(`/bin/sh -c 'test "$VIGIL_RS" = 192.0.2.10'`, { env: { VIGIL_RS: "192.0.2.10" } }),
        )
      ).ok,
    ).toBe(true);
  });

  test("misc_timeout kills the script and its children, and fails", async () => {
    const marker = `/tmp/vigil-misc-${process.pid}`;
    const r = await miscCheck(
      misc(`/bin/sh -c 'sleep 30 & echo $! > ${marker}; wait'`, { miscTimeoutMs: 300 }),
    );
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(r.latencyMs).toBeGreaterThanOrEqual(290);
    expect(r.latencyMs).toBeLessThan(2500);
    const child = Number((await Bun.file(marker).text()).trim());
    await Bun.sleep(50);
    // gone, or a zombie waiting for whoever adopted it (this container's init may not reap quickly)
    let state = "gone";
    try {
      state = (await Bun.file(`/proc/${child}/stat`).text()).split(") ")[1]?.[0] ?? "gone";
    } catch {}
    expect(["gone", "Z", "X"]).toContain(state);
    await Bun.file(marker).delete();
  });

  test("a script that ignores SIGTERM is killed after the grace period", async () => {
    const r = await miscCheck(misc(`/bin/sh -c 'trap "" TERM; sleep 30'`, { miscTimeoutMs: 200 }));
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(r.latencyMs).toBeGreaterThanOrEqual(2000);
    expect(r.latencyMs).toBeLessThan(4000);
  });

  test("a missing program fails", async () => {
    expect((await miscCheck(misc("/nonexistent/vigil-check"))).ok).toBe(false);
    expect((await miscCheck(misc(""))).ok).toBe(false);
  });
});
