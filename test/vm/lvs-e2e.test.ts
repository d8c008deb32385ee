// End-to-end load balancing on a real IPVS kernel: boots the test VM once and runs the guest scenario
// (test/vm/guest/lvs-e2e.guest.ts) inside the director's network namespace, in a single bun process
// that starts vigil, busybox httpd real servers and a busybox wget client in namespaces of their own.
// Each guest step is reported here as a test. If the VM cannot boot here, this FAILS with what to
// install: a skipped kernel test would look green.
import { runGuestSuite } from "./vm.ts";

await runGuestSuite({
  what: "load balancing e2e",
  tag: "lvs-e2e",
  completion: "VM ran the load balancing scenario to completion",
  guestFile: "./test/vm/guest/lvs-e2e.guest.ts",
  expected: 8,
  guestTimeoutMs: 300_000,
  director: true,
  binary: true,
  vm: { timeoutS: 900, memMb: 2048, smp: 2 },
});
