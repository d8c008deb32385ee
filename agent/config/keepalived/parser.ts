// keepalived.conf statements -> the config model (input shape, before zod defaults).
//
// This layer knows keepalived's syntax: which keywords exist where, which take a `{ }` block, how
// each value is written (integers, keepalived's fixed-point decimals, addresses with options) and
// which keepalived features vigil does not have. It rejects what keepalived 2.2.7 rejects while
// reading the file, at the same line. Checks that relate several settings (families, versions,
// preemption, references between sections, interfaces) run later on the model, in ../validate.ts,
// so YAML gets them too. Every value it sets records its location in the object's `locs`.
import type { z } from "zod";
import { familyOf } from "../../wire/ip.ts";
import type {
  ConfigError,
  ConfigInput,
  SourceLoc,
  SourceLocs,
  SyncGroup,
  TrackFile,
  TrackFileDef,
  TrackInterface,
  TrackScript,
  UnicastPeer,
  VirtualIp,
  VrrpInstance,
  VrrpScript,
} from "../model.ts";
import { type LexItem, splitQuotedEscaped } from "./lexer.ts";
import { LvsParser } from "./lvs.ts";

type InstanceIn = z.input<typeof VrrpInstance>;
type ScriptIn = z.input<typeof VrrpScript>;
type GroupIn = z.input<typeof SyncGroup>;
type VipIn = z.input<typeof VirtualIp>;
type PeerIn = z.input<typeof UnicastPeer>;
type TrackIfIn = z.input<typeof TrackInterface>;
type TrackScriptIn = z.input<typeof TrackScript>;
type TrackFileIn = z.input<typeof TrackFile>;
type TrackFileDefIn = z.input<typeof TrackFileDef>;
type NotifyIn = NonNullable<InstanceIn["notify"]>;
type GlobalIn = NonNullable<ConfigInput["globalDefs"]>;

/** A statement with the block that follows it, if any. */
export interface Node {
  words: string[];
  raw: string;
  file: string;
  line: number;
  block?: Node[];
  /** where the block's `{` was, for "missing }" errors */
  open?: SourceLoc;
  /** where the block's `}` was: keepalived reports end-of-block checks there */
  close?: SourceLoc;
}

export interface ParseResult {
  config: ConfigInput;
  errors: ConfigError[];
  warnings: ConfigError[];
}

/** Groups lexer items into statements with nested blocks; reports unbalanced braces. */
export function buildTree(items: LexItem[], errors: ConfigError[]): Node[] {
  const root: Node[] = [];
  const stack: { nodes: Node[]; open: SourceLoc; owner: Node | undefined }[] = [];
  let cur = root;
  // the `{` belongs to the statement right before it, on its line or the next ones
  let prevWasStmt = false;
  for (const it of items) {
    if (it.kind === "stmt") {
      cur.push({ words: it.words, raw: it.raw, file: it.file, line: it.line });
      prevWasStmt = true;
      continue;
    }
    if (it.kind === "open") {
      const owner = prevWasStmt ? cur[cur.length - 1] : undefined;
      const open = { file: it.file, line: it.line };
      const block: Node[] = [];
      const owns = owner !== undefined && owner.block === undefined;
      if (owns) {
        owner.block = block;
        owner.open = open;
      } else {
        errors.push({ ...open, message: "unexpected '{'" });
      }
      stack.push({ nodes: cur, open, owner: owns ? owner : undefined });
      cur = block;
      prevWasStmt = false;
      continue;
    }
    const top = stack.pop();
    if (!top) errors.push({ file: it.file, line: it.line, message: "unexpected '}' (no block is open)" });
    else {
      cur = top.nodes;
      if (top.owner) top.owner.close = { file: it.file, line: it.line };
    }
    prevWasStmt = false;
  }
  for (const s of stack.reverse())
    errors.push({ ...s.open, message: "missing '}' for the block opened here" });
  return root;
}

// ---- keyword tables -------------------------------------------------------------------------

/** global_defs keywords keepalived has that change nothing vigil does: accepted, listed as ignored. */
const GLOBAL_IGNORED = new Set([
  "notification_email",
  "notification_email_from",
  "smtp_server",
  "smtp_helo_name",
  "smtp_connect_timeout",
  "smtp_alert",
  "smtp_alert_vrrp",
  "smtp_alert_checker",
  "no_email_faults",
  "checker_log_all_failures",
  "lvs_id",
  "lvs_timeouts",
  "lvs_flush",
  "lvs_flush_on_stop",
  "lvs_flush_onstop",
  "lvs_sync_daemon",
  "lvs_notify_fifo",
  "lvs_notify_fifo_script",
  "vrrp_skip_check_adv_addr",
  "vrrp_iptables",
  "vrrp_ipsets",
  "nftables",
  "nftables_priority",
  "nftables_ifindex",
  "nftables_ipvs",
  "nftables_ipvs_priority",
  "nftables_ipvs_start_fwmark",
  "nftables_counters",
  "enable_traps",
  "snmp_socket",
  "enable_snmp_vrrp",
  "enable_snmp_keepalived",
  "enable_snmp_rfc",
  "enable_snmp_rfcv2",
  "enable_snmp_rfcv3",
  "enable_snmp_checker",
  "enable_dbus",
  "dbus_service_name",
  "max_auto_priority",
  "min_auto_priority_delay",
  "vrrp_priority",
  "vrrp_no_swap",
  "vrrp_rt_priority",
  "vrrp_cpu_affinity",
  "vrrp_rlimit_rttime",
  "vrrp_rlimit_rtime",
  "checker_priority",
  "checker_no_swap",
  "checker_rt_priority",
  "checker_cpu_affinity",
  "checker_rlimit_rttime",
  "checker_rlimit_rtime",
  "bfd_priority",
  "bfd_no_swap",
  "bfd_rt_priority",
  "bfd_cpu_affinity",
  "bfd_rlimit_rttime",
  "bfd_rlimit_rtime",
  "process_names",
  "process_name",
  "vrrp_process_name",
  "checker_process_name",
  "lvs_process_name",
  "bfd_process_name",
  "default_interface",
  "disable_local_igmp",
  "vrrp_netlink_cmd_rcv_bufs",
  "vrrp_netlink_cmd_rcv_bufs_force",
  "vrrp_netlink_monitor_rcv_bufs",
  "vrrp_netlink_monitor_rcv_bufs_force",
  "process_monitor_rcv_bufs",
  "process_monitor_rcv_bufs_force",
  "lvs_netlink_cmd_rcv_bufs",
  "lvs_netlink_cmd_rcv_bufs_force",
  "lvs_netlink_monitor_rcv_bufs",
  "lvs_netlink_monitor_rcv_bufs_force",
  "no_checker_emails",
  "vrrp_rx_bufs_policy",
  "vrrp_rx_bufs_multiplier",
  "log_unknown_vrids",
  "vmac_prefix",
  "vmac_addr_prefix",
  "umask",
  "random_seed",
  "reload_check_config",
  "reload_time_file",
  "reload_repeat",
  "reload_file",
  "include_check",
  "config_save_dir",
  "tmp_config_directory",
  "data_use_instance",
  "linkbeat_use_polling",
  "fifo_write_vrrp_states_on_reload",
]);

