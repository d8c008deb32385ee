// The table of broken configs. Each entry is a keepalived.conf with the line vigil must name marked
// `#<` (a comment to keepalived), the text vigil's message contains, and what keepalived 2.2.7's
// `--config-test` does with the same file, checked for real when keepalived can run here:
//   same     keepalived rejects it (exit != 0) naming the same line
//   rejects  keepalived rejects it (exit != 0) with the message `kaMsg`, without a line (most
//            checks run after reading the file) or, where `why` says so, at another line
//   accepts  keepalived exits 0: vigil is stricter on purpose, `why` says why
//   security keepalived exits 6 (script security only); vigil warns
// `warn: true` marks the few entries where vigil only warns, each with its reason.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadConfigFile } from "../../agent/config/load.ts";
import { FAKE_ENV, KeepalivedOracle } from "./config-oracle.ts";

type Ka = "same" | "rejects" | "accepts" | "security";

interface Case {
  name: string;
  /** the config; several files as { path: text } with the top file first */
  conf: string | Record<string, string>;
  /** piece of vigil's message at the marked line */
  msg: string;
  ka: Ka;
  /** piece of keepalived's message (for rejects, and to tie `same` to the right complaint) */
  kaMsg?: string;
  /** vigil warns instead of rejecting */
  warn?: true;
  /** why vigil differs from keepalived, where it does */
  why?: string;
}

// keepalived needs script security on for scripts to pass its test; the line numbers below count it
const SEC = "global_defs {\n  enable_script_security\n  script_user root\n}\n";

/** a minimal valid instance body around `extra` lines */
function inst(extra: string, head = "vrrp_instance VI_1 {", vip = "192.0.2.10/24"): string {
  return `${head}\n  interface eth0\n  virtual_router_id 30\n${extra}  virtual_ipaddress {\n    ${vip}\n  }\n}\n`;
}

/** a valid instance, then a virtual server with `head` lines (scheduler, method, protocol) and `body` */
function vs(
  body: string,
  head = "  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n",
  svc = "192.0.2.10 80",
  rs = "  real_server 192.0.2.20 80 {\n  }\n",
): string {
  // a marker on the service names the `virtual_server` line (the comment goes after the `{`)
  const mark = svc.endsWith(" #<") ? " #<" : "";
  return `${inst("")}virtual_server ${svc.replace(/ #<$/, "")} {${mark}\n${head}${body}${rs}}\n`;
}

