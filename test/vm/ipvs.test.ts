// IPVS on a real kernel: boots the test VM once (Debian cloud kernel under TCG, see test/vm/run.sh)
// and runs the guest suite (test/vm/guest/ipvs-client.guest.ts) in a single bun process inside, with
// the ip_vs_ovf scheduler held back so that one service meets a missing module. Each guest test is
// reported here as a test of its own, so the suite's counts show what ran in the kernel.
// If the VM cannot boot here, this FAILS with what to install: a skipped kernel test would look green.
import { expect, test } from "bun:test";
import { parseGuestResults, runInVm, vmUnavailableReason } from "./vm.ts";

const EXPECTED_GUEST_TESTS = 10;

const unavailable = vmUnavailableReason();
if (unavailable) {
  test("IPVS test VM boots", () => {
    throw new Error(unavailable);
  });
} else {
  const r = await runInVm(
    [process.execPath, "test", "--timeout", "300000", "./test/vm/guest/ipvs-client.guest.ts"],
    { skipModules: ["ip_vs_ovf"], timeoutS: 600, env: { NO_COLOR: "1", FORCE_COLOR: "0" } },
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes
  const out = r.output.replace(/\x1b\[[0-9;]*m/g, "");
  const results = parseGuestResults(out);
  console.log(
    `vm: guest suite ${results.filter((x) => x.pass).length}/${results.length} pass, exit ${r.code}, ${r.ms} ms launch to poweroff`,
  );

  test("VM ran the guest suite to completion", () => {
    if (r.code !== 0 && results.every((x) => x.pass)) console.log(out);
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