/** global_defs keywords whose effect vigil cannot honour: accepting them would change behaviour silently. */
const GLOBAL_UNSUPPORTED = new Set([
  "vrrp_min_garp",
  "vrrp_garp_extra_if",
  "vrrp_vmac_garp_intvl",
  "startup_script",
  "startup_script_timeout",
  "shutdown_script",
  "shutdown_script_timeout",
]);

const ROOT_IGNORED = new Set([
  "use_pid_dir",
  "child_wait_time",
  "instance",
  "linkbeat_use_polling",
  "namespace_with_ipsets",
  "net_namespace_ipvs",
]);
const ROOT_UNSUPPORTED = new Set([
  "net_namespace",
  "static_ipaddress",
  "static_routes",
  "static_rules",
  "track_group",
  "garp_group",
  "linkbeat_interfaces",
  "vrrp_track_process",
  "interface_up_down_delays",
  "bfd_instance",
]);
// the global SSL context of SSL_GET checkers (certificates, CA): SSL_GET runs without one
const ROOT_LVS_UNSUPPORTED = new Set(["SSL"]);

const INSTANCE_IGNORED = new Set([
  "smtp_alert",
  "debug",
  "kernel_rx_buf_size",
  "linkbeat_use_polling",
  "promote_secondaries",
  "skip_check_adv_addr",
  // vigil installs no firewall rules, so VIPs always accept traffic, which is what `accept` asks for
  "accept",
  "lvs_sync_daemon_interface",
]);
const INSTANCE_UNSUPPORTED = new Set([
  "use_vmac",
  "use_vmac_addr",
  "vmac_xmit_base",
  "use_ipvlan",
  "unicast_fault_no_peer",
  "check_unicast_src",
  "old_unicast_checksum",
  "native_ipv6",
  "vrf",
  "track_process",
  "track_bfd",
  "track_src_ip",
  "unicast_ttl",
  "virtual_routes",
  "virtual_rules",
  "no_accept",
  "strict_mode",
  "garp_extra_if",
  "vmac_garp_intvl",
]);
const GROUP_IGNORED = new Set(["smtp_alert"]);
const GROUP_UNSUPPORTED = new Set([
  "global_tracking",
  "sync_group_tracking_weight",
  "track_process",
  "track_bfd",
]);
/** VIP options keepalived knows that vigil does not implement */
const VIP_UNSUPPORTED = new Set([
  "peer",
  "home",
  "-nodad",
  "mngtmpaddr",
  "autojoin",
  "no_track",
  "preferred_lft",
  "use_vmac",
]);
const VIP_UNSUPPORTED_WITH_ARG = new Set(["peer", "preferred_lft"]);

const SCOPES: Record<string, VipIn["scope"]> = {
  global: "global",
  site: "site",
  link: "link",
  host: "host",
  nowhere: "nowhere",
  // numeric scopes as in /etc/iproute2/rt_scopes
  "0": "global",
  "200": "site",
  "253": "link",
  "254": "host",
  "255": "nowhere",
};

// keepalived's IFNAMSIZ limit: names of 16 characters or more are refused
const IFNAMSIZ = 16;

// ---- the parser -------------------------------------------------------------------------------

class Parser {
  readonly errors: ConfigError[] = [];
  readonly warnings: ConfigError[] = [];
  readonly globalDefs: GlobalIn = { garp: {}, ignored: [], locs: {} };
  readonly scripts: ScriptIn[] = [];
  readonly instances: InstanceIn[] = [];
  readonly groups: GroupIn[] = [];
  private sawGlobalDefs = false;
  readonly lvs = new LvsParser(this);

  err(at: SourceLoc, message: string): void {
    this.errors.push({ file: at.file, line: at.line, message });
  }
  warn(at: SourceLoc, message: string): void {
    this.warnings.push({ file: at.file, line: at.line, message });
  }

  // -- value readers, with keepalived's rules (strtoul/strtol, fixed-point decimals) --

  /** The single argument of `keyword ARG`; extra words are ignored by keepalived, so only warned about. */
  arg(n: Node, what = "a value"): string | undefined {
    const v = n.words[1];
    if (v === undefined) {
      this.err(n, `${n.words[0]}: missing ${what}`);
      return undefined;
    }
    if (n.words.length > 2) this.warn(n, `${n.words[0]}: extra words after '${v}' ignored`);
    return v;
  }

  uint(n: Node, word: string | undefined, min: number, max: number, name = n.words[0]!): number | undefined {
    if (word === undefined) return undefined;
    if (/^\s*-/.test(word)) return this.bad(n, `${name}: negative number '${word}'`);
    if (!/^\+?\d+$/.test(word)) return this.bad(n, `${name}: invalid number '${word}'`);
    const v = Number(word);
    if (v < min || v > max) return this.bad(n, `${name}: ${word} is outside the range [${min}, ${max}]`);
    return v;
  }

  int(n: Node, word: string | undefined, min: number, max: number, name = n.words[0]!): number | undefined {
    if (word === undefined) return undefined;
    if (!/^[+-]?\d+$/.test(word)) return this.bad(n, `${name}: invalid number '${word}'`);
    const v = Number(word);
    if (v < min || v > max) return this.bad(n, `${name}: ${word} is outside the range [${min}, ${max}]`);
    return v;
  }

  /** keepalived's read_decimal_unsigned: up to 6 decimal places (microseconds). */
  decimal(n: Node, word: string | undefined, min: number, max: number): number | undefined {
    if (word === undefined) return undefined;
    const name = n.words[0]!;
    if (word.startsWith("-")) return this.bad(n, `${name}: negative number '${word}'`);
    const m = /^\+?(\d*)(?:\.(\d*))?$/.exec(word);
    if (!m || (m[1] === "" && (m[2] ?? "") === "")) return this.bad(n, `${name}: invalid number '${word}'`);
    if ((m[2] ?? "").length > 6) return this.bad(n, `${name}: '${word}' has more than 6 decimal places`);
    const v = Number(`${m[1] || "0"}.${m[2] || "0"}`);
    if (v < min || v > max) return this.bad(n, `${name}: ${word} is outside the range [${min}, ${max}]`);
    return v;
  }

  private bad(n: Node, message: string): undefined {
    this.err(n, message);
    return undefined;
  }