const CASES: Case[] = [
  // ---- reading the file ----
  {
    name: "unknown top-level keyword",
    conf: "vrrp_instanc VI_1 { #<\n  interface eth0\n}\n",
    msg: "unknown keyword 'vrrp_instanc'",
    ka: "same",
    kaMsg: "Unknown keyword 'vrrp_instanc'",
  },
  {
    name: "unknown keyword in vrrp_instance",
    conf: inst("  priorty 100 #<\n"),
    msg: "unknown keyword 'priorty'",
    ka: "same",
    kaMsg: "Unknown keyword 'priorty'",
  },
  {
    name: "unknown keyword in global_defs",
    conf: `global_defs {\n  router_id a\n  foo_bar 1 #<\n}\n${inst("")}`,
    msg: "unknown keyword 'foo_bar'",
    ka: "same",
    kaMsg: "Unknown keyword 'foo_bar'",
  },
  {
    name: "unknown keyword with its own block",
    conf: inst("  foo_block { #<\n    bar 1\n  }\n"),
    msg: "unknown keyword 'foo_block'",
    ka: "same",
  },
  {
    name: "missing '{' after vrrp_instance (named where '{' was expected)",
    conf: "vrrp_instance VI_1\n  interface eth0 #<\n  virtual_router_id 30\n}\n",
    msg: "missing '{'",
    ka: "same",
    kaMsg: "Missing '{'",
  },
  {
    name: "missing '}' at end of file (named at the open block)",
    conf: "vrrp_instance VI_1 { #<\n  interface eth0\n  virtual_router_id 30\n  virtual_ipaddress {\n    192.0.2.10\n  }\n",
    msg: "missing '}'",
    ka: "rejects",
    kaMsg: "missing '}'s",
  },
  {
    name: "extra '}'",
    conf: `${inst("")}} #<\n`,
    msg: "unexpected '}'",
    ka: "same",
    kaMsg: "Extra '}'",
  },
  {
    name: "unterminated quote",
    conf: inst('  notify_master "/bin/true #<\n'),
    msg: "quote",
    ka: "same",
    kaMsg: "quote",
  },
  {
    name: "include of a missing file",
    conf: `${inst("")}include /nonexistent/vigil-test.conf #<\n`,
    msg: "no such file",
    ka: "accepts",
    why: "keepalived only logs 'Config files missing' and runs without that part of the config",
  },
  {
    name: "include of a missing directory",
    conf: `${inst("")}include no-such-dir/*.conf #<\n`,
    msg: "directory does not exist",
    ka: "accepts",
    why: "as above: a typo in an include path silently drops configuration",
  },
  {
    name: "include loop",
    conf: {
      "keepalived.conf": `${inst("")}include again.conf\n`,
      "again.conf": "include keepalived.conf #<\n",
    },
    msg: "include loop",
    ka: "rejects",
    kaMsg: "Too many open files",
    why: "keepalived recurses until it runs out of file descriptors and names the first include line",
  },
  {
    name: "error inside an included file names that file",
    conf: { "keepalived.conf": "include part.conf\n", "part.conf": inst("  priority 0 #<\n") },
    msg: "outside the range [1, 255]",
    ka: "same",
  },
  {
    name: "conditional configuration line",
    conf: inst("@node1 priority 150 #<\n"),
    msg: "conditional lines",
    ka: "accepts",
    why: "keepalived's @SYSTEM_ID lines are not implemented; silently skipping them would change the config",
  },
  {
    name: "parameter definition",
    conf: `$PRIO=150 #<\n${inst("")}`,
    msg: "parameter definitions",
    ka: "accepts",
    why: "keepalived's $NAME=value substitution is not implemented",
  },

  // ---- values ----
  { name: "virtual_router_id 0", conf: inst("  virtual_router_id 0 #<\n"), msg: "[1, 255]", ka: "same" },
  { name: "virtual_router_id 256", conf: inst("  virtual_router_id 256 #<\n"), msg: "[1, 255]", ka: "same" },
  {
    name: "virtual_router_id not a number",
    conf: inst("  virtual_router_id abc #<\n"),
    msg: "invalid number",
    ka: "same",
  },
  { name: "priority 0", conf: inst("  priority 0 #<\n"), msg: "[1, 255]", ka: "same" },
  { name: "priority 256", conf: inst("  priority 256 #<\n"), msg: "[1, 255]", ka: "same" },
  { name: "priority negative", conf: inst("  priority -5 #<\n"), msg: "negative", ka: "same" },
  {
    name: "priority without value",
    conf: inst("  priority #<\n"),
    msg: "missing",
    ka: "same",
    kaMsg: "missing a parameter",
  },
  { name: "advert_int 0", conf: inst("  advert_int 0 #<\n"), msg: "outside the range", ka: "same" },
  {
    name: "advert_int with more than 6 decimals",
    conf: inst("  advert_int 1.0000001 #<\n"),
    msg: "decimal places",
    ka: "same",
  },
  {
    name: "advert_int fractional with VRRPv2",
    conf: inst("  advert_int 0.5 #<\n"),
    msg: "whole number of seconds",
    ka: "rejects",
    kaMsg: "must be an integer",
  },
  {
    name: "advert_int fractional with global vrrp_version 2 explicit",
    conf: `global_defs {\n  vrrp_version 2\n}\n${inst("  advert_int 2.5 #<\n")}`,
    msg: "whole number of seconds",
    ka: "rejects",
    kaMsg: "must be an integer",
  },
  {
    name: "advert_int above 40.95 with VRRPv3",
    conf: inst("  version 3\n  advert_int 41 #<\n"),
    msg: "at most 40.95",
    ka: "rejects",
    kaMsg: "out of range",
  },
  {
    name: "advert_int not in centiseconds with VRRPv3",
    conf: `global_defs {\n  vrrp_version 3\n}\n${inst("  advert_int 0.015 #<\n")}`,
    msg: "units of 10ms",
    ka: "rejects",
    kaMsg: "units of 10ms",
  },
  { name: "preempt_delay 1001", conf: inst("  preempt_delay 1001 #<\n"), msg: "[0, 1000]", ka: "same" },
  {
    name: "preempt_delay with nopreempt",
    conf: inst("  nopreempt\n  preempt_delay 10 #<\n"),
    msg: "incompatible with nopreempt",
    ka: "rejects",
    kaMsg: "preempt_delay is incompatible with nopreempt",
  },
  {
    name: "preempt_delay with state MASTER",
    conf: inst("  state MASTER\n  priority 100\n  preempt_delay 10 #<\n"),
    msg: "preempt_delay does not work with initial state MASTER",
    ka: "rejects",
    kaMsg: "preempt delay will not work",
  },
  {
    name: "nopreempt with priority 255",
    conf: inst("  priority 255\n  nopreempt #<\n"),
    msg: "nopreempt is incompatible with priority 255",
    ka: "rejects",
    kaMsg: "nopreempt is incompatible with priority 255",
  },
  {
    name: "nopreempt with state MASTER (state MASTER alone means priority 255)",
    conf: inst("  state MASTER\n  nopreempt #<\n"),
    msg: "nopreempt is incompatible with priority 255",
    ka: "rejects",
    kaMsg: "nopreempt is incompatible",
  },
  {
    name: "nopreempt with state MASTER and a lower priority",
    conf: inst("  state MASTER\n  priority 100\n  nopreempt #<\n"),
    msg: "nopreempt does not work with initial state MASTER",
    ka: "rejects",
    kaMsg: "nopreempt will not work",
  },
  { name: "unknown state", conf: inst("  state BAKUP #<\n"), msg: "unknown state 'BAKUP'", ka: "same" },
  {
    name: "state MASTER then BACKUP",
    conf: inst("  state MASTER\n  state BACKUP #<\n"),
    msg: "already set to MASTER",
    ka: "same",
  },

  // ---- authentication ----
  {
    name: "auth_pass longer than 8 characters",
    conf: inst("  authentication {\n    auth_type PASS\n    auth_pass 123456789 #<\n  }\n"),
    msg: "longer than 8 characters",
    ka: "same",
    kaMsg: "Truncating auth_pass",
  },
  {
    name: "unknown auth_type",
    conf: inst("  authentication {\n    auth_type MD5 #<\n    auth_pass secret\n  }\n"),
    msg: "unknown authentication type",
    ka: "same",
  },
  {
    name: "PASS authentication with VRRPv3",
    conf: inst("  version 3\n  authentication { #<\n    auth_type PASS\n    auth_pass secret\n  }\n"),
    msg: "version 3 does not support authentication",
    ka: "rejects",
    kaMsg: "version 3 does not support authentication",
  },
  {
    name: "auth_type without auth_pass",
    conf: inst("  authentication { #<\n    auth_type PASS\n  }\n"),
    msg: "no password",
    ka: "rejects",
    kaMsg: "no password given",
  },
  {
    name: "AH authentication with IPv6",
    conf: inst(
      "  authentication { #<\n    auth_type AH\n    auth_pass secret\n  }\n",
      undefined,
      "2001:db8::10/64",
    ),
    msg: "authentication",
    ka: "rejects",
    kaMsg: "authentication",
  },
  {
    name: "AH authentication with initial state MASTER",
    conf: inst(
      "  state MASTER #<\n  priority 100\n  authentication {\n    auth_type AH\n    auth_pass secret\n  }\n",
    ),
    msg: "incompatible with AH",
    ka: "rejects",
    kaMsg: "incompatible with AH",
  },
  {
    name: "AH authentication (not implemented by vigil)",
    conf: inst("  authentication { #<\n    auth_type AH\n    auth_pass secret\n  }\n"),
    msg: "AH is not supported by vigil",
    ka: "accepts",
    why: "vigil cannot send or verify IPsec AH adverts; running without them would split-brain against AH peers",
  },

  // ---- interfaces ----
  {
    name: "interface that does not exist",
    conf: "vrrp_instance VI_1 {\n  interface eth9 #<\n  virtual_router_id 30\n  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n",
    msg: "interface eth9 does not exist",
    ka: "same",
    kaMsg: "doesn't exist",
  },
  {
    name: "loopback interface",
    conf: "vrrp_instance VI_1 {\n  interface lo #<\n  virtual_router_id 30\n  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n",
    msg: "loopback",
    ka: "same",
    kaMsg: "loopback",
  },
  {
    name: "interface name too long",
    conf: "vrrp_instance VI_1 {\n  interface abcdefghijklmnop #<\n  virtual_router_id 30\n  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n",
    msg: "too long",
    ka: "same",
    kaMsg: "too long",
  },
  {
    name: "no interface",
    conf: "vrrp_instance VI_1 { #<\n  virtual_router_id 30\n  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n",
    msg: "no interface set",
    ka: "rejects",
    kaMsg: "Unknown interface",
  },
  {
    name: "no virtual_router_id",
    conf: "vrrp_instance VI_1 { #<\n  interface eth0\n  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n",
    msg: "virtual router id must be set",
    ka: "rejects",
    kaMsg: "virtual router id must be set",
  },
  {
    name: "vrrp_instance without a name",
    conf: "vrrp_instance { #<\n  interface eth0\n}\n",
    msg: "exactly one name",
    ka: "same",
  },

  // ---- virtual addresses ----
  {
    name: "VIP not an address",
    conf: inst("", undefined, "192.0.2.300 #<"),
    msg: "invalid IP address",
    ka: "same",
  },
  { name: "VIP prefix too long", conf: inst("", undefined, "192.0.2.10/33 #<"), msg: "[0, 32]", ka: "same" },
  {
    name: "VIP unknown option",
    conf: inst("", undefined, "192.0.2.10 foo #<"),
    msg: "unknown option 'foo'",
    ka: "same",
  },
  {
    name: "VIP option without its value",
    conf: inst("", undefined, "192.0.2.10 dev #<"),
    msg: "no dev parameter",
    ka: "same",
  },
  {
    name: "VIP on an interface that does not exist",
    conf: inst("", undefined, "192.0.2.10 dev eth9 #<"),
    msg: "interface eth9 does not exist",
    ka: "same",
    kaMsg: "doesn't exist",
  },
  {
    name: "IPv6 VIP with a label",
    conf: inst("", undefined, "2001:db8::10/64 label eth0:1 #<"),
    msg: "cannot specify label for IPv6",
    ka: "same",
    kaMsg: "label",
  },
  {
    name: "IPv6 VIP with a scope",
    conf: inst("", undefined, "2001:db8::10/64 scope link #<"),
    msg: "cannot specify scope for IPv6",
    ka: "same",
    kaMsg: "scope",
  },
  {
    name: "IPv6 VIP with a broadcast address",
    conf: inst("", undefined, "2001:db8::10/64 brd + #<"),
    msg: "broadcast",
    ka: "same",
    kaMsg: "broadcast",
  },
  {
    name: "brd + on a /32",
    conf: inst("", undefined, "192.0.2.10 brd + #<"),
    msg: "too long for a broadcast",
    ka: "same",
  },
  {
    name: "label longer than 15 characters",
    conf: inst("", undefined, "192.0.2.10 label eth0:abcdefghijk #<"),
    msg: "longer than 15",
    ka: "same",
  },
  {
    name: "invalid scope",
    conf: inst("", undefined, "192.0.2.10 scope galaxy #<"),
    msg: "invalid scope",
    ka: "same",
  },
  {
    name: "VIP option keepalived has and vigil not",
    conf: inst("", undefined, "192.0.2.10 no_track #<"),
    msg: "not supported by vigil",
    ka: "accepts",
    why: "no_track changes which interfaces the instance follows; vigil does not implement it",
  },
  {
    name: "VIPs of two families in one instance",
    conf: inst("", undefined, "192.0.2.10\n    2001:db8::10 #<"),
    msg: "does not match the instance",
    ka: "same",
    kaMsg: "address family must match",
  },
  {
    name: "no VIP",
    conf: "vrrp_instance VI_1 { #<\n  interface eth0\n  virtual_router_id 30\n}\n",
    msg: "no VIP",
    ka: "rejects",
    kaMsg: "No VIP specified",
  },

  // ---- unicast ----
  {
    name: "unicast_src_ip of the other family",
    conf: "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 30\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n  unicast_src_ip 2001:db8::1 #<\n  unicast_peer {\n    192.0.2.2\n  }\n}\n",
    msg: "is not IPv4",
    ka: "same",
    kaMsg: "MUST be of the same family",
  },
  {
    name: "unicast peer of the other family",
    conf: "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 30\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n  unicast_peer {\n    2001:db8::2 #<\n  }\n}\n",
    msg: "is not IPv4",
    ka: "same",
    kaMsg: "MUST be of the same family",
  },
  {
    name: "unicast peer min_ttl above max_ttl",
    conf: inst("  unicast_peer {\n    192.0.2.2 min_ttl 5 max_ttl 3 #<\n  }\n"),
    msg: "min_ttl 5 > max_ttl 3",
    ka: "same",
  },
  {
    name: "unicast peer unknown option",
    conf: inst("  unicast_peer {\n    192.0.2.2 ttl 5 #<\n  }\n"),
    msg: "unknown option 'ttl'",
    ka: "same",
  },
  {
    name: "unicast_src_ip without peers",
    conf: inst("  unicast_src_ip 192.0.2.1 #<\n"),
    msg: "without any unicast_peer",
    ka: "rejects",
    kaMsg: "without any unicast peers",
  },

  // ---- versions and families ----
  {
    name: "version 2 after IPv6 VIPs",
    conf: "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 30\n  virtual_ipaddress {\n    fe80::10/64\n  }\n  version 2 #<\n}\n",
    msg: "version 2 does not support IPv6",
    ka: "same",
    kaMsg: "conflicts",
  },
  {
    name: "version 2 before IPv6 VIPs",
    conf: inst("  version 2 #<\n", undefined, "fe80::10/64"),
    msg: "version 2 does not support IPv6",
    ka: "accepts",
    why: "keepalived would send VRRPv2 over IPv6, which no RFC defines; the order of two lines should not decide that",
  },
  { name: "version 4", conf: inst("  version 4 #<\n"), msg: "[2, 3]", ka: "same" },
  {
    name: "global vrrp_version 4",
    conf: `global_defs {\n  vrrp_version 4 #<\n}\n${inst("")}`,
    msg: "[2, 3]",
    ka: "same",
  },

  // ---- names and references ----
  {
    name: "duplicate instance name",
    conf: `${inst("")}${inst("", "vrrp_instance VI_1 { #<", "192.0.2.11/24").replace("virtual_router_id 30", "virtual_router_id 31")}`,
    msg: "already defined",
    ka: "same",
    kaMsg: "already defined",
  },
  {
    name: "duplicate VRID on one interface and family",
    conf: `${inst("")}${inst("", "vrrp_instance VI_2 {", "192.0.2.11/24").replace("virtual_router_id 30", "virtual_router_id 30 #<")}`,
    msg: "VRID 30 is already used by VI_1",
    ka: "rejects",
    kaMsg: "both use VRID 30",
  },
  {
    name: "duplicate VRID between unicast instances with a common peer",
    conf:
      inst("  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }\n") +
      inst(
        "  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }\n",
        "vrrp_instance VI_2 {",
        "192.0.2.11/24",
      ).replace("virtual_router_id 30", "virtual_router_id 30 #<"),
    msg: "VRID 30 is already used by VI_1",
    ka: "rejects",
    kaMsg: "duplicate VRID",
  },
  {
    name: "track_script naming no vrrp_script",
    conf: SEC + inst("  track_script {\n    chk_nope #<\n  }\n"),
    msg: "chk_nope not found",
    ka: "same",
    kaMsg: "not found",
  },
  {
    name: "track_script before its vrrp_script",
    conf: `${SEC}${inst("  track_script {\n    chk #<\n  }\n")}vrrp_script chk {\n  script /bin/true\n}\n`,
    msg: "defined after its first use",
    ka: "same",
    kaMsg: "not found",
  },
  {
    name: "lower_prio_no_advert false in strict mode",
    conf: `global_defs {\n  vrrp_strict\n}\n${inst("  lower_prio_no_advert false #<\n")}`,
    msg: "requires lower_prio_no_advert",
    ka: "rejects",
    kaMsg: "Strict mode requires no lower priority advert",
  },
  {
    name: "higher_prio_send_advert in strict mode",
    conf: `global_defs {\n  vrrp_strict\n}\n${inst("  higher_prio_send_advert #<\n")}`,
    msg: "higher_prio_send_advert to be off",
    ka: "rejects",
    kaMsg: "strict mode requires higher_prio_send_advert",
  },
  {
    name: "lower_prio_no_advert with a value that is no boolean",
    conf: inst("  lower_prio_no_advert maybe #<\n"),
    msg: "expected true/false",
    ka: "same",
    kaMsg: "invalid lower_prio_no_advert",
  },
  {
    name: "vrrp_higher_prio_send_advert with a value that is no boolean",
    conf: `global_defs {\n  vrrp_higher_prio_send_advert sometimes #<\n}\n${inst("")}`,
    msg: "expected true/false",
    ka: "same",
    kaMsg: "Invalid value for vrrp_higher_prio_send_advert",
  },
  {
    name: "notify_fifo twice",
    conf: `global_defs {\n  notify_fifo /tmp/a.fifo\n  notify_fifo /tmp/b.fifo #<\n}\n${inst("")}`,
    msg: "already specified",
    ka: "same",
    kaMsg: "notify_fifo already specified",
  },
  {
    name: "notify_fifo without a name",
    conf: `global_defs {\n  vrrp_notify_fifo #<\n}\n${inst("")}`,
    msg: "no FIFO name",
    ka: "same",
    kaMsg: "No vrrp_notify_fifo name specified",
  },
  {
    name: "notify_fifo owned by a user that does not exist",
    conf: `global_defs {\n  notify_fifo /tmp/a.fifo nosuchuser #<\n}\n${inst("")}`,
    msg: "user 'nosuchuser' does not exist",
    ka: "accepts",
    why: 'keepalived only logs that it ignores the FIFO ("Invalid user/group"), and runs without it',
  },
  {
    name: "notify_priority_changes with a value that is no boolean",
    conf: inst("  notify_priority_changes often #<\n"),
    msg: "expected true/false",
    ka: "same",
    kaMsg: "Invalid value 'often' for notify_priority_changes",
  },
  {
    name: "down_timer_adverts of 0",
    conf: inst("  down_timer_adverts 0 #<\n"),
    msg: "down_timer_adverts",
    ka: "same",
    kaMsg: "Invalid down_timer_adverts [1:100]",
  },
  {
    name: "vrrp_down_timer_adverts above 100",
    conf: `global_defs {\n  vrrp_down_timer_adverts 101 #<\n}\n${inst("")}`,
    msg: "[1, 100]",
    ka: "same",
    kaMsg: "Invalid vrrp_down_timer_adverts [1:100]",
  },
  {
    name: "down_timer_adverts in strict mode",
    conf: `global_defs {\n  vrrp_strict\n}\n${inst("  down_timer_adverts 2 #<\n")}`,
    msg: "incompatible with strict mode",
    ka: "rejects",
    kaMsg: "down_timer_adverts is incompatible with strict mode",
  },
  {
    name: "vrrp_mcast_group4 that is not multicast",
    conf: `global_defs {\n  vrrp_mcast_group4 192.0.2.9 #<\n}\n${inst("")}`,
    msg: "is not multicast",
    ka: "same",
    kaMsg: "is not multicast",
  },
  {
    name: "vrrp_mcast_group6 given an IPv4 address",
    conf: `global_defs {\n  vrrp_mcast_group6 224.0.0.19 #<\n}\n${inst("")}`,
    msg: "is not IPv6",
    ka: "same",
    kaMsg: "is not IPv6",
  },
  {
    name: "mcast_dst_ip that is not multicast",
    conf: inst("  mcast_dst_ip 192.0.2.9 #<\n"),
    msg: "not a multicast address",
    ka: "same",
    kaMsg: "not multicast",
  },
  {
    name: "notify_deleted twice",
    conf: inst("  notify_deleted\n  notify_deleted /bin/true #<\n"),
    msg: "notify_deleted already specified",
    ka: "same",
    kaMsg: "notify_deleted already specified",
  },
  {
    name: "vrrp_startup_delay of 0",
    conf: `global_defs {\n  vrrp_startup_delay 0 #<\n}\n${inst("")}`,
    msg: "vrrp_startup_delay",
    ka: "same",
    kaMsg: "is invalid",
  },
  {
    name: "vrrp_startup_delay not a number",
    conf: `global_defs {\n  vrrp_startup_delay soon #<\n}\n${inst("")}`,
    msg: "vrrp_startup_delay",
    ka: "same",
    kaMsg: "is invalid",
  },
  {
    name: "track_file naming no track_file block",
    conf: inst("  track_file {\n    nope #<\n  }\n"),
    msg: "nope not found",
    ka: "same",
    kaMsg: "not found",
  },
  {
    name: "track_file before its block",
    conf: `${inst("  track_file {\n    tf #<\n  }\n")}track_file tf {\n  file /tmp/vigil-errors-tf\n}\n`,
    msg: "defined after its first use",
    ka: "same",
    kaMsg: "not found",
  },
  {
    name: "track_file weight out of range",
    conf: `track_file tf {\n  file /tmp/vigil-errors-tf\n}\n${inst("  track_file {\n    tf weight 300 #<\n  }\n")}`,
    msg: "[-254, 254]",
    ka: "same",
  },
  {
    name: "track_file with an unknown option",
    conf: `track_file tf {\n  file /tmp/vigil-errors-tf\n}\n${inst("  track_file {\n    tf wieght 3 #<\n  }\n")}`,
    msg: "unknown option 'wieght'",
    ka: "same",
  },
  {
    name: "track_file block without a file",
    conf: `track_file tf {\n  weight 2\n} #<\n${inst("")}`,
    msg: "no file set",
    ka: "rejects",
    kaMsg: "No file set",
  },
  {
    name: "track_file init_file with an unknown option",
    conf: `track_file tf {\n  file /tmp/vigil-errors-tf\n  init_file 2 overwrit #<\n}\n${inst("  track_file {\n    tf\n  }\n")}`,
    msg: "unknown option 'overwrit'",
    ka: "same",
    kaMsg: "Unknown track file init option",
  },
  {
    name: "weighted track_file of a sync group member",
    conf:
      `track_file tf {\n  file /tmp/vigil-errors-tf\n}\n` +
      inst("  track_file {\n    tf weight 10 #<\n  }\n") +
      inst("", "vrrp_instance VI_2 {", "192.0.2.11/24").replace(
        "virtual_router_id 30",
        "virtual_router_id 31",
      ) +
      "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\n",
    msg: "sync group",
    ka: "rejects",
    kaMsg: "due to SYNC group",
  },
  {
    name: "track_file in a directory that does not exist",
    conf: `track_file tf {\n  file /nonexistent-vigil-dir/flag #<\n}\n${inst("  track_file {\n    tf\n  }\n")}`,
    msg: "directory /nonexistent-vigil-dir does not exist",
    ka: "accepts",
    why: 'keepalived drops such a track file when it starts ("does not exist - removing"), after its config test',
  },
  {
    name: "track_interface that does not exist",
    conf: inst("  track_interface {\n    eth9 #<\n  }\n"),
    msg: "interface eth9 does not exist",
    ka: "same",
    kaMsg: "doesn't exist",
  },
  {
    name: "track_interface weight out of range",
    conf: inst("  track_interface {\n    eth1 weight 300 #<\n  }\n"),
    msg: "[-253, 253]",
    ka: "same",
  },
  {
    name: "track_interface weight 254 (keepalived reads it, then refuses it)",
    conf: inst("  track_interface {\n    eth1 weight 254 #<\n  }\n"),
    msg: "[-253, 253]",
    ka: "same",
    kaMsg: "cannot be +/-254",
  },
  {
    name: "track_interface twice",
    conf: inst("  track_interface {\n    eth1\n    eth1 #<\n  }\n"),
    msg: "duplicate track_interface",
    ka: "same",
    kaMsg: "duplicate",
  },
  {
    name: "track_interface of the instance's own interface",
    conf: inst("  track_interface {\n    eth0 #<\n  }\n"),
    msg: "own interface",
    ka: "rejects",
    kaMsg: "since own interface",
  },
  {
    name: "weighted track_script on an address owner",
    conf: `${SEC}vrrp_script chk {\n  script /bin/true\n}\n${inst("  priority 255\n  track_script {\n    chk weight 10 #<\n  }\n")}`,
    msg: "address owner",
    ka: "rejects",
    kaMsg: "with weights due to address_owner",
  },
  {
    name: "weighted track_interface of a sync group member",
    conf:
      inst("  track_interface {\n    eth1 weight 10 #<\n  }\n") +
      inst("", "vrrp_instance VI_2 {", "192.0.2.11/24").replace(
        "virtual_router_id 30",
        "virtual_router_id 31",
      ) +
      "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\n",
    msg: "sync group",
    ka: "rejects",
    kaMsg: "due to SYNC group",
  },
  {
    name: "sync group naming an unknown instance",
    conf: `${inst("")}${inst("", "vrrp_instance VI_2 {", "192.0.2.11/24").replace("virtual_router_id 30", "virtual_router_id 31")}vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n    VI_X #<\n  }\n}\n`,
    msg: "VI_X does not exist",
    ka: "rejects",
    kaMsg: "VI_X specified in sync group G doesn't exist",
  },
  {
    name: "instance in two sync groups",
    conf: `${inst("")}${inst("", "vrrp_instance VI_2 {", "192.0.2.11/24").replace("virtual_router_id 30", "virtual_router_id 31")}${inst("", "vrrp_instance VI_3 {", "192.0.2.12/24").replace("virtual_router_id 30", "virtual_router_id 32")}vrrp_sync_group G1 {\n  group {\n    VI_1\n    VI_2\n  }\n}\nvrrp_sync_group G2 {\n  group {\n    VI_3\n    VI_1 #<\n  }\n}\n`,
    msg: "already in sync group G1",
    ka: "rejects",
    kaMsg: "more than one sync group",
  },
  {
    name: "sync group with one instance",
    conf: `${inst("")}vrrp_sync_group G { #<\n  group {\n    VI_1\n  }\n}\n`,
    msg: "only one instance",
    ka: "rejects",
    kaMsg: "only 1 virtual router",
  },
  {
    name: "sync group mixing an address owner and a backup",
    conf: `${inst("  state MASTER\n  priority 255\n")}${inst("  state BACKUP\n", "vrrp_instance VI_2 {", "192.0.2.11/24").replace("virtual_router_id 30", "virtual_router_id 31")}vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2 #<\n  }\n}\n`,
    msg: "address owners and some are not",
    ka: "rejects",
    kaMsg: "address owner and some not",
  },
  {
    name: "duplicate sync group",
    conf: `${inst("")}${inst("", "vrrp_instance VI_2 {", "192.0.2.11/24").replace("virtual_router_id 30", "virtual_router_id 31")}vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\nvrrp_sync_group G { #<\n  group {\n    VI_1\n  }\n}\n`,
    msg: "already defined",
    ka: "same",
    kaMsg: "already defined",
  },

  // ---- scripts ----
  {
    name: "vrrp_script without script (keepalived names the closing brace)",
    conf: `${SEC}vrrp_script chk {\n  interval 2\n} #<\n${inst("")}`,
    msg: "no script set",
    ka: "same",
    kaMsg: "No script set",
  },
  {
    name: "vrrp_script interval 0",
    conf: `${SEC}vrrp_script chk {\n  script /bin/true\n  interval 0 #<\n}\n${inst("")}`,
    msg: "greater than 0",
    ka: "same",
  },
  {
    name: "vrrp_script weight 300",
    conf: `${SEC}vrrp_script chk {\n  script /bin/true\n  weight 300 #<\n}\n${inst("")}`,
    msg: "[-253, 253]",
    ka: "same",
  },
  {
    name: "vrrp_script unknown weight option",
    conf: `${SEC}vrrp_script chk {\n  script /bin/true\n  weight 10 backwards #<\n}\n${inst("")}`,
    msg: "unknown option 'backwards'",
    ka: "same",
  },
  {
    name: "vrrp_script rise 0",
    conf: `${SEC}vrrp_script chk {\n  script /bin/true\n  rise 0 #<\n}\n${inst("")}`,
    msg: "[1, 2147483647]",
    ka: "same",
  },
  {
    name: "vrrp_script user that does not exist",
    conf: `${SEC}vrrp_script chk {\n  script /bin/true\n  user no_such_user_vigil #<\n}\n${inst("")}`,
    msg: "does not exist",
    ka: "same",
    kaMsg: "Unable to set uid/gid",
  },
  {
    name: "vrrp_script whose program does not exist",
    conf: `${SEC}vrrp_script chk {\n  script "/nonexistent/check.sh arg" #<\n}\n${inst("  track_script {\n    chk\n  }\n")}`,
    msg: "does not exist or is not executable",
    ka: "rejects",
    kaMsg: "Disabling track script chk since not found",
  },
  {
    name: "script with unquoted arguments",
    conf: `${SEC}vrrp_script chk {\n  script /bin/test -f /etc/passwd #<\n}\n${inst("")}`,
    msg: "quote the command",
    ka: "accepts",
    why: "keepalived silently drops the words after the command: the check would run without its arguments",
  },
  {
    name: "notify_master given twice",
    conf: inst('  notify_master "/bin/true a"\n  notify_master "/bin/true b" #<\n'),
    msg: "already specified",
    ka: "same",
    kaMsg: "already specified",
  },
  {
    name: "script_user that does not exist",
    conf: `global_defs {\n  script_user no_such_user_vigil #<\n}\n${inst("")}`,
    msg: "does not exist",
    ka: "same",
    kaMsg: "Error setting global script uid/gid",
  },
  {
    name: "scripts without enable_script_security",
    conf: `vrrp_script chk { #<\n  script /bin/true\n}\n${inst("  track_script {\n    chk\n  }\n")}`,
    msg: "enable_script_security is not set",
    ka: "security",
    warn: true,
    why: "keepalived still runs the scripts; its test only exits with the 'security' status 6",
  },
  {
    name: "script security without a user to run scripts as",
    conf: `global_defs {\n  enable_script_security\n}\nvrrp_script chk {\n  script /bin/true\n} #<\n${inst("  track_script {\n    chk\n  }\n")}`,
    msg: "no user to run it as",
    ka: "same",
    kaMsg: "Unable to set default user",
  },

  // ---- global settings ----
  {
    name: "vrrp_garp_master_repeat 0",
    conf: `global_defs {\n  vrrp_garp_master_repeat 0 #<\n}\n${inst("")}`,
    msg: "greater than 0",
    ka: "same",
  },
  {
    name: "garp_master_delay not a number",
    conf: inst("  garp_master_delay soon #<\n"),
    msg: "invalid number",
    ka: "same",
  },
  {
    name: "garp_master_delay fractional (keepalived reads whole seconds)",
    conf: inst("  garp_master_delay 1.5 #<\n"),
    msg: "invalid number",
    ka: "same",
  },

  // ---- strict mode ----
  {
    name: "vrrp_strict with unicast peers",
    conf: `global_defs {\n  vrrp_strict\n}\n${inst("  unicast_peer { #<\n    192.0.2.2\n  }\n")}`,
    msg: "not supported in strict mode",
    ka: "accepts",
    why: "keepalived 2.2.7 means to refuse this (vrrp.c) but tests the unicast flag before it sets it",
  },
  {
    name: "vrrp_strict with authentication",
    conf: `global_defs {\n  vrrp_strict\n}\n${inst("  authentication { #<\n    auth_type PASS\n    auth_pass secret\n  }\n")}`,
    msg: "does not support authentication",
    ka: "rejects",
    kaMsg: "Strict mode does not support authentication",
  },
  {
    name: "vrrp_strict with state MASTER below priority 255",
    conf: `global_defs {\n  vrrp_strict\n}\n${inst("  state MASTER #<\n  priority 100\n")}`,
    msg: "address owner",
    ka: "rejects",
    kaMsg: "State MASTER must match being address owner",
  },
  {
    name: "vrrp_strict with a global first IPv6 VIP",
    conf: `global_defs {\n  vrrp_strict\n}\n${inst("", undefined, "2001:db8::10/64 #<")}`,
    msg: "must be link-local",
    ka: "rejects",
    kaMsg: "must be link local",
  },
  {
    name: "first IPv6 VIP not link-local without vrrp_strict",
    conf: inst("", undefined, "2001:db8::10/64 #<"),
    msg: "should be link-local",
    ka: "accepts",
    warn: true,
    why: "keepalived logs the same advice and runs; peers may be other keepalived nodes configured alike",
  },

  // ---- load balancing (virtual_server, real_server, checkers, virtual_server_group) ----
  {
    name: "lb_algo unknown",
    conf: vs("", "  lb_algo foo #<\n  lb_kind NAT\n  protocol TCP\n"),
    msg: "unknown scheduler 'foo'",
    ka: "same",
    kaMsg: "Invalid lvs_scheduler",
  },
  {
    name: "lb_kind unknown",
    conf: vs("", "  lb_algo rr\n  lb_kind FOO #<\n  protocol TCP\n"),
    msg: "unknown forwarding method 'FOO'",
    ka: "same",
    kaMsg: "routing method",
  },
  {
    name: "protocol unknown",
    conf: vs("", "  lb_algo rr\n  lb_kind NAT\n  protocol ICMP #<\n"),
    msg: "unknown protocol 'ICMP'",
    ka: "same",
    kaMsg: "Unknown protocol",
  },
  {
    name: "virtual_server port out of range",
    conf: vs("", undefined, "192.0.2.10 70000 #<"),
    msg: "70000 is outside the range [1, 65535]",
    ka: "same",
    kaMsg: "Invalid virtual server IP address",
  },
  {
    name: "virtual_server address invalid",
    conf: vs("", undefined, "192.0.2.300 80 #<"),
    msg: "invalid IP address '192.0.2.300'",
    ka: "same",
    kaMsg: "Invalid virtual server IP address",
  },
  {
    name: "unknown keyword in virtual_server",
    conf: vs("  foo 1 #<\n"),
    msg: "unknown keyword 'foo'",
    ka: "same",
    kaMsg: "Unknown keyword 'foo'",
  },
  { name: "quorum 0", conf: vs("  quorum 0 #<\n"), msg: "[1, 4294967295]", ka: "same", kaMsg: "Quorum" },
  {
    name: "persistence_timeout 0",
    conf: vs("  persistence_timeout 0 #<\n"),
    msg: "[1, 2678400]",
    ka: "same",
    kaMsg: "persistence_timeout invalid",
  },
  {
    name: "persistence_granularity not a netmask",
    conf: vs("  persistence_granularity 255.255.255.x #<\n"),
    msg: "not an IPv4 netmask",
    ka: "same",
    kaMsg: "persistence_granularity",
  },
  {
    name: "delay_loop 0",
    conf: vs("  delay_loop 0 #<\n"),
    msg: "outside the range",
    ka: "same",
    kaMsg: "delay loop",
  },
  {
    name: "real server weight negative",
    conf: vs("", undefined, undefined, "  real_server 192.0.2.20 80 {\n    weight -1 #<\n  }\n"),
    msg: "negative",
    ka: "same",
    kaMsg: "weight",
  },
  {
    name: "real server connect_timeout 0",
    conf: vs("", undefined, undefined, "  real_server 192.0.2.20 80 {\n    connect_timeout 0 #<\n  }\n"),
    msg: "outside the range",
    ka: "same",
    kaMsg: "connect_timeout 0 invalid",
  },
  {
    name: "real server address invalid",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.256 80 { #<\n  }\n  real_server 192.0.2.20 80 {\n  }\n",
    ),
    msg: "invalid IP address",
    ka: "same",
    kaMsg: "Invalid real server ip address",
  },
  {
    name: "sorry_server address invalid",
    conf: vs("  sorry_server 192.0.2.300 80 #<\n"),
    msg: "invalid IP address '192.0.2.300'",
    ka: "same",
    kaMsg: "Invalid sorry server IP address",
  },
  {
    name: "sorry_server_inhibit before sorry_server",
    conf: vs("  sorry_server_inhibit #<\n  sorry_server 192.0.2.30 80\n"),
    msg: "used before or without sorry_server",
    ka: "same",
    kaMsg: "sorry_server inhibit",
  },
  {
    name: "sh-port with another scheduler",
    conf: vs("  sh-port #<\n"),
    msg: "only applies to the sh scheduler",
    ka: "same",
    kaMsg: "only applies to sh scheduler",
  },
  {
    name: "real server family differs from the virtual server (NAT), named at its '}'",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 2001:db8::20 80 {\n  } #<\n  real_server 192.0.2.20 80 {\n  }\n",
    ),
    msg: "does not match the virtual server (IPv4)",
    ka: "same",
    kaMsg: "don't match",
  },
  {
    name: "sorry server family differs from the virtual server, named at its '}'",
    conf: `${vs("  sorry_server 2001:db8::30 80\n").replace(/}\n$/, "} #<\n")}`,
    msg: "only TUN may mix families",
    ka: "same",
    kaMsg: "sorry server",
  },
  {
    name: "checker keyword out of place (misc_path in TCP_CHECK)",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    TCP_CHECK {\n      misc_path /bin/true #<\n    }\n  }\n",
    ),
    msg: "unknown keyword 'misc_path' in TCP_CHECK",
    ka: "same",
    kaMsg: "Unknown keyword 'misc_path'",
  },
  {
    name: "checker connect_port 0",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    TCP_CHECK {\n      connect_port 0 #<\n    }\n  }\n",
    ),
    msg: "[1, 65535]",
    ka: "same",
    kaMsg: "connect_port",
  },
  {
    name: "checker bindto family differs from connect_ip",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    TCP_CHECK {\n      connect_ip 2001:db8::1\n      bindto 192.0.2.1 #<\n    }\n  }\n",
    ),
    msg: "does not match the address family",
    ka: "same",
    kaMsg: "does not match address family",
  },
  {
    name: "HTTP_GET without url, named at its '}'",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    HTTP_GET {\n      connect_timeout 3\n    } #<\n  }\n",
    ),
    msg: "no url specified",
    ka: "same",
    kaMsg: "no urls specified",
  },
  {
    name: "url without path, named at its '}'",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    HTTP_GET {\n      url {\n        status_code 200\n      } #<\n    }\n  }\n",
    ),
    msg: "no path specified",
    ka: "same",
    kaMsg: "has no path",
  },
  {
    name: "url digest not an MD5",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    HTTP_GET {\n      url {\n        path /\n        digest abc #<\n      }\n    }\n  }\n",
    ),
    msg: "not an MD5 digest",
    ka: "same",
    kaMsg: "character length",
  },
  {
    name: "url status_code out of range",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    HTTP_GET {\n      url {\n        path /\n        status_code 200-299 99 #<\n      }\n    }\n  }\n",
    ),
    msg: "invalid HTTP status code '99'",
    ka: "same",
    kaMsg: "Invalid HTTP_GET status code",
  },
  {
    name: "nb_get_retry (deprecated)",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    HTTP_GET {\n      url {\n        path /\n      }\n      nb_get_retry 3 #<\n    }\n  }\n",
    ),
    msg: "use 'retry'",
    ka: "same",
    kaMsg: "nb_get_retry is deprecated",
  },
  {
    name: "DNS_CHECK type unknown",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    DNS_CHECK {\n      type FOO #<\n    }\n  }\n",
    ),
    msg: "unknown DNS record type 'FOO'",
    ka: "same",
    kaMsg: "Unknown DNS check type",
  },
  {
    name: "DNS_CHECK name with an empty label",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    DNS_CHECK {\n      name a..b #<\n    }\n  }\n",
    ),
    msg: "empty label",
    ka: "same",
    kaMsg: "empty label",
  },
  {
    name: "UDP_CHECK payload not hex",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    UDP_CHECK {\n      payload zz #<\n    }\n  }\n",
    ),
    msg: "invalid hex string",
    ka: "same",
    kaMsg: "Invalid hex string",
  },
  {
    name: "MISC_CHECK without misc_path, named at its '}'",
    conf: `${SEC}${vs("", undefined, undefined, "  real_server 192.0.2.20 80 {\n    MISC_CHECK {\n      misc_timeout 3\n    } #<\n  }\n")}`,
    msg: "no script specified",
    ka: "same",
    kaMsg: "No script path",
  },
  {
    name: "MISC_CHECK user that does not exist",
    conf: `${SEC}${vs("", undefined, undefined, "  real_server 192.0.2.20 80 {\n    MISC_CHECK {\n      misc_path /bin/true\n      user vigil-no-such-user #<\n    }\n  }\n")}`,
    msg: "user 'vigil-no-such-user' does not exist",
    ka: "same",
    kaMsg: "Failed to set uid/gid",
  },
  {
    name: "virtual_server_group range end below its start",
    conf: `${vs("", undefined, "group G")}virtual_server_group G {\n  192.0.2.10-5 80 #<\n  192.0.2.40 80\n}\n`,
    msg: "range end is not above its start",
    ka: "same",
    kaMsg: "Address range end",
  },
  {
    name: "virtual_server_group network with host bits",
    conf: `${vs("", undefined, "group G")}virtual_server_group G {\n  192.0.2.30/30 80 #<\n  192.0.2.40 80\n}\n`,
    msg: "has host bits set",
    ka: "same",
    kaMsg: "mask bits not empty",
  },
  {
    name: "virtual_server_group without entries, named at its '}'",
    conf: `virtual_server_group G {\n} #<\n${vs("")}`,
    msg: "no entries",
    ka: "same",
    kaMsg: "has no entries",
  },
  {
    name: "real_server without its block (named where '{' was expected)",
    conf: vs("", undefined, undefined, "  real_server 192.0.2.20 80\n").replace(/}\n$/, "} #<\n"),
    msg: "missing '{'",
    ka: "same",
    kaMsg: "Missing '{'",
  },
  {
    name: "MISC_CHECK without enable_script_security",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    MISC_CHECK {\n      misc_path /bin/true #<\n    }\n  }\n",
    ),
    msg: "enable_script_security is not set",
    ka: "security",
    warn: true,
    why: "keepalived still runs the script; its test only exits with the 'security' status 6",
  },
  {
    name: "virtual_server without protocol",
    conf: vs("", "  lb_algo rr\n  lb_kind NAT\n").replace(
      "virtual_server 192.0.2.10 80 {",
      "virtual_server 192.0.2.10 80 { #<",
    ),
    msg: "no protocol set",
    ka: "rejects",
    kaMsg: "no protocol set",
  },
  {
    name: "virtual_server without lb_algo",
    conf: vs("", "  lb_kind NAT\n  protocol TCP\n", "192.0.2.10 80 #<"),
    msg: "no scheduler set",
    ka: "rejects",
    kaMsg: "no scheduler set",
  },
  {
    name: "virtual_server without lb_kind",
    conf: vs("", "  lb_algo rr\n  protocol TCP\n", "192.0.2.10 80 #<"),
    msg: "no forwarding method set",
    ka: "rejects",
    kaMsg: "no forwarding method set",
  },
  {
    name: "virtual_server without real servers",
    conf: vs("", undefined, "192.0.2.10 80 #<", ""),
    msg: "no real servers",
    ka: "rejects",
    kaMsg: "has no real servers",
  },
  {
    name: "real server duplicated",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n  }\n  real_server 192.0.2.20 80 { #<\n  }\n",
    ),
    msg: "is duplicated",
    ka: "rejects",
    kaMsg: "is duplicated",
  },
  {
    name: "quorum above the total weight",
    conf: vs("  quorum 3 #<\n"),
    msg: "exceeds the total weight",
    ka: "rejects",
    kaMsg: "exceeds total weight",
  },
  {
    name: "hysteresis not below quorum",
    conf: vs("  hysteresis 1 #<\n"),
    msg: "must be below quorum",
    ka: "rejects",
    kaMsg: "hysteresis",
  },
  {
    name: "DR real server on another port",
    conf: vs(
      "",
      "  lb_algo rr\n  lb_kind DR\n  protocol TCP\n",
      undefined,
      "  real_server 192.0.2.20 81 { #<\n  }\n",
    ),
    msg: "only NAT can change ports",
    ka: "rejects",
    kaMsg: "ports don't match",
  },
  {
    name: "ops with TCP",
    conf: vs("  ops #<\n"),
    msg: "requires protocol UDP",
    ka: "rejects",
    kaMsg: "one packet scheduling requires UDP",
  },
  {
    name: "protocol on a fwmark service",
    conf: vs("", "  lb_algo rr\n  lb_kind NAT\n  protocol TCP #<\n", "fwmark 1"),
    msg: "a fwmark service has no protocol",
    ka: "rejects",
    kaMsg: "protocol specified for fwmark",
  },
  {
    name: "ha_suspend on a fwmark service",
    conf: vs("  ha_suspend #<\n", "  lb_algo rr\n  lb_kind NAT\n", "fwmark 1"),
    msg: "ha_suspend cannot be used with fwmarks",
    ka: "rejects",
    kaMsg: "cannot use ha_suspend with fwmarks",
  },
  {
    name: "ha_suspend on a group service",
    conf: `${vs("  ha_suspend #<\n", undefined, "group G")}virtual_server_group G {\n  192.0.2.10 80\n}\n`,
    msg: "ha_suspend needs the virtual server's own address",
    ka: "accepts",
    why: "keepalived 2.2.7 never matches a group's addresses (addr_matches), so its checkers never run",
  },
  {
    name: "bind_if on a UDP_CHECK",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    UDP_CHECK {\n      bind_if eth0 #<\n    }\n  }\n",
    ),
    msg: "bind_if is not supported by vigil",
    ka: "accepts",
    why: "only TCP_CHECK can set SO_BINDTODEVICE (through ffi): refused rather than ignored",
  },
  {
    name: "fwmark on an HTTP_GET",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    HTTP_GET {\n      url {\n        path /\n      }\n      fwmark 3 #<\n    }\n  }\n",
    ),
    msg: "fwmark is not supported by vigil",
    ka: "accepts",
    why: "only TCP_CHECK can set SO_MARK (through ffi): refused rather than ignored",
  },
  {
    name: "port 0 without persistence",
    conf: vs("", undefined, "192.0.2.10 0 #<"),
    msg: "only valid for persistent services",
    ka: "rejects",
    kaMsg: "zero port only valid for persistent services",
  },
  {
    name: "fwmark 0",
    conf: vs("", "  lb_algo rr\n  lb_kind NAT\n", "fwmark 0 #<"),
    msg: "[1, 4294967295]",
    ka: "rejects",
    kaMsg: "zero port only valid for persistent services",
    why: "keepalived takes mark 0 as no mark and reports a service without address or protocol",
  },
  {
    name: "UDP_CHECK min_reply_length above max_reply_length",
    conf: vs(
      "",
      undefined,
      undefined,
      "  real_server 192.0.2.20 80 {\n    UDP_CHECK {\n      min_reply_length 10\n      max_reply_length 5 #<\n    }\n  }\n",
    ),
    msg: "would always fail",
    ka: "rejects",
    kaMsg: "will always fail",
    why: "keepalived names the checker's '}', vigil the max_reply_length line",
  },
  {
    name: "virtual server defined twice",
    conf: `${vs("")}virtual_server 192.0.2.10 80 { #<\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  real_server 192.0.2.21 80 {\n  }\n}\n`,
    msg: "already defined",
    ka: "accepts",
    why: "keepalived programs the same kernel service twice and the second block silently replaces the first",
  },
  {
    name: "virtual_server group that is not defined",
    conf: vs("", undefined, "group NOPE #<"),
    msg: "virtual_server_group NOPE is not defined",
    ka: "accepts",
    why: "keepalived reads the block and never programs the service: a typo silently drops it",
  },
  {
    name: "virtual_server with an address range",
    conf: vs("", undefined, "192.0.2.10-20 80 #<"),
    msg: "only allowed in a virtual_server_group",
    ka: "accepts",
    why: "keepalived silently uses the first address of the range",
  },
  {
    name: "lb_kind with tunnel options",
    conf: vs("", "  lb_algo rr\n  lb_kind TUN type gue port 6080 #<\n  protocol TCP\n"),
    msg: "tunnel options",
    ka: "accepts",
    why: "GUE/GRE tunnels are not implemented in vigil; ignoring the options would change the encapsulation",
  },

  // ---- features vigil does not have ----
  {
    name: "use_vmac",
    conf: inst("  use_vmac #<\n"),
    msg: "use_vmac: not supported by vigil",
    ka: "accepts",
    why: "a VMAC changes how VIPs are added and answered; vigil does not implement it",
  },
  {
    name: "static_routes",
    conf: `static_routes { #<\n  198.51.100.0/24 via 192.0.2.254 dev eth0\n}\n${inst("")}`,
    msg: "static_routes: not supported by vigil",
    ka: "accepts",
    why: "routes are not part of vigil yet",
  },
  {
    name: "smtp_alert in an instance (harmless)",
    conf: inst("  smtp_alert #<\n"),
    msg: "has no effect in vigil",
    ka: "accepts",
    warn: true,
    why: "mail alerts change nothing about VRRP",
  },
  {
    name: "interface missing with dynamic_interfaces",
    conf: "global_defs {\n  dynamic_interfaces\n}\nvrrp_instance VI_1 {\n  interface eth9 #<\n  virtual_router_id 30\n  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n",
    msg: "interface eth9 does not exist",
    ka: "accepts",
    warn: true,
    why: "dynamic_interfaces says interfaces may appear later, as in keepalived",
  },
];

