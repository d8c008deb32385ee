// The API's acceptance where LVS is available: boots the test VM once and runs the guest scenario
// (test/vm/guest/api-lvs.guest.ts) in the director's network namespace: the real `vigil run` (the
// compiled dist/vigil of this worktree), a Node.js client written against the .proto that applies a
// config, sees the VIP on the kernel, reads state, watches a failover event and drains/undrains a real
// server with `ipvsadm -Ln` as the oracle, and `vigil ctl drain/undrain` with traffic through the VIP.
// If the VM cannot boot here, this FAILS with what to install: a skipped kernel test would look green.
import { runGuestSuite } from "./vm.ts";

await runGuestSuite({
  what: "API acceptance",
  tag: "api-lvs",
  completion: "VM ran the API scenario to completion",
  guestFile: "./test/vm/guest/api-lvs.guest.ts",
  expected: 5,
  guestTimeoutMs: 600_000,
  director: true,
  binary: true,
  vm: { timeoutS: 1200, memMb: 2048, smp: 2 },
});