  /** A keyword that must not have a block; reports and skips one if present. */
  noBlock(n: Node): void {
    if (n.block) this.err(n.open ?? n, `${n.words[0]}: takes no '{' block`);
  }

  /** A keyword that needs a block; reports where keepalived does (the line where '{' was expected). */
  needBlock(n: Node, next: Node | undefined): Node[] | undefined {
    if (n.block) return n.block;
    this.err(next ?? n, `${n.words[0]}: missing '{' after '${n.words.join(" ")}' (line ${n.line})`);
    return undefined;
  }

  ignored(n: Node): void {
    this.globalDefs.ignored!.push({ keyword: n.words[0]!, loc: loc(n) });
  }

  unsupported(n: Node): void {
    this.err(n, `${n.words[0]}: not supported by vigil`);
  }

  unknown(n: Node, where: string): void {
    this.err(n, `unknown keyword '${n.words[0]}' in ${where}`);
  }

  /** A script command line: keepalived re-reads the statement with quotes and escapes. */
  command(n: Node, keyword: string): string | undefined {
    const { words, error } = splitQuotedEscaped(n.raw);
    if (error) return this.bad(n, `${keyword}: ${error}`);
    const cmd = words[1];
    if (cmd === undefined || cmd.trim() === "") return this.bad(n, `${keyword}: missing command`);
    if (words.length > 2) {
      // keepalived would take the next words as the user/group to run the script as (notify) or drop
      // them (script); either way the arguments would not reach the script
      return this.bad(
        n,
        `${keyword}: unexpected '${words.slice(2).join(" ")}' after the command: quote the command ` +
          `together with its arguments ("${words.slice(1).join(" ")}")`,
      );
    }
    return cmd;
  }

  // -- sections --