// ---- the run ----

interface Written {
  top: string;
  markFile: string;
  markLine: number;
}

function write(dir: string, c: Case): Written {
  const files = typeof c.conf === "string" ? { "keepalived.conf": c.conf } : c.conf;
  let top = "";
  let mark: { file: string; line: number } | undefined;
  for (const [name, text] of Object.entries(files)) {
    const p = join(dir, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
    if (!top) top = p;
    text.split("\n").forEach((l, i) => {
      if (l.includes("#<")) mark = { file: p, line: i + 1 };
    });
  }
  if (!mark) throw new Error(`case '${c.name}' has no #< marker`);
  return { top, markFile: mark.file, markLine: mark.line };
}

let base = "";
let oracle: KeepalivedOracle | null = null;
const haveKeepalived = KeepalivedOracle.available();

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "vigil-config-errors-"));
  if (haveKeepalived) oracle = new KeepalivedOracle();
});
afterAll(() => {
  oracle?.destroy();
  rmSync(base, { recursive: true, force: true });
});

describe("broken configs: vigil names the line", () => {
  CASES.forEach((c, i) => {
    test(c.name, () => {
      const dir = join(base, `case${i}`);
      const w = write(dir, c);
      const r = loadConfigFile(w.top, FAKE_ENV);
      const found = (list: { file: string; line: number; message: string }[]) =>
        list.some((e) => e.file === w.markFile && e.line === w.markLine && e.message.includes(c.msg));
      if (c.warn) {
        if (!r.ok)
          throw new Error(
            `expected a warning, got errors:\n${r.errors.map((e) => `${e.line}: ${e.message}`).join("\n")}`,
          );
        expect(found(r.warnings), JSON.stringify(r.warnings)).toBe(true);
      } else {
        if (r.ok) throw new Error(`vigil accepted it (warnings: ${JSON.stringify(r.warnings)})`);
        expect(found(r.errors), JSON.stringify(r.errors)).toBe(true);
      }
      // differences from keepalived are documented in the table
      if (c.ka === "accepts" || c.warn)
        expect(c.why, "entries that differ from keepalived say why").toBeDefined();
    });
  });
});

