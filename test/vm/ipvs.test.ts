// IPVS on a real kernel: boots the test VM once (Debian cloud kernel under TCG, see test/vm/run.sh)
// and runs the guest suite (test/vm/guest/ipvs-client.guest.ts) in a single bun process inside, with
// the ip_vs_ovf scheduler held back so that one service meets a missing module.
// If the VM cannot boot here, this FAILS with what to install: a skipped kernel test would look green.
import { expect, test } from "bun:test";
import { runInVm, vmUnavailableReason } from "./vm.ts";

test("IpvsClient + reconcile against the kernel, ipvsadm as the oracle (in the VM)", async () => {
  const reason = vmUnavailableReason();
  if (reason) throw new Error(reason);
  const r = await runInVm(
    [process.execPath, "test", "--timeout", "300000", "./test/vm/guest/ipvs-client.guest.ts"],
    { skipModules: ["ip_vs_ovf"], timeoutS: 600, env: { NO_COLOR: "1", FORCE_COLOR: "0" } },
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes
  const out = r.output.replace(/\x1b\[[0-9;]*m/g, "");
  const pass = Number(/^\s*(\d+) pass\s*$/m.exec(out)?.[1] ?? 0);
  const fail = Number(/^\s*(\d+) fail\s*$/m.exec(out)?.[1] ?? 0);
  console.log(`vm: guest suite ${pass} pass, ${fail} fail, exit ${r.code}, ${r.ms} ms launch to poweroff`);
  if (r.code !== 0 || fail > 0 || pass === 0) console.log(out);
  expect({ code: r.code, fail }).toEqual({ code: 0, fail: 0 });
  expect(pass).toBeGreaterThanOrEqual(8);
}, 700_000);
