// IPVS on a real kernel: boots the test VM once (Debian cloud kernel under TCG, see test/vm/run.sh)
// and runs the guest suite (test/vm/guest/ipvs-client.guest.ts) in a single bun process inside, with
// the ip_vs_ovf scheduler held back so that one service meets a missing module. Each guest test is
// reported here as a test of its own, so the suite's counts show what ran in the kernel.
// If the VM cannot boot here, this FAILS with what to install: a skipped kernel test would look green.
import { runGuestSuite } from "./vm.ts";

await runGuestSuite({
  what: "IPVS client",
  tag: "ipvs-client",
  completion: "VM ran the guest suite to completion",
  guestFile: "./test/vm/guest/ipvs-client.guest.ts",
  expected: 10,
  guestTimeoutMs: 300_000,
  vm: { skipModules: ["ip_vs_ovf"], timeoutS: 600 },
});