  root(nodes: Node[]): void {
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const kw = n.words[0]!;
      const next = nodes[i + 1];
      switch (kw) {
        case "global_defs": {
          if (n.words.length > 1)
            this.warn(n, `global_defs: extra words '${n.words.slice(1).join(" ")}' ignored`);
          const b = this.needBlock(n, next);
          if (b) this.global(b);
          break;
        }
        case "vrrp_script": {
          const b = this.needBlock(n, next);
          if (b) this.script(n, b);
          break;
        }
        case "track_file":
        case "vrrp_track_file": {
          const b = this.needBlock(n, next);
          if (b) this.trackFileDef(n, b);
          break;
        }
        case "vrrp_instance": {
          const b = this.needBlock(n, next);
          if (b) this.instance(n, b);
          break;
        }
        case "vrrp_sync_group": {
          const b = this.needBlock(n, next);
          if (b) this.group(n, b);
          break;
        }
        case "virtual_server": {
          const b = this.needBlock(n, next);
          if (b) this.lvs.virtualServer(n, b);
          break;
        }
        case "virtual_server_group": {
          const b = this.needBlock(n, next);
          if (b) this.lvs.group(n, b);
          break;
        }
        default:
          if (ROOT_UNSUPPORTED.has(kw) || ROOT_LVS_UNSUPPORTED.has(kw)) this.unsupported(n);
          else if (ROOT_IGNORED.has(kw)) this.ignored(n);
          else this.err(n, `unknown keyword '${kw}'`);
      }
    }
  }

  global(nodes: Node[]): void {
    this.sawGlobalDefs = true;
    const g = this.globalDefs;
    const garp = g.garp!;
    const locs = g.locs!;
    for (const n of nodes) {
      const kw = n.words[0]!;
      const at = loc(n);
      /** records a value and its location when the reader accepted it */
      const set = <T>(field: string, v: T | undefined, apply: (v: T) => void): void => {
        if (v === undefined) return;
        apply(v);
        locs[field] = at;
      };
      if (kw !== "notification_email") this.noBlock(n);
      switch (kw) {
        case "router_id": {
          const v = this.arg(n, "router id");
          set("routerId", v, (x) => {
            g.routerId = x;
          });
          break;
        }
        case "vrrp_version": {
          const v = this.int(n, this.arg(n), 2, 3);
          set("vrrpVersion", v, (x) => {
            g.vrrpVersion = x as 2 | 3;
          });
          break;
        }
        case "vrrp_garp_master_delay": {
          const v = this.uint(n, this.arg(n), 0, 1000);
          set("garp.masterDelay", v, (x) => {
            garp.masterDelay = x;
          });
          break;
        }
        case "vrrp_garp_master_repeat": {
          const v = this.repeat(n, 1);
          set("garp.masterRepeat", v, (x) => {
            garp.masterRepeat = x;
          });
          break;
        }
        case "vrrp_garp_master_refresh": {
          const v = this.uint(n, this.arg(n), 0, 2 ** 32 - 1);
          set("garp.masterRefresh", v, (x) => {
            garp.masterRefresh = x;
          });
          break;
        }
        case "vrrp_garp_master_refresh_repeat": {
          const v = this.repeat(n, 1);
          set("garp.masterRefreshRepeat", v, (x) => {
            garp.masterRefreshRepeat = x;
          });
          break;
        }
        case "vrrp_garp_interval": {
          const v = this.decimal(n, this.arg(n), 0.000001, 1);
          set("garp.interval", v, (x) => {
            garp.interval = x;
          });
          break;
        }
        case "vrrp_gna_interval": {
          const v = this.decimal(n, this.arg(n), 0.000001, 1);
          set("garp.gnaInterval", v, (x) => {
            garp.gnaInterval = x;
          });
          break;
        }
        case "vrrp_garp_lower_prio_delay": {
          const v = this.uint(n, this.arg(n), 0, 1000);
          set("garp.lowerPrioDelay", v, (x) => {
            garp.lowerPrioDelay = x;
          });
          break;
        }
        case "vrrp_garp_lower_prio_repeat": {
          const v = this.uint(n, this.arg(n), 0, 255);
          set("garp.lowerPrioRepeat", v, (x) => {
            garp.lowerPrioRepeat = x;
          });
          break;
        }
        case "script_user": {
          const user = n.words[1];
          if (user === undefined) {
            this.err(n, "script_user: no user name");
            break;
          }
          g.scriptUser = user;
          locs["scriptUser"] = at;
          if (n.words[2] !== undefined) {
            g.scriptGroup = n.words[2];
            locs["scriptGroup"] = at;
          }
          break;
        }
        case "enable_script_security":
          g.enableScriptSecurity = true;
          locs["enableScriptSecurity"] = at;
          break;
        case "vrrp_strict":
          g.vrrpStrict = true;
          locs["vrrpStrict"] = at;
          break;
        case "vrrp_check_unicast_src":
          g.checkUnicastSrc = true;
          locs["checkUnicastSrc"] = at;
          break;
        case "notify_fifo":
        case "vrrp_notify_fifo": {
          // NAME [username [groupname]] (keepalived global_parser.c notify_fifo)
          const field = kw === "notify_fifo" ? "notifyFifo" : "vrrpNotifyFifo";
          const path = n.words[1];
          if (path === undefined) {
            this.err(n, `${kw}: no FIFO name`);
            break;
          }
          const prev = g[field];
          if (prev?.path) {
            this.err(n, `${kw}: already specified`);
            break;
          }
          g[field] = {
            ...(prev ?? {}),
            path,
            ...(n.words[2] !== undefined ? { user: n.words[2] } : {}),
            ...(n.words[3] !== undefined ? { group: n.words[3] } : {}),
          };
          locs[field] = at;
          if (n.words.length > 4) this.warn(n, `${kw}: extra words '${n.words.slice(4).join(" ")}' ignored`);
          break;
        }
        case "notify_fifo_script":
        case "vrrp_notify_fifo_script": {
          const field = kw === "notify_fifo_script" ? "notifyFifo" : "vrrpNotifyFifo";
          const prev = g[field];
          if (prev?.script !== undefined) {
            this.err(n, `${kw}: already specified`);
            break;
          }
          const c = this.command(n, kw);
          if (c === undefined) break;
          g[field] = { path: "", ...(prev ?? {}), script: c };
          locs[`${field}.script`] = at;
          break;
        }
        case "vrrp_notify_priority_changes": {
          const b = this.bool(n);
          set("vrrpNotifyPriorityChanges", b, (x) => {
            g.vrrpNotifyPriorityChanges = x;
          });
          break;
        }
        case "vrrp_lower_prio_no_advert":
        case "vrrp_higher_prio_send_advert": {
          const b = this.bool(n);
          const field =
            kw === "vrrp_lower_prio_no_advert" ? "vrrpLowerPrioNoAdvert" : "vrrpHigherPrioSendAdvert";
          set(field, b, (x) => {
            g[field] = x;
          });
          break;
        }
        case "v3_checksum_as_v2": {
          // keepalived >= 2.3 keyword, optional boolean argument
          const b = this.bool(n);
          set("v3ChecksumAsV2", b, (x) => {
            g.v3ChecksumAsV2 = x;
          });
          break;
        }
        case "dynamic_interfaces":
          g.dynamicInterfaces = true;
          locs["dynamicInterfaces"] = at;
          break;
        case "vrrp_mcast_group4":
        case "vrrp_mcast_group6": {
          const v = this.arg(n, "address");
          if (v === undefined) break;
          // family and multicast are checked with the model (validate.ts), for YAML too
          if (familyOf(v) === null) {
            this.err(n, `${kw}: '${v}' is not an IP address`);
            break;
          }
          const field = kw === "vrrp_mcast_group4" ? "vrrpMcastGroup4" : "vrrpMcastGroup6";
          g[field] = v;
          locs[field] = at;
          break;
        }
        case "vrrp_down_timer_adverts": {
          const v = this.uint(n, this.arg(n), 1, 100);
          set("vrrpDownTimerAdverts", v, (x) => {
            g.vrrpDownTimerAdverts = x;
          });
          break;
        }
        case "vrrp_startup_delay": {
          // read_decimal_unsigned_strvec(..., TIMER_HZ / 1000, UINT_MAX, 6 digits): 1 ms .. 4294 s
          const v = this.decimal(n, this.arg(n), 0.001, 4294.967295);
          set("vrrpStartupDelay", v, (x) => {
            g.vrrpStartupDelay = x;
          });
          break;
        }
        case "rs_init_notifies": {
          // optional boolean argument, as in keepalived's rs_init_notifies_handler
          const b = this.bool(n);
          set("rsInitNotifies", b, (x) => {
            g.rsInitNotifies = x;
          });
          break;
        }
        default:
          if (GLOBAL_IGNORED.has(kw)) this.ignored(n);
          else if (GLOBAL_UNSUPPORTED.has(kw)) this.unsupported(n);
          else this.unknown(n, "global_defs");
      }
    }
  }

  /** `KEYWORD [true|false|on|off|yes|no]` */
  bool(n: Node): boolean | undefined {
    const w = n.words[1];
    if (w === undefined) return true;
    if (["true", "on", "yes"].includes(w)) return true;
    if (["false", "off", "no"].includes(w)) return false;
    return this.bad(n, `${n.words[0]}: expected true/false, got '${w}'`);
  }

  /** garp repeat counts: keepalived refuses 0 ("must be greater than 0"); the model allows up to 255 */
  repeat(n: Node, min: number): number | undefined {
    const w = this.arg(n);
    const v = this.uint(n, w, 0, 255);
    if (v !== undefined && v < min) return this.bad(n, `${n.words[0]}: must be greater than 0`);
    return v;
  }

  script(head: Node, nodes: Node[]): void {
    const at = loc(head);
    if (head.words.length !== 2) {
      this.err(head, "vrrp_script: needs exactly one name");
      return;
    }
    this.seenScripts.add(head.words[1]!);
    // keepalived checks a vrrp_script when its block ends and reports at the `}`
    const locs: SourceLocs = head.close ? { end: head.close } : {};
    const s: Partial<ScriptIn> & { locs: SourceLocs } = { name: head.words[1]!, loc: at, locs };
    for (const n of nodes) {
      const kw = n.words[0]!;
      const nat = loc(n);
      this.noBlock(n);
      switch (kw) {
        case "script": {
          const c = this.command(n, "script");
          if (c !== undefined) {
            s.script = c;
            locs["script"] = nat;
          }
          break;
        }
        case "interval":
        case "timeout": {
          const v = this.uint(n, this.arg(n), 0, 4294);
          if (v === 0) this.err(n, `${kw}: must be greater than 0`);
          else if (v !== undefined) {
            s[kw] = v;
            locs[kw] = nat;
          }
          break;
        }
        case "weight": {
          if (n.words[1] === undefined) {
            this.err(n, "weight: missing a value");
            break;
          }
          const v = this.int(n, n.words[1], -253, 253);
          if (v === undefined) break;
          s.weight = v;
          locs["weight"] = nat;
          const opt = n.words[2];
          if (opt === "reverse") {
            s.weightReverse = true;
            locs["weightReverse"] = nat;
          } else if (opt !== undefined) this.err(n, `weight: unknown option '${opt}' (expected 'reverse')`);
          break;
        }
        case "rise":
        case "fall": {
          const v = this.uint(n, this.arg(n), 1, 2 ** 31 - 1);
          if (v !== undefined) {
            s[kw] = v;
            locs[kw] = nat;
          }
          break;
        }
        case "user": {
          const user = n.words[1];
          if (user === undefined) {
            this.err(n, "user: missing user name");
            break;
          }
          s.user = user;
          locs["user"] = nat;
          if (n.words[2] !== undefined) {
            s.group = n.words[2];
            locs["group"] = nat;
          }
          break;
        }
        case "init_fail":
          s.initFail = true;
          locs["initFail"] = nat;
          break;
        default:
          this.unknown(n, `vrrp_script ${s.name}`);
      }
    }
    if (s.script === undefined) {
      this.err(head.close ?? head, `vrrp_script ${s.name}: no script set`);
      return;
    }
    this.scripts.push(s as ScriptIn);
  }

  instance(head: Node, nodes: Node[]): void {
    const at = loc(head);
    if (head.words.length !== 2) {
      this.err(head, "vrrp_instance: needs exactly one name");
      return;
    }
    const name = head.words[1]!;
    const locs: SourceLocs = {};
    const notify: NotifyIn = {};
    const inst: Partial<InstanceIn> & { locs: SourceLocs } = { name, loc: at, locs, notify };
    const vips: VipIn[] = [];
    const evips: VipIn[] = [];
    const peers: PeerIn[] = [];
    const trackIf: TrackIfIn[] = [];
    const trackSc: TrackScriptIn[] = [];
    const trackFl: TrackFileIn[] = [];
    // keepalived fixes the instance's family with the first address it reads (VIP, source or
    // peer); validate.ts reports the ones that disagree, at their own lines
    const noteFamily = (addr: string): void => {
      if (inst.family === undefined) {
        const f = familyOf(addr);
        if (f) inst.family = f;
      }
    };
    let unicastKeyword: SourceLoc | undefined;
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const next = nodes[i + 1];
      const kw = n.words[0]!;
      const nat = loc(n);
      // a block after an unsupported or unknown keyword is skipped with it
      if (isInstanceScalar(kw) || INSTANCE_IGNORED.has(kw)) this.noBlock(n);
      switch (kw) {
        case "state": {
          const v = this.arg(n, "state");
          if (v === undefined) break;
          if (v !== "MASTER" && v !== "BACKUP") {
            this.err(n, `state: unknown state '${v}' (expected MASTER or BACKUP)`);
            break;
          }
          if (inst.state === "MASTER" && v === "BACKUP") {
            this.err(n, "state: already set to MASTER");
            break;
          }
          inst.state = v;
          locs["state"] = nat;
          break;
        }
        case "interface": {
          const v = this.arg(n, "interface name");
          if (v === undefined) break;
          if (v.length >= IFNAMSIZ) {
            this.err(n, `interface: name '${v}' is too long`);
            break;
          }
          inst.interface = v;
          locs["interface"] = nat;
          break;
        }
        case "virtual_router_id": {
          const v = this.uint(n, this.arg(n), 1, 255);
          if (v !== undefined) {
            inst.virtualRouterId = v;
            locs["virtualRouterId"] = nat;
          }
          break;
        }
        case "priority": {
          const v = this.uint(n, this.arg(n), 1, 255);
          if (v !== undefined) {
            inst.priority = v;
            locs["priority"] = nat;
          }
          break;
        }
        case "advert_int": {
          const v = this.decimal(n, this.arg(n), 0.01, 255);
          if (v !== undefined) {
            inst.advertInt = v;
            locs["advertInt"] = nat;
          }
          break;
        }
        case "version": {
          const v = this.int(n, this.arg(n), 2, 3);
          if (v !== undefined) {
            inst.version = v as 2 | 3;
            locs["version"] = nat;
          }
          break;
        }
        case "nopreempt":
          inst.nopreempt = true;
          locs["nopreempt"] = nat;
          break;
        case "preempt":
          // keepalived's backwards-compatible keyword: undoes an earlier nopreempt
          inst.nopreempt = false;
          locs["nopreempt"] = nat;
          break;
        case "preempt_delay": {
          const v = this.decimal(n, this.arg(n), 0, 1000);
          if (v !== undefined) {
            inst.preemptDelay = v;
            locs["preemptDelay"] = nat;
          }
          break;
        }
        case "authentication": {
          const b = this.needBlock(n, next);
          if (b) this.auth(inst, b, nat);
          break;
        }
        case "virtual_ipaddress":
        case "virtual_ipaddress_excluded": {
          const b = this.needBlock(n, next);
          if (!b) break;
          const list = kw === "virtual_ipaddress" ? vips : evips;
          for (const e of this.valueLines(b)) {
            const v = this.vip(e);
            if (!v) continue;
            list.push(v);
            if (kw === "virtual_ipaddress") noteFamily(v.address);
          }
          break;
        }
        case "notify_deleted": {
          // notify_deleted [CMD] (vrrp_notify_deleted_handler)
          if (inst.notifyDeleted) {
            this.err(n, `vrrp_instance ${name}: notify_deleted already specified`);
            break;
          }
          if (n.words.length > 1) {
            const c = this.command(n, kw);
            if (c === undefined) break;
            notify.deleted = c;
            locs["notify.deleted"] = nat;
          }
          inst.notifyDeleted = true;
          locs["notifyDeleted"] = nat;
          break;
        }
        case "mcast_dst_ip": {
          const v = this.arg(n, "address");
          if (v === undefined) break;
          if (familyOf(v) === null) {
            this.err(n, `mcast_dst_ip: '${v}' is not an IP address`);
            break;
          }
          inst.mcastDstIp = v;
          locs["mcastDstIp"] = nat;
          break;
        }
        case "unicast_src_ip":
        case "mcast_src_ip": {
          const v = this.arg(n, "address");
          if (v === undefined) break;
          if (familyOf(v) === null) {
            this.err(n, `${kw}: '${v}' is not an IP address`);
            break;
          }
          inst.unicastSrcIp = v;
          locs["unicastSrcIp"] = nat;
          noteFamily(v);
          if (kw === "unicast_src_ip") unicastKeyword = nat;
          break;
        }
        case "unicast_peer": {
          const b = this.needBlock(n, next);
          if (!b) break;
          locs["unicastPeer"] = nat;
          for (const e of this.valueLines(b)) {
            const p = this.peer(e);
            if (!p) continue;
            peers.push(p);
            noteFamily(p.address);
          }
          break;
        }
        case "track_interface": {
          const b = this.needBlock(n, next);
          if (b) for (const e of this.valueLines(b)) this.trackIf(e, trackIf);
          break;
        }
        case "track_script": {
          const b = this.needBlock(n, next);
          if (b) for (const e of this.valueLines(b)) this.trackScript(e, trackSc);
          break;
        }
        case "track_file": {
          const b = this.needBlock(n, next);
          if (b) for (const e of this.valueLines(b)) this.trackFile(e, trackFl);
          break;
        }
        case "dont_track_primary":
          inst.dontTrackPrimary = true;
          locs["dontTrackPrimary"] = nat;
          break;
        case "lower_prio_no_advert":
        case "higher_prio_send_advert":
        case "notify_priority_changes": {
          const b = this.bool(n);
          if (b === undefined) break;
          const field =
            kw === "lower_prio_no_advert"
              ? "lowerPrioNoAdvert"
              : kw === "higher_prio_send_advert"
                ? "higherPrioSendAdvert"
                : "notifyPriorityChanges";
          inst[field] = b;
          locs[field] = nat;
          break;
        }
        case "garp_master_delay":
          this.setUint(inst, locs, "garpMasterDelay", n, 0, 1000);
          break;
        case "garp_master_refresh":
          this.setUint(inst, locs, "garpMasterRefresh", n, 0, 2 ** 32 - 1);
          break;
        case "garp_master_repeat": {
          const v = this.repeat(n, 1);
          if (v !== undefined) {
            inst.garpMasterRepeat = v;
            locs["garpMasterRepeat"] = nat;
          }
          break;
        }
        case "garp_master_refresh_repeat": {
          const v = this.repeat(n, 1);
          if (v !== undefined) {
            inst.garpMasterRefreshRepeat = v;
            locs["garpMasterRefreshRepeat"] = nat;
          }
          break;
        }
        case "garp_lower_prio_delay":
          this.setUint(inst, locs, "garpLowerPrioDelay", n, 0, 1000);
          break;
        case "garp_lower_prio_repeat":
          this.setUint(inst, locs, "garpLowerPrioRepeat", n, 0, 255);
          break;
        case "down_timer_adverts":
          this.setUint(inst, locs, "downTimerAdverts", n, 1, 100);
          break;
        case "notify_master":
        case "notify_backup":
        case "notify_fault":
        case "notify_stop":
        case "notify":
        case "notify_master_rx_lower_pri":
          this.notify(n, notify, locs, `vrrp_instance ${name}`);
          break;
        default:
          if (INSTANCE_IGNORED.has(kw)) this.ignored(n);
          else if (INSTANCE_UNSUPPORTED.has(kw)) this.unsupported(n);
          else this.unknown(n, `vrrp_instance ${name}`);
      }
    }
    if (vips.length) inst.virtualIpaddress = vips;
    if (evips.length) inst.virtualIpaddressExcluded = evips;
    if (peers.length) inst.unicastPeer = peers;
    if (trackIf.length) inst.trackInterface = trackIf;
    if (trackSc.length) inst.trackScript = trackSc;
    if (trackFl.length) inst.trackFile = trackFl;
    // keepalived derives a missing priority from the initial state (vrrp.c); an unset state stays
    // unset in the model, which tells it apart from an explicit BACKUP
    if (inst.priority === undefined && inst.state === "MASTER") inst.priority = 255;
    if (unicastKeyword && peers.length === 0) {
      // keepalived 2.2.7 reports this as deprecated (its config test fails) and falls back to multicast
      this.err(
        unicastKeyword,
        `vrrp_instance ${name}: unicast_src_ip without any unicast_peer (keepalived falls back to ` +
          `multicast); use mcast_src_ip to set the source of multicast adverts`,
      );
    }
    let complete = true;
    if (inst.interface === undefined) {
      this.err(head, `vrrp_instance ${name}: no interface set`);
      complete = false;
    }
    if (inst.virtualRouterId === undefined) {
      this.err(head, `vrrp_instance ${name}: the virtual router id must be set (virtual_router_id)`);
      complete = false;
    }
    if (complete) this.instances.push(inst as InstanceIn);
  }

  setUint(
    inst: Partial<InstanceIn>,
    locs: SourceLocs,
    field:
      | "garpMasterDelay"
      | "garpMasterRefresh"
      | "garpLowerPrioDelay"
      | "garpLowerPrioRepeat"
      | "downTimerAdverts",
    n: Node,
    min: number,
    max: number,
  ): void {
    const v = this.uint(n, this.arg(n), min, max);
    if (v === undefined) return;
    inst[field] = v;
    locs[field] = loc(n);
  }

  auth(inst: Partial<InstanceIn> & { locs: SourceLocs }, nodes: Node[], at: SourceLoc): void {
    let type: "PASS" | "AH" | undefined;
    let pass: string | undefined;
    inst.locs["authentication"] = at;
    for (const n of nodes) {
      this.noBlock(n);
      const kw = n.words[0];
      if (kw === "auth_type") {
        const v = this.arg(n, "PASS or AH");
        if (v === "PASS" || v === "AH") {
          type = v;
          inst.locs["authentication.type"] = loc(n);
        } else if (v !== undefined)
          this.err(n, `auth_type: unknown authentication type '${v}' (expected PASS or AH)`);
      } else if (kw === "auth_pass") {
        const v = this.arg(n, "password");
        if (v === undefined) continue;
        if (v.length > 8) {
          // keepalived truncates silently at run time: the peer would see a different password
          this.err(n, "auth_pass: longer than 8 characters (keepalived would truncate it)");
          continue;
        }
        pass = v;
        inst.locs["authentication.pass"] = loc(n);
      } else this.unknown(n, "authentication");
    }
    if (type === undefined) {
      // keepalived then runs without authentication, whatever auth_pass says
      if (pass !== undefined) this.err(at, "authentication: auth_pass without auth_type");
      return;
    }
    inst.authentication = pass === undefined ? { type } : { type, pass };
  }

  /** The entries of a value block (virtual_ipaddress, track_*, unicast_peer, group): one per statement. */
  valueLines(nodes: Node[]): Node[] {
    const out: Node[] = [];
    for (const n of nodes) {
      if (n.block) this.err(n.open ?? n, `unexpected '{' in a list of values`);
      out.push(n);
    }
    return out;
  }

  vip(n: Node): VipIn | undefined {
    const w = n.words;
    const first = w[0]!;
    const slash = first.indexOf("/");
    const addr = slash < 0 ? first : first.slice(0, slash);
    // keepalived decides the family by the presence of ':'
    const fam = addr.includes(":") ? 6 : 4;
    if (familyOf(addr) !== fam) return this.bad(n, `invalid IP address '${first}'`);
    const v: VipIn = { address: addr, loc: loc(n) };
    if (slash >= 0) {
      const p = this.uint(n, first.slice(slash + 1), 0, fam === 4 ? 32 : 128, `prefix of ${first}`);
      if (p === undefined) return undefined;
      v.prefixLen = p;
    }
    for (let i = 1; i < w.length; i++) {
      const opt = w[i]!;
      const val = w[i + 1];
      const needs =
        ["dev", "scope", "brd", "broadcast", "label"].includes(opt) || VIP_UNSUPPORTED_WITH_ARG.has(opt);
      if (needs && val === undefined) return this.bad(n, `${first}: no ${opt} parameter`);
      switch (opt) {
        case "dev":
          if (v.dev !== undefined) return this.bad(n, `${first}: dev given more than once`);
          v.dev = val!;
          i++;
          break;
        case "scope": {
          const s = SCOPES[val!];
          if (!s) return this.bad(n, `${first}: invalid scope '${val}'`);
          v.scope = s;
          i++;
          break;
        }
        case "brd":
        case "broadcast":
          v.brd = val!;
          i++;
          break;
        case "label":
          if (val!.length >= IFNAMSIZ)
            return this.bad(n, `${first}: label '${val}' is longer than 15 characters`);
          v.label = val!;
          i++;
          break;
        case "noprefixroute":
          v.noPrefixRoute = true;
          break;
        default:
          if (VIP_UNSUPPORTED.has(opt))
            return this.bad(n, `${first}: option '${opt}' is not supported by vigil`);
          return this.bad(n, `${first}: unknown option '${opt}'`);
      }
    }
    return v;
  }

  peer(n: Node): PeerIn | undefined {
    const w = n.words;
    const addr = w[0]!;
    if (familyOf(addr) === null) return this.bad(n, `unicast_peer: '${addr}' is not an IP address`);
    const p: PeerIn = { address: addr, loc: loc(n) };
    for (let i = 1; i < w.length; i += 2) {
      const opt = w[i]!;
      if (opt !== "min_ttl" && opt !== "max_ttl") return this.bad(n, `unicast_peer: unknown option '${opt}'`);
      if (w[i + 1] === undefined) return this.bad(n, `unicast_peer: ${opt} is missing a value`);
      const v = this.uint(n, w[i + 1], 0, 255, opt);
      if (v === undefined) return undefined;
      if (opt === "min_ttl") p.minTtl = v;
      else p.maxTtl = v;
    }
    return p;
  }

  /** `NAME [weight N [reverse]]` for track_interface; keepalived reads ±254 but refuses it */
  trackIf(n: Node, out: TrackIfIn[]): void {
    const w = n.words;
    const t: TrackIfIn = { name: w[0]!, loc: loc(n) };
    if (w.length >= 2) {
      if (w[1] !== "weight") return void this.err(n, `track_interface ${w[0]}: unknown option '${w[1]}'`);
      if (w.length === 2) return void this.err(n, `track_interface ${w[0]}: weight without a value`);
      const v = this.int(n, w[2], -253, 253, "weight");
      if (v === undefined) return;
      t.weight = v;
      if (w.length >= 4) {
        if (w[3] !== "reverse")
          return void this.err(n, `track_interface ${w[0]}: unknown weight option '${w[3]}'`);
        t.weightReverse = true;
      }
    }
    out.push(t);
  }

  /** `NAME [weight N [reverse|noreverse]]` for track_script */
  trackScript(n: Node, out: TrackScriptIn[]): void {
    const w = n.words;
    const t: TrackScriptIn = { name: w[0]!, loc: loc(n) };
    if (!this.seenScripts.has(t.name) && this.laterScripts.has(t.name)) {
      // keepalived looks the script up while reading, so it must already be defined
      return void this.err(n, `track_script: vrrp_script ${t.name} is defined after its first use`);
    }
    if (w.length >= 2) {
      if (w[1] !== "weight") return void this.err(n, `track_script ${w[0]}: unknown option '${w[1]}'`);
      if (w.length === 2) return void this.err(n, `track_script ${w[0]}: weight without a value`);
      const v = this.int(n, w[2], -253, 253, "weight");
      if (v === undefined) return;
      t.weight = v;
      if (w.length >= 4) {
        if (w[3] === "reverse") t.weightReverse = true;
        else if (w[3] === "noreverse") t.weightReverse = false;
        else return void this.err(n, `track_script ${w[0]}: unknown weight option '${w[3]}'`);
      }
    }
    out.push(t);
  }

  /** `NAME [weight N [reverse|noreverse]]` for track_file (vrrp_alloc_track_file) */
  trackFile(n: Node, out: TrackFileIn[]): void {
    const w = n.words;
    const t: TrackFileIn = { name: w[0]!, loc: loc(n) };
    if (!this.seenFiles.has(t.name) && this.laterFiles.has(t.name)) {
      // keepalived looks the file up while reading, so it must already be defined
      return void this.err(n, `track_file: track_file ${t.name} is defined after its first use`);
    }
    if (w.length >= 2) {
      if (w[1] !== "weight") return void this.err(n, `track_file ${w[0]}: unknown option '${w[1]}'`);
      if (w.length === 2) return void this.err(n, `track_file ${w[0]}: weight without a value`);
      const v = this.int(n, w[2], -254, 254, "weight");
      if (v === undefined) return;
      t.weight = v;
      if (w.length >= 4) {
        if (w[3] === "reverse") t.weightReverse = true;
        else if (w[3] === "noreverse") t.weightReverse = false;
        else return void this.err(n, `track_file ${w[0]}: unknown weight option '${w[3]}'`);
      }
    }
    out.push(t);
  }

  /** `track_file NAME { file PATH; weight W [reverse]; init_file [VALUE] [overwrite] }` */
  trackFileDef(head: Node, nodes: Node[]): void {
    const kw0 = head.words[0]!;
    if (head.words.length !== 2) {
      this.err(head, `${kw0}: needs exactly one name`);
      return;
    }
    const name = head.words[1]!;
    this.seenFiles.add(name);
    const locs: SourceLocs = head.close ? { end: head.close } : {};
    const d: TrackFileDefIn & { locs: SourceLocs } = { name, file: "", loc: loc(head), locs };
    let file: string | undefined;
    for (const n of nodes) {
      const kw = n.words[0]!;
      const nat = loc(n);
      this.noBlock(n);
      switch (kw) {
        case "file": {
          const f = n.words[1];
          if (f === undefined || f === "") this.err(n, "file: missing a file name");
          else if (file !== undefined) this.err(n, `${kw0} ${name}: file already set`);
          else {
            file = f;
            locs["file"] = nat;
          }
          break;
        }
        case "weight": {
          if (n.words[1] === undefined) {
            this.err(n, "weight: missing a value");
            break;
          }
          const v = this.int(n, n.words[1], -254, 254);
          if (v === undefined) break;
          d.weight = v;
          locs["weight"] = nat;
          const opt = n.words[2];
          if (opt === "reverse") d.weightReverse = true;
          else if (opt !== undefined) this.err(n, `weight: unknown option '${opt}' (expected 'reverse')`);
          break;
        }
        case "init_file": {
          const init: { value?: number; overwrite?: boolean } = {};
          for (const word of n.words.slice(1)) {
            if (word === "overwrite") init.overwrite = true;
            else if (/^-?\d/.test(word)) {
              const v = this.int(n, word, -254, 254, "init_file value");
              if (v === undefined) return;
              init.value = v;
            } else return void this.err(n, `init_file: unknown option '${word}'`);
          }
          d.init = init;
          locs["init"] = nat;
          break;
        }
        default:
          this.unknown(n, `${kw0} ${name}`);
      }
    }
    if (file === undefined) {
      this.err(head.close ?? head, `${kw0} ${name}: no file set`);
      return;
    }
    d.file = file;
    this.trackFiles.push(d);
  }

  /** names of every track_file in the file, to tell "defined later" from "not defined" */
  laterFiles = new Set<string>();
  /** names of the track_file blocks read so far (valid or not) */
  seenFiles = new Set<string>();
  readonly trackFiles: TrackFileDefIn[] = [];

  /** names of every vrrp_script in the file, to tell "defined later" from "not defined" */
  laterScripts = new Set<string>();
  /** names of the vrrp_script blocks read so far (valid or not) */
  seenScripts = new Set<string>();

  notify(n: Node, notify: NotifyIn, locs: SourceLocs, owner: string): void {
    const kw = n.words[0]!;
    const field = NOTIFY_FIELDS[kw];
    if (field === undefined) return;
    if (notify[field] !== undefined) {
      this.err(n, `${owner}: ${kw} script already specified`);
      return;
    }
    const c = this.command(n, kw);
    if (c === undefined) return;
    notify[field] = c;
    locs[`notify.${field}`] = loc(n);
  }

  group(head: Node, nodes: Node[]): void {
    const at = loc(head);
    if (head.words.length !== 2) {
      this.err(head, "vrrp_sync_group: needs exactly one name");
      return;
    }
    const name = head.words[1]!;
    const locs: SourceLocs = {};
    const notify: NotifyIn = {};
    const g: Partial<GroupIn> & { locs: SourceLocs } = { name, loc: at, locs, notify };
    const trackIf: TrackIfIn[] = [];
    const trackSc: TrackScriptIn[] = [];
    const trackFl: TrackFileIn[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const next = nodes[i + 1];
      const kw = n.words[0]!;
      switch (kw) {
        case "group": {
          const b = this.needBlock(n, next);
          if (!b) break;
          if (g.group !== undefined) {
            this.err(n, `vrrp_sync_group ${name}: group list already specified`);
            break;
          }
          const members: string[] = [];
          locs["group"] = loc(n);
          // keepalived reads the block as one list of words, whatever the line breaks
          for (const e of this.valueLines(b)) {
            for (const word of e.words) {
              locs[`group.${members.length}`] = loc(e);
              members.push(word);
            }
          }
          g.group = members;
          break;
        }
        case "track_interface": {
          const b = this.needBlock(n, next);
          if (b) for (const e of this.valueLines(b)) this.trackIf(e, trackIf);
          break;
        }
        case "track_script": {
          const b = this.needBlock(n, next);
          if (b) for (const e of this.valueLines(b)) this.trackScript(e, trackSc);
          break;
        }
        case "track_file": {
          const b = this.needBlock(n, next);
          if (b) for (const e of this.valueLines(b)) this.trackFile(e, trackFl);
          break;
        }
        case "notify_master":
        case "notify_backup":
        case "notify_fault":
        case "notify_stop":
        case "notify":
          this.noBlock(n);
          this.notify(n, notify, locs, `vrrp_sync_group ${name}`);
          break;
        case "notify_priority_changes": {
          this.noBlock(n);
          const b = this.bool(n);
          if (b === undefined) break;
          g.notifyPriorityChanges = b;
          locs["notifyPriorityChanges"] = loc(n);
          break;
        }
        default:
          if (GROUP_IGNORED.has(kw)) this.ignored(n);
          else if (GROUP_UNSUPPORTED.has(kw)) this.unsupported(n);
          else this.unknown(n, `vrrp_sync_group ${name}`);
      }
    }
    if (trackIf.length) g.trackInterface = trackIf;
    if (trackSc.length) g.trackScript = trackSc;
    if (trackFl.length) g.trackFile = trackFl;
    if (g.group === undefined || g.group.length === 0) {
      this.err(head, `vrrp_sync_group ${name}: no instances (group { ... } is missing or empty)`);
      return;
    }
    this.groups.push(g as GroupIn);
  }

  result(): ConfigInput {
    const cfg: ConfigInput = {
      vrrpScripts: this.scripts,
      vrrpInstances: this.instances,
      vrrpSyncGroups: this.groups,
    };
    if (this.trackFiles.length) cfg.trackFiles = this.trackFiles;
    if (this.lvs.groups.length) cfg.virtualServerGroups = this.lvs.groups;
    if (this.lvs.virtualServers.length) cfg.virtualServers = this.lvs.virtualServers;
    const g = this.globalDefs;
    for (const field of ["notifyFifo", "vrrpNotifyFifo"] as const) {
      const f = g[field];
      if (f && !f.path) {
        // keepalived runs a FIFO script only for a FIFO it opened
        const kw = field === "notifyFifo" ? "notify_fifo" : "vrrp_notify_fifo";
        const at = g.locs?.[`${field}.script`];
        if (at) this.warn(at, `${kw}_script without ${kw} is ignored`);
        delete g[field];
      }
    }
    if (this.sawGlobalDefs || (g.ignored?.length ?? 0) > 0) cfg.globalDefs = g;
    return cfg;
  }
}