describe.skipIf(!haveKeepalived)("broken configs: keepalived 2.2.7 agrees", () => {
  CASES.forEach((c, i) => {
    test(c.name, () => {
      const dir = join(base, `ka${i}`);
      const w = write(dir, c);
      const ka = oracle!.check(w.top);
      const detail = `keepalived exit ${ka.code}:\n${ka.output}`;
      switch (c.ka) {
        case "accepts":
          expect(ka.code, detail).toBe(0);
          break;
        case "security":
          expect(ka.code, detail).toBe(6);
          break;
        case "same": {
          expect(ka.code, detail).not.toBe(0);
          // keepalived's first pass prints no file name; the line must match in the marked file
          // keepalived names included files relative to the directory it changed into
          const hit = ka.messages.some(
            (m) =>
              m.line === w.markLine &&
              (m.file === undefined || m.file === w.markFile || w.markFile.endsWith(`/${m.file}`)) &&
              (c.kaMsg === undefined || m.message.includes(c.kaMsg)),
          );
          expect(hit, detail).toBe(true);
          break;
        }
        case "rejects": {
          expect(ka.code, detail).not.toBe(0);
          expect(c.kaMsg, "rejects entries say which keepalived message").toBeDefined();
          expect(
            ka.messages.some((m) => m.message.includes(c.kaMsg!)),
            detail,
          ).toBe(true);
          break;
        }
      }
    });
  });
});

export { CASES };
