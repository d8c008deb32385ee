// End-to-end load balancing on a real IPVS kernel: boots the test VM once and runs the guest scenario
// (test/vm/guest/lvs-e2e.guest.ts) inside the director's network namespace, in a single bun process
// that starts vigil, busybox httpd real servers and a busybox wget client in namespaces of their own.
// Each guest step is reported here as a test. If the VM cannot boot here, this FAILS with what to
// install: a skipped kernel test would look green.
import { expect, test } from "bun:test";
import { buildBinary } from "../../scripts/build.ts";
import { parseGuestResults, runInVm, vmUnavailableReason } from "./vm.ts";

const EXPECTED_GUEST_TESTS = 8;

const unavailable = vmUnavailableReason();
if (unavailable) {
  test("IPVS test VM boots (load balancing e2e)", () => {
    throw new Error(unavailable);
  });
} else {
  // vigil runs compiled in the guest (as in production): from source, each of its three processes
  // transpiles the agent under TCG. Built here into dist/vigil, which the guest sees through the host's
  // / shared read-only, so the binary under test is always this tree's.
  const { outfile: bin } = await buildBinary({ entry: "agent/main.ts", outfile: "dist/vigil" });
  const r = await runInVm(
    [
      "sh",
      "-c",
      // the guest process lives in the director's namespace, so ipvsadm there sees vigil's table
      `ip netns add lvsdir && exec ip netns exec lvsdir ${process.execPath} test --timeout 300000 ./test/vm/guest/lvs-e2e.guest.ts`,
    ],
    {
      timeoutS: 900,
      memMb: 2048,
      smp: 2,
      env: {
        NO_COLOR: "1",
        FORCE_COLOR: "0",
        VIGIL_BIN: bin,
      },
    },
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes
  const out = r.output.replace(/\x1b\[[0-9;]*m/g, "");
  const results = parseGuestResults(out);
  const timings = /lvs-e2e timings \(s\): (.*)/.exec(out)?.[1] ?? "{}";
  console.log(
    `vm: lvs e2e ${results.filter((x) => x.pass).length}/${results.length} pass, exit ${r.code}, ${r.ms} ms launch to poweroff, steps ${timings}`,
  );

  test("VM ran the load balancing scenario to completion", () => {
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
