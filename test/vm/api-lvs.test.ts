// The API's acceptance where LVS is available: boots the test VM once and runs the guest scenario
// (test/vm/guest/api-lvs.guest.ts) in the director's network namespace: the real `vigil run` (the
// compiled dist/vigil of this worktree), a Node.js client written against the .proto that applies a
// config, sees the VIP on the kernel, reads state, watches a failover event and drains/undrains a real
// server with `ipvsadm -Ln` as the oracle, and `vigil ctl drain/undrain` with traffic through the VIP.
// If the VM cannot boot here, this FAILS with what to install: a skipped kernel test would look green.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { buildBinary } from "../../scripts/build.ts";
import { parseGuestResults, repoRoot, runInVm, vmUnavailableReason } from "./vm.ts";

const EXPECTED_GUEST_TESTS = 5;

const unavailable = vmUnavailableReason();
if (unavailable) {
  test("IPVS test VM boots (API acceptance)", () => {
    throw new Error(unavailable);
  });
} else {
  // compiled, as in production: from source each of vigil's processes would transpile under TCG
  const bin = join(repoRoot, "dist", "vigil");
  await buildBinary({ entry: "agent/main.ts", outfile: bin });
  const r = await runInVm(
    [
      "sh",
      "-c",
      `ip netns add lvsdir && exec ip netns exec lvsdir ${process.execPath} test --timeout 600000 ./test/vm/guest/api-lvs.guest.ts`,
    ],
    {
      timeoutS: 1200,
      memMb: 2048,
      smp: 2,
      env: { NO_COLOR: "1", FORCE_COLOR: "0", VIGIL_BIN: bin },
    },
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes
  const out = r.output.replace(/\x1b\[[0-9;]*m/g, "");
  const results = parseGuestResults(out);
  const timings = /api-lvs timings \(s\): (.*)/.exec(out)?.[1] ?? "{}";
  console.log(
    `vm: api-lvs ${results.filter((x) => x.pass).length}/${results.length} pass, exit ${r.code}, ${r.ms} ms launch to poweroff, steps ${timings}`,
  );

  test("VM ran the API scenario to completion", () => {
    if (r.code !== 0 || results.length !== EXPECTED_GUEST_TESTS) console.log(out);
    expect({ exit: r.code, guestTests: results.length }).toEqual({
      exit: 0,
      guestTests: EXPECTED_GUEST_TESTS,
    });
  });
  for (const g of results) {
    test(`in VM: ${g.name}`, () => {
      if (!g.pass) throw new Error(`failed inside the VM:\n${g.detail}`);
    });
  }
}