const NOTIFY_FIELDS: Record<string, keyof NotifyIn> = {
  notify_master: "master",
  notify_backup: "backup",
  notify_fault: "fault",
  notify_stop: "stop",
  notify: "any",
  notify_master_rx_lower_pri: "masterRxLowerPri",
};

/** instance keywords with a single value, which must not carry a block */
function isInstanceScalar(kw: string): boolean {
  return [
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "unicast_src_ip",
    "mcast_src_ip",
    "dont_track_primary",
    "garp_master_delay",
    "garp_master_refresh",
    "garp_master_repeat",
    "garp_master_refresh_repeat",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "notify_priority_changes",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "down_timer_adverts",
    "notify_deleted",
    "notify_master_rx_lower_pri",
  ].includes(kw);
}

function loc(n: { file: string; line: number }): SourceLoc {
  return { file: n.file, line: n.line };
}

/**
 * Parses lexer output into the model's input shape. Never throws: problems come back as errors
 * (with the line keepalived names) and warnings.
 */
export function parseKeepalived(items: LexItem[]): ParseResult {
  const p = new Parser();
  const tree = buildTree(items, p.errors);
  for (const n of tree) {
    const kw = n.words[0];
    if (n.words[1] === undefined) continue;
    if (kw === "vrrp_script") p.laterScripts.add(n.words[1]);
    if (kw === "track_file" || kw === "vrrp_track_file") p.laterFiles.add(n.words[1]);
  }
  p.root(tree);
  return { config: p.result(), errors: p.errors, warnings: p.warnings };
}
