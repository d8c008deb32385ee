// Semantic checks on the config model, shared by every syntax (keepalived.conf, YAML/JSON, the API).
//
// The rules are keepalived 2.2.7's (vrrp_parser.c, vrrp.c: vrrp_complete_instance, check_vrid_conflicts,
// vrrp_sync.c): what keepalived's config test rejects, vigil rejects, naming the line of the keyword
// at fault. Where keepalived only warns and then changes the value ("resetting", "ignoring",
// "rounding"), the config does not do what it says, so vigil makes that an error too; where the
// change is harmless, a warning. The environment (interfaces, users) comes through `CheckEnv` so
// the checks stay pure and tests run anywhere.
import { dirname } from "node:path";
import { compareIp, familyOf, isLinkLocalV6, isMulticastIp, parseIPv6, parseIp } from "../wire/ip.ts";
import { splitQuotedEscaped } from "./keepalived/lexer.ts";
import { granularityProblem } from "./keepalived/lvs.ts";
import {
  type Checker as CheckerModel,
  type Config,
  type ConfigError,
  instanceVersion,
  type RealServer,
  realServerKey,
  type SourceLoc,
  type SourceLocs,
  type SyncGroup,
  type TrackFile,
  type TrackInterface,
  type TrackScript,
  trackFileWeights,
  type VirtualIp,
  type VirtualServer,
  type VirtualServerGroup,
  type VrrpInstance,
  virtualServerKey,
} from "./model.ts";
import { DEFAULT_SCRIPT_USER } from "./script-user.ts";

export interface CheckEnv {
  /** whether a network interface exists (default in load.ts: /sys/class/net/NAME) */
  interfaceExists: (name: string) => boolean;
  /** whether an interface is a loopback, which keepalived refuses for VRRP */
  isLoopback: (name: string) => boolean;
  /** whether a system user exists (script_user, vrrp_script user) */
  userExists: (name: string) => boolean;
  /** whether a script's executable exists and may be run (an absolute path) */
  commandExists: (path: string) => boolean;
  /** whether a directory exists (the directory of a track_file) */
  directoryExists: (path: string) => boolean;
}

export interface ValidationResult {
  errors: ConfigError[];
  warnings: ConfigError[];
}

// keepalived refuses interface names of IFNAMSIZ (16) characters or more
const IFNAMSIZ = 16;
// addresses that fit one advert on a 1500-byte link (keepalived computes this from the MTU)
const MAX_VIPS_V6 = Math.floor((1500 - 14 - 40 - 8) / 16);

/**
 * The family an instance's addresses imply, in keepalived's order of precedence for a file read top to
 * bottom: the first VIP, else the source address, else the first unicast peer.
 */
export function deriveFamily(inst: {
  virtualIpaddress?: { address: string }[];
  unicastSrcIp?: string;
  unicastPeer?: { address: string }[];
}): 4 | 6 | undefined {
  const first = inst.virtualIpaddress?.[0]?.address ?? inst.unicastSrcIp ?? inst.unicastPeer?.[0]?.address;
  return first === undefined ? undefined : (familyOf(first) ?? undefined);
}

/** The initial state keepalived aims for: the configured one, else MASTER for an address owner. */
export function wantState(inst: VrrpInstance): "MASTER" | "BACKUP" {
  return inst.state ?? (inst.priority === 255 ? "MASTER" : "BACKUP");
}

class Checker {
  readonly errors: ConfigError[] = [];
  readonly warnings: ConfigError[] = [];

  constructor(
    readonly cfg: Config,
    readonly env: CheckEnv,
    readonly file: string,
  ) {}

  private at(l: SourceLoc | undefined): SourceLoc {
    return l ?? { file: this.file, line: 0 };
  }
  err(l: SourceLoc | undefined, message: string): void {
    const a = this.at(l);
    this.errors.push({ file: a.file, line: a.line, message });
  }
  warn(l: SourceLoc | undefined, message: string): void {
    const a = this.at(l);
    this.warnings.push({ file: a.file, line: a.line, message });
  }

  /** location of a field of an object with `locs`, falling back to the object itself */
  static where(o: { loc?: SourceLoc; locs?: SourceLocs }, field?: string): SourceLoc | undefined {
    return (field !== undefined ? o.locs?.[field] : undefined) ?? o.loc;
  }

  run(): ValidationResult {
    this.globals();
    this.scripts();
    this.trackFiles();
    const names = new Set<string>();
    for (const inst of this.cfg.vrrpInstances) {
      if (names.has(inst.name)) this.err(inst.loc, `vrrp instance ${inst.name} already defined`);
      names.add(inst.name);
      this.instance(inst);
    }
    this.vridConflicts();
    this.syncGroups();
    this.lvs();
    return { errors: sortByPlace(this.errors), warnings: sortByPlace(this.warnings) };
  }

  globals(): void {
    const g = this.cfg.globalDefs;
    for (const ig of g.ignored) this.warn(ig.loc, `${ig.keyword}: has no effect in vigil (ignored)`);
    if (g.scriptUser !== undefined && !this.env.userExists(g.scriptUser)) {
      this.err(Checker.where(g, "scriptUser"), `script_user: user '${g.scriptUser}' does not exist`);
    }
    for (const [field, kw] of [
      ["notifyFifo", "notify_fifo"],
      ["vrrpNotifyFifo", "vrrp_notify_fifo"],
    ] as const) {
      const f = g[field];
      if (f?.user !== undefined && !this.env.userExists(f.user))
        this.err(Checker.where(g, field), `${kw}: user '${f.user}' does not exist`);
    }
    for (const [field, kw, fam] of [
      ["vrrpMcastGroup4", "vrrp_mcast_group4", 4],
      ["vrrpMcastGroup6", "vrrp_mcast_group6", 6],
    ] as const) {
      const a = g[field];
      if (a === undefined) continue;
      if (familyOf(a) !== fam) this.err(Checker.where(g, field), `${kw}: ${a} is not IPv${fam}`);
      else if (!isMulticastIp(a)) this.err(Checker.where(g, field), `${kw}: ${a} is not multicast`);
    }
    const scripts = this.cfg.vrrpScripts;
    const notifies = [...this.cfg.vrrpInstances, ...this.cfg.vrrpSyncGroups].flatMap((o) =>
      Object.entries(o.notify)
        .filter((e): e is [string, string] => e[1] !== undefined)
        .map(([k, c]) => ({ o, k, c })),
    );
    // only absolute paths: a bare name is looked up in PATH when the script runs
    const missing = (cmd: string): string | undefined => {
      const exe = splitQuotedEscaped(cmd).words[0];
      return exe?.startsWith("/") && !this.env.commandExists(exe) ? exe : undefined;
    };
    for (const s of scripts) {
      const exe = missing(s.script);
      // keepalived disables a tracking script it cannot find ("not found/accessible"), and so would
      // the instance lose the check
      if (exe)
        this.err(
          Checker.where(s, "script"),
          `vrrp_script ${s.name}: ${exe} does not exist or is not executable`,
        );
    }
    for (const { o, k, c } of notifies) {
      const exe = missing(c);
      if (exe)
        this.warn(
          Checker.where(o, `notify.${k}`),
          `notify script ${exe} does not exist or is not executable`,
        );
    }
    if ((scripts.length > 0 || notifies.length > 0) && !g.enableScriptSecurity) {
      const first =
        scripts[0]?.loc ??
        (notifies[0] ? Checker.where(notifies[0].o, `notify.${notifies[0].k}`) : undefined);
      // keepalived still runs the scripts (its config test exits with the "security" status 6)
      this.warn(
        first,
        "scripts are configured but enable_script_security is not set (keepalived reports a SECURITY VIOLATION)",
      );
    }
    if (g.enableScriptSecurity && g.scriptUser === undefined && !this.env.userExists(DEFAULT_SCRIPT_USER)) {
      // keepalived then drops every script that has no user of its own
      for (const s of scripts) {
        if (s.user === undefined) {
          this.err(
            Checker.where(s, "end"),
            `vrrp_script ${s.name}: no user to run it as (script_user is not set and ${DEFAULT_SCRIPT_USER} does not exist)`,
          );
        }
      }
      for (const { o, k } of notifies) {
        this.err(
          Checker.where(o, `notify.${k}`),
          `notify script: no user to run it as (script_user is not set and ${DEFAULT_SCRIPT_USER} does not exist)`,
        );
      }
    }
  }

  scripts(): void {
    const seen = new Set<string>();
    const used = new Set<string>();
    for (const i of this.cfg.vrrpInstances) for (const t of i.trackScript) used.add(t.name);
    for (const g of this.cfg.vrrpSyncGroups) for (const t of g.trackScript) used.add(t.name);
    for (const s of this.cfg.vrrpScripts) {
      // keepalived silently uses the first of two scripts with one name; the second is a mistake
      if (seen.has(s.name)) this.err(s.loc, `vrrp_script ${s.name} already defined`);
      seen.add(s.name);
      if (s.user !== undefined && !this.env.userExists(s.user)) {
        this.err(Checker.where(s, "user"), `vrrp_script ${s.name}: user '${s.user}' does not exist`);
      }
      if (!used.has(s.name))
        this.warn(s.loc, `vrrp_script ${s.name} is not used by any instance or sync group`);
    }
  }

  trackFiles(): void {
    const seen = new Set<string>();
    const used = new Set<string>();
    for (const o of [...this.cfg.vrrpInstances, ...this.cfg.vrrpSyncGroups])
      for (const t of o.trackFile) used.add(t.name);
    for (const f of this.cfg.trackFiles) {
      if (seen.has(f.name)) this.err(f.loc, `track_file ${f.name} already defined`);
      seen.add(f.name);
      // keepalived drops a track file whose directory does not exist ("does not exist - removing")
      const dir = dirname(f.file);
      if (!this.env.directoryExists(dir))
        this.err(Checker.where(f, "file"), `track_file ${f.name}: directory ${dir} does not exist`);
      if (!used.has(f.name))
        this.warn(f.loc, `track_file ${f.name} is not used by any instance or sync group`);
    }
  }

  iface(name: string, l: SourceLoc | undefined, what: string, forVrrp: boolean): void {
    if (name.length >= IFNAMSIZ || name.includes("/") || name === "." || name === "..") {
      this.err(l, `${what}: '${name}' is not a valid interface name`);
      return;
    }
    if (!this.env.interfaceExists(name)) {
      const msg = `${what}: interface ${name} does not exist`;
      if (this.cfg.globalDefs.dynamicInterfaces) this.warn(l, msg);
      else this.err(l, msg);
      return;
    }
    if (forVrrp && this.env.isLoopback(name))
      this.err(l, `${what}: cannot use a loopback interface (${name}) for VRRP`);
  }

  instance(inst: VrrpInstance): void {
    const name = `vrrp_instance ${inst.name}`;
    const w = (f: string) => Checker.where(inst, f);
    const strict = this.cfg.globalDefs.vrrpStrict;
    const version = instanceVersion(this.cfg, inst);
    const unicast = inst.unicastPeer.length > 0;
    // keepalived's wantstate: an unset state follows the priority (255: MASTER)
    const want = wantState(inst);

    this.iface(inst.interface, w("interface"), name, true);

    // one family per instance, fixed by the first address (deriveFamily / the keepalived parser)
    const fam = inst.family;
    for (const v of inst.virtualIpaddress) {
      if (familyOf(v.address) !== fam) {
        this.err(
          v.loc ?? w("virtualIpaddress"),
          `${name}: address family of ${v.address} does not match the instance (IPv${fam})`,
        );
      }
    }
    if (inst.unicastSrcIp !== undefined && familyOf(inst.unicastSrcIp) !== fam) {
      this.err(
        w("unicastSrcIp"),
        `${name}: source address ${inst.unicastSrcIp} is not IPv${fam} like the instance`,
      );
    }
    for (const p of inst.unicastPeer) {
      if (familyOf(p.address) !== fam)
        this.err(
          p.loc ?? w("unicastPeer"),
          `${name}: unicast peer ${p.address} is not IPv${fam} like the instance`,
        );
      if (p.minTtl !== undefined && p.maxTtl !== undefined && p.minTtl > p.maxTtl) {
        this.err(
          p.loc ?? w("unicastPeer"),
          `${name}: min_ttl ${p.minTtl} > max_ttl ${p.maxTtl}: every advert would be dropped`,
        );
      }
    }

    if (inst.version === 2 && fam === 6)
      this.err(w("version"), `${name}: VRRP version 2 does not support IPv6`);

    // advert interval: v2 carries whole seconds (8 bits), v3 centiseconds (12 bits)
    const adv = inst.advertInt;
    if (version === 2) {
      if (!Number.isInteger(adv)) {
        this.err(
          w("advertInt"),
          `${name}: VRRPv2 advertisement interval ${adv}s must be a whole number of seconds`,
        );
      }
    } else if (adv > 40.95) {
      this.err(
        w("advertInt"),
        `${name}: VRRPv3 advertisement interval ${adv}s is out of range (at most 40.95s)`,
      );
    } else if (Math.abs(Math.round(adv * 100) - adv * 100) > 1e-6) {
      this.err(w("advertInt"), `${name}: VRRPv3 advertisement interval ${adv}s must be in units of 10ms`);
    }

    if (inst.virtualIpaddress.length === 0)
      this.err(inst.loc, `${name}: no VIP specified (virtual_ipaddress); at least one is required`);
    if (fam === 6 && inst.virtualIpaddress.length > MAX_VIPS_V6) {
      this.err(
        w("virtualIpaddress"),
        `${name}: ${inst.virtualIpaddress.length} VIPs do not fit in one advert (at most ${MAX_VIPS_V6})`,
      );
    }

    const auth = inst.authentication;
    if (auth) {
      const l = w("authentication");
      if (strict) this.err(l, `${name}: strict mode (vrrp_strict) does not support authentication`);
      else if (version === 3) this.err(l, `${name}: VRRP version 3 does not support authentication`);
      else if (auth.pass === "")
        this.err(l, `${name}: authentication specified but no password (auth_pass) given`);
      else if (fam === 6 && auth.type === "AH")
        this.err(l, `${name}: AH authentication cannot be used with IPv6`);
      else if (auth.type === "AH" && want === "MASTER" && inst.priority !== 255) {
        this.err(w("state"), `${name}: initial state MASTER is incompatible with AH authentication`);
      } else if (auth.type === "AH") {
        // AH adverts are IPsec-wrapped (IP protocol 51); vigil cannot send or verify them, and
        // running without would split-brain against AH peers: refuse rather than pretend
        this.err(l, `${name}: auth_type AH is not supported by vigil (use PASS, or no authentication)`);
      }
    }

    if (strict && unicast)
      this.err(w("unicastPeer"), `${name}: unicast peers are not supported in strict mode (vrrp_strict)`);
    if (inst.notify.deleted !== undefined && !inst.notifyDeleted)
      this.err(
        w("notify.deleted"),
        `${name}: a notify_deleted script needs notify_deleted (notifyDeleted: true)`,
      );
    if (inst.mcastDstIp !== undefined) {
      const a = inst.mcastDstIp;
      if (familyOf(a) !== fam)
        this.err(w("mcastDstIp"), `${name}: mcast_dst_ip ${a} is not IPv${fam} like the instance`);
      else if (!isMulticastIp(a) || (fam === 6 && !/^ff[0-9a-f]2:/i.test(a)))
        this.err(
          w("mcastDstIp"),
          `${name}: mcast_dst_ip ${a} is not a${fam === 6 ? " link-local" : ""} multicast address`,
        );
    }
    // keepalived "resets" these in strict mode and reports it, which fails its config test
    const downAdverts = inst.downTimerAdverts ?? this.cfg.globalDefs.vrrpDownTimerAdverts;
    if (strict && downAdverts !== 3)
      this.err(
        inst.downTimerAdverts !== undefined
          ? w("downTimerAdverts")
          : Checker.where(this.cfg.globalDefs, "vrrpDownTimerAdverts"),
        `${name}: down_timer_adverts ${downAdverts} is incompatible with strict mode (vrrp_strict)`,
      );
    if (strict && inst.lowerPrioNoAdvert === false)
      this.err(w("lowerPrioNoAdvert"), `${name}: strict mode (vrrp_strict) requires lower_prio_no_advert`);
    if (strict && inst.higherPrioSendAdvert === true)
      this.err(
        w("higherPrioSendAdvert"),
        `${name}: strict mode (vrrp_strict) requires higher_prio_send_advert to be off`,
      );
    if (strict && inst.state !== undefined && (inst.state === "MASTER") !== (inst.priority === 255)) {
      this.err(
        w("state") ?? w("priority"),
        `${name}: in strict mode, state MASTER must match being the address owner (priority 255)`,
      );
    }

    if (inst.nopreempt && inst.priority === 255) {
      this.err(w("nopreempt"), `${name}: nopreempt is incompatible with priority 255 (address owner)`);
    } else if (inst.nopreempt && want === "MASTER") {
      this.err(w("nopreempt"), `${name}: nopreempt does not work with initial state MASTER`);
    }
    if (inst.preemptDelay > 0) {
      if (want === "MASTER")
        this.err(w("preemptDelay"), `${name}: preempt_delay does not work with initial state MASTER`);
      else if (strict)
        this.err(w("preemptDelay"), `${name}: preempt_delay is incompatible with strict mode (vrrp_strict)`);
      else if (inst.nopreempt)
        this.err(w("preemptDelay"), `${name}: preempt_delay is incompatible with nopreempt`);
    }

    // RFC 5798: an IPv6 advert's first address is the link-local one
    const v0 = inst.virtualIpaddress[0];
    if (fam === 6 && !unicast && v0 && familyOf(v0.address) === 6 && !isLinkLocalV6(parseIPv6(v0.address)!)) {
      const msg = `${name}: the first IPv6 VIP should be link-local (fe80::/10)`;
      if (strict) this.err(v0.loc, msg.replace("should", "must"));
      else this.warn(v0.loc, msg);
    }

    for (const v of [...inst.virtualIpaddress, ...inst.virtualIpaddressExcluded]) this.vip(inst, v);

    this.tracking(name, inst.trackInterface, inst.trackScript, inst.trackFile);
    for (const t of inst.trackInterface) {
      // the own interface is always tracked; keepalived drops such an entry (and its weight)
      if (t.name === inst.interface) {
        this.err(
          t.loc,
          `${name}: track_interface ${t.name} is the instance's own interface (always tracked)`,
        );
      }
    }
    // keepalived drops weighted tracking of an address owner, and of sync group members
    const owner = inst.priority === 255;
    const inGroup = this.cfg.vrrpSyncGroups.some((g) => g.group.includes(inst.name));
    if (owner || inGroup) {
      const why = owner ? "priority 255 (address owner)" : "it is in a sync group";
      for (const t of inst.trackInterface) {
        if (t.weight !== 0)
          this.err(
            t.loc,
            `${name}: weighted track_interface ${t.name} is ignored because ${why}; use weight 0`,
          );
      }
      for (const t of inst.trackScript) {
        if (this.scriptWeight(t) !== 0)
          this.err(t.loc, `${name}: weighted track_script ${t.name} is ignored because ${why}; use weight 0`);
      }
      for (const t of inst.trackFile) {
        if (trackFileWeights(this.cfg, t).weight !== 0)
          this.err(t.loc, `${name}: weighted track_file ${t.name} is ignored because ${why}; use weight 0`);
      }
    }
  }

  scriptWeight(t: TrackScript): number {
    return t.weight ?? this.cfg.vrrpScripts.find((s) => s.name === t.name)?.weight ?? 0;
  }

  vip(inst: VrrpInstance, v: VirtualIp): void {
    const name = `vrrp_instance ${inst.name}`;
    const fam = familyOf(v.address);
    if (fam === 6) {
      if (v.brd !== undefined)
        this.err(v.loc, `${name}: ${v.address}: a broadcast address makes no sense for IPv6`);
      // keepalived takes "global" (scope 0) as no scope at all
      if (v.scope !== undefined && v.scope !== "global")
        this.err(v.loc, `${name}: ${v.address}: cannot specify scope for IPv6 addresses`);
      if (v.label !== undefined)
        this.err(v.loc, `${name}: ${v.address}: cannot specify label for IPv6 addresses`);
    } else if (v.brd !== undefined) {
      const plen = v.prefixLen ?? 32;
      if (v.brd === "+" || v.brd === "-") {
        if (plen > 30)
          this.err(v.loc, `${name}: ${v.address}: prefix length ${plen} too long for a broadcast address`);
      } else if (familyOf(v.brd) !== 4)
        this.err(v.loc, `${name}: ${v.address}: invalid broadcast address '${v.brd}'`);
    }
    if (v.dev !== undefined) this.iface(v.dev, v.loc, `${name}: ${v.address} dev`, false);
  }

  tracking(owner: string, ifs: TrackInterface[], scripts: TrackScript[], files: TrackFile[]): void {
    const seenFl = new Set<string>();
    for (const t of files) {
      if (seenFl.has(t.name)) this.err(t.loc, `${owner}: duplicate track_file ${t.name}`);
      seenFl.add(t.name);
      if (!this.cfg.trackFiles.some((f) => f.name === t.name))
        this.err(t.loc, `${owner}: track file ${t.name} not found (no track_file ${t.name})`);
    }
    const seenIf = new Set<string>();
    for (const t of ifs) {
      if (seenIf.has(t.name)) this.err(t.loc, `${owner}: duplicate track_interface ${t.name}`);
      seenIf.add(t.name);
      this.iface(t.name, t.loc, `${owner}: track_interface`, false);
    }
    const seenSc = new Set<string>();
    for (const t of scripts) {
      if (seenSc.has(t.name)) this.err(t.loc, `${owner}: duplicate track_script ${t.name}`);
      seenSc.add(t.name);
      if (!this.cfg.vrrpScripts.some((s) => s.name === t.name))
        this.err(t.loc, `${owner}: track script ${t.name} not found (no vrrp_script ${t.name})`);
    }
  }

  vridConflicts(): void {
    const list = this.cfg.vrrpInstances;
    for (let j = 1; j < list.length; j++) {
      const b = list[j]!;
      for (let i = 0; i < j; i++) {
        const a = list[i]!;
        if (a.name === b.name || a.family !== b.family || a.virtualRouterId !== b.virtualRouterId) continue;
        const ua = a.unicastPeer.length > 0;
        const ub = b.unicastPeer.length > 0;
        // unicast and multicast are separate VRID spaces
        if (ua !== ub || a.interface !== b.interface) continue;
        if (ua) {
          // unicast instances clash only when they talk from the same address to a common peer
          if (
            a.unicastSrcIp === undefined ||
            b.unicastSrcIp === undefined ||
            a.unicastSrcIp !== b.unicastSrcIp
          )
            continue;
          if (!a.unicastPeer.some((p) => b.unicastPeer.some((q) => q.address === p.address))) continue;
        }
        this.err(
          Checker.where(b, "virtualRouterId"),
          `vrrp_instance ${b.name}: VRID ${b.virtualRouterId} is already used by ${a.name} with IPv${b.family} on ${b.interface}`,
        );
        break;
      }
    }
  }

  lvs(): void {
    new LvsChecker(this, this.cfg).run();
  }

  syncGroups(): void {
    const names = new Set<string>();
    const member = new Map<string, string>();
    for (const g of this.cfg.vrrpSyncGroups) {
      if (names.has(g.name)) {
        this.err(g.loc, `vrrp sync group ${g.name} already defined`);
        continue;
      }
      names.add(g.name);
      this.group(g, member);
    }
  }

  group(g: SyncGroup, member: Map<string, string>): void {
    const name = `vrrp_sync_group ${g.name}`;
    let count = 0;
    // keepalived's sync state: an address owner (MASTER, priority 255) followed by a BACKUP member cannot work
    let state: "INIT" | "MASTER" | "BACKUP" = "INIT";
    g.group.forEach((iname, idx) => {
      const l = Checker.where(g, `group.${idx}`);
      const inst = this.cfg.vrrpInstances.find((i) => i.name === iname);
      if (!inst) {
        this.err(l, `${name}: virtual router ${iname} does not exist`);
        return;
      }
      const other = member.get(iname);
      if (other !== undefined) {
        this.err(l, `${name}: virtual router ${iname} is already in sync group ${other}`);
        return;
      }
      member.set(iname, g.name);
      count++;
      if (state === "MASTER" && wantState(inst) === "BACKUP") {
        this.err(l, `${name}: some members are address owners and some are not; this cannot work`);
      }
      if (state !== "BACKUP")
        state = wantState(inst) === "MASTER" && inst.priority === 255 ? "MASTER" : "BACKUP";
    });
    if (count === 1) this.err(g.loc, `${name}: only one instance; a sync group needs at least two`);
    this.tracking(name, g.trackInterface, g.trackScript, g.trackFile);
    for (const k of ["deleted", "masterRxLowerPri"] as const) {
      if (g.notify[k] !== undefined)
        this.err(Checker.where(g, `notify.${k}`), `${name}: notify.${k} is for instances only`);
    }
    // keepalived: "Cannot have weighted track file with member having priority 255"
    const ownerMember = g.group.some(
      (m) => this.cfg.vrrpInstances.find((i) => i.name === m)?.priority === 255,
    );
    if (ownerMember) {
      for (const t of g.trackFile) {
        if (trackFileWeights(this.cfg, t).weight !== 0)
          this.err(
            t.loc,
            `${name}: weighted track_file ${t.name} with a member of priority 255; use weight 0`,
          );
      }
    }
  }
}

/**
 * The load-balancing checks (keepalived's check_parser.c end handlers and validate_check_config).
 * keepalived "corrects" most of these (drops the real server, resets the port, lowers the quorum)
 * and reports it, which fails its config test; vigil refuses them at the line at fault.
 */
class LvsChecker {
  constructor(
    readonly c: Checker,
    readonly cfg: Config,
  ) {}

  run(): void {
    this.scripts();
    const groups = new Map<string, VirtualServerGroup>();
    for (const g of this.cfg.virtualServerGroups) {
      if (groups.has(g.name)) this.c.err(g.loc, `virtual_server_group ${g.name} already defined`);
      else groups.set(g.name, g);
      this.group(g);
    }
    const seen = new Map<string, VirtualServer>();
    for (const vs of this.cfg.virtualServers) {
      const key = virtualServerKey(vs);
      const first = seen.get(key);
      // keepalived keeps both and programs the kernel twice; the second silently wins
      if (first)
        this.c.err(
          vs.loc,
          `virtual server ${key} already defined${first.loc ? ` (line ${first.loc.line})` : ""}`,
        );
      else seen.set(key, vs);
      this.virtualServer(vs, vs.group !== undefined ? groups.get(vs.group) : undefined);
    }
  }

  /**
   * The load-balancing scripts (quorum_up/down, notify_up/down, MISC_CHECK) under the same rules as
   * the VRRP ones in Checker.globals(): a missing executable is a warning (keepalived runs without
   * it), no script security is a warning (keepalived's test exits 6), no user to run a MISC_CHECK
   * as is an error (keepalived drops the checker).
   */
  scripts(): void {
    const g = this.cfg.globalDefs;
    const list: { cmd: string; at: SourceLoc | undefined; misc?: CheckerModel }[] = [];
    for (const vs of this.cfg.virtualServers) {
      if (vs.quorumUp) list.push({ cmd: vs.quorumUp, at: Checker.where(vs, "quorumUp") });
      if (vs.quorumDown) list.push({ cmd: vs.quorumDown, at: Checker.where(vs, "quorumDown") });
      for (const rs of vs.realServers) {
        if (rs.notifyUp) list.push({ cmd: rs.notifyUp, at: Checker.where(rs, "notifyUp") });
        if (rs.notifyDown) list.push({ cmd: rs.notifyDown, at: Checker.where(rs, "notifyDown") });
        for (const ch of rs.checkers)
          if (ch.type === "MISC_CHECK")
            list.push({ cmd: ch.miscPath, at: Checker.where(ch, "miscPath") ?? rs.loc, misc: ch });
      }
    }
    if (list.length === 0) return;
    for (const s of list) {
      const exe = splitQuotedEscaped(s.cmd).words[0];
      if (exe?.startsWith("/") && !this.c.env.commandExists(exe))
        this.c.warn(s.at, `script ${exe} does not exist or is not executable`);
    }
    const vrrpScripts =
      this.cfg.vrrpScripts.length > 0 ||
      [...this.cfg.vrrpInstances, ...this.cfg.vrrpSyncGroups].some((o) =>
        Object.values(o.notify).some((c) => c !== undefined),
      );
    // the VRRP check already warned once for the whole file
    if (!g.enableScriptSecurity && !vrrpScripts)
      this.c.warn(
        list[0]!.at,
        "scripts are configured but enable_script_security is not set (keepalived reports a SECURITY VIOLATION)",
      );
    if (g.enableScriptSecurity && g.scriptUser === undefined && !this.c.env.userExists(DEFAULT_SCRIPT_USER)) {
      for (const s of list) {
        if (s.misc?.type === "MISC_CHECK" && s.misc.user !== undefined) continue;
        this.c.err(
          s.at,
          "script: no user to run it as (script_user is not set and keepalived_script does not exist)",
        );
      }
    }
  }

  group(g: VirtualServerGroup): void {
    let v4 = false;
    let v6 = false;
    let fwmNoFamily = false;
    for (const e of g.entries) {
      if (e.fwmark !== undefined) {
        if (e.family === "inet") v4 = true;
        else if (e.family === "inet6") v6 = true;
        else fwmNoFamily = true;
        continue;
      }
      if (familyOf(e.address!) === 6) v6 = true;
      else v4 = true;
      if (e.addressEnd !== undefined) {
        const a = parseIp(e.address!);
        const b = parseIp(e.addressEnd);
        if (!a || !b || a.length !== b.length)
          this.c.err(
            e.loc ?? g.loc,
            `virtual_server_group ${g.name}: range ${e.address}-${e.addressEnd} mixes families`,
          );
        else if (compareIp(a, b) > 0)
          this.c.err(
            e.loc ?? g.loc,
            `virtual_server_group ${g.name}: range end ${e.addressEnd} is below ${e.address}`,
          );
      }
      if (e.family !== undefined)
        this.c.err(e.loc ?? g.loc, `virtual_server_group ${g.name}: family applies to fwmark entries only`);
    }
    if (v4 && v6 && fwmNoFamily)
      this.c.err(
        Checker.where(g, "end"),
        `virtual_server_group ${g.name}: IPv4, IPv6 and a fwmark without family (say fwmark N inet|inet6)`,
      );
  }

  /** The family of a service: its address, else ip_family, else its group's addresses, else servers. */
  family(vs: VirtualServer, g: VirtualServerGroup | undefined): 4 | 6 | undefined {
    if (vs.address !== undefined) return familyOf(vs.address) ?? undefined;
    if (vs.ipFamily !== undefined) return vs.ipFamily === "inet6" ? 6 : 4;
    for (const e of g?.entries ?? []) {
      if (e.address !== undefined) return familyOf(e.address) ?? undefined;
      if (e.family !== undefined) return e.family === "inet6" ? 6 : 4;
    }
    return undefined;
  }

  virtualServer(vs: VirtualServer, g: VirtualServerGroup | undefined): void {
    const key = virtualServerKey(vs);
    const name = `virtual_server ${key}`;
    const w = (f: string) => Checker.where(vs, f);
    if (vs.group !== undefined && !g) {
      // keepalived reads it and never programs it (the group does not exist)
      this.c.err(vs.loc, `${name}: virtual_server_group ${vs.group} is not defined`);
    }
    const hasAddrs = vs.address !== undefined || (g?.entries.some((e) => e.address !== undefined) ?? false);
    const onlyFwmarks = vs.fwmark !== undefined || (g !== undefined && !hasAddrs);
    const usesFwmark = vs.fwmark !== undefined || (g?.entries.some((e) => e.fwmark !== undefined) ?? false);
    if (
      vs.address !== undefined &&
      vs.ipFamily !== undefined &&
      (familyOf(vs.address) === 6) !== (vs.ipFamily === "inet6")
    )
      this.c.err(w("ipFamily"), `${name}: ip_family ${vs.ipFamily} conflicts with the address`);
    if (vs.realServers.length === 0) this.c.err(vs.loc, `${name}: no real servers (real_server { ... })`);
    if (usesFwmark && vs.haSuspend)
      this.c.err(w("haSuspend"), `${name}: ha_suspend cannot be used with fwmarks`);
    // keepalived 2.2.7 matches only a virtual server's own address (check_api.c addr_matches returns
    // false for a group), so a group's checkers would stay suspended for ever
    else if (vs.group !== undefined && vs.haSuspend)
      this.c.err(w("haSuspend"), `${name}: ha_suspend needs the virtual server's own address, not a group`);
    if (hasAddrs) {
      if (vs.protocol === undefined)
        this.c.err(
          vs.loc,
          `${name}: no protocol set (protocol TCP|UDP|SCTP); the kernel would default to UDP`,
        );
      if (vs.ops && vs.protocol !== undefined && vs.protocol !== "UDP")
        this.c.err(w("ops"), `${name}: one-packet scheduling (ops) requires protocol UDP`);
    }
    if (onlyFwmarks && vs.protocol !== undefined)
      this.c.err(w("protocol"), `${name}: a fwmark service has no protocol (it would be ignored)`);
    if (vs.persistenceTimeout === undefined) {
      const zeroPort =
        (vs.address !== undefined && !vs.port) ||
        (g?.entries.some((e) => e.address !== undefined && !e.port) ?? false);
      if (zeroPort)
        this.c.err(vs.loc, `${name}: port 0 is only valid for persistent services (set persistence_timeout)`);
    }
    for (const [flag, sched] of [
      ["shPort", "sh"],
      ["shFallback", "sh"],
      ["mhPort", "mh"],
      ["mhFallback", "mh"],
    ] as const) {
      if (vs[flag] && vs.lbAlgo !== sched)
        this.c.err(
          w(flag),
          `${name}: ${flag} only applies to the ${sched} scheduler (lb_algo is ${vs.lbAlgo})`,
        );
    }
    const fam = this.family(vs, g);
    if (vs.persistenceGranularity !== undefined) {
      // without a known family keepalived goes by the value's form, as the parser does
      const gfam = fam ?? (vs.persistenceGranularity.includes(".") ? 4 : 6);
      const msg = granularityProblem(vs.persistenceGranularity, gfam);
      if (msg) this.c.err(w("persistenceGranularity"), `${name}: persistence_granularity ${msg}`);
    }

    // real servers: family, duplicates, ports, weights
    const keys = new Map<string, RealServer>();
    let weightSum = 0;
    let svcFam = fam;
    for (const rs of vs.realServers) {
      const method = rs.lvsMethod ?? vs.lbKind;
      const rname = `${name}: real_server ${rs.address}${rs.port ? ` ${rs.port}` : ""}`;
      const rfam = familyOf(rs.address);
      // IPVS tunnels may carry another family; every other method needs the service's
      if (method !== "TUN") {
        if (svcFam === undefined) svcFam = rfam ?? undefined;
        else if (rfam !== svcFam)
          this.c.err(
            Checker.where(rs, "end"),
            `${rname}: address family (IPv${rfam}) does not match the virtual server (IPv${svcFam}); only TUN may mix families`,
          );
      }
      const k = realServerKey(vs, rs);
      if (keys.has(k)) this.c.err(rs.loc, `${name}: real server ${k} is duplicated`);
      else keys.set(k, rs);
      weightSum += rs.weight ?? vs.weight;
      if (method !== "NAT" && rs.port) {
        if (vs.fwmark !== undefined)
          this.c.err(
            rs.loc,
            `${rname}: a fwmark service with ${method} forwarding takes no real server port`,
          );
        else if (vs.address !== undefined && vs.port && rs.port !== vs.port)
          this.c.err(
            rs.loc,
            `${rname}: port ${rs.port} differs from the virtual server's ${vs.port}; only NAT can change ports`,
          );
        else if (g) {
          for (const e of g.entries) {
            if (e.fwmark !== undefined)
              this.c.err(
                rs.loc,
                `${rname}: group ${g.name} has a fwmark, ${method} forwarding takes no real server port`,
              );
            else if (e.port && e.port !== rs.port)
              this.c.err(
                rs.loc,
                `${rname}: port ${rs.port} differs from group ${g.name}'s port ${e.port}; only NAT can change ports`,
              );
            else continue;
            break;
          }
        }
      }
      this.realServer(vs, rs, rname, svcFam);
    }
    const ss = vs.sorryServer;
    if (ss) {
      const method = vs.sorryServerLvsMethod ?? vs.lbKind;
      const sfam = familyOf(ss.address);
      if (method !== "TUN" && svcFam !== undefined && sfam !== svcFam)
        this.c.err(
          w("end") ?? ss.loc,
          `${name}: sorry_server ${ss.address} is IPv${sfam}, the virtual server IPv${svcFam}; only TUN may mix families`,
        );
      if (method !== "NAT" && ss.port) {
        if (vs.fwmark !== undefined || usesFwmark)
          this.c.err(
            ss.loc ?? w("sorryServer"),
            `${name}: a fwmark service with ${method} forwarding takes no sorry server port`,
          );
        else if (vs.port && ss.port !== vs.port)
          this.c.err(
            ss.loc ?? w("sorryServer"),
            `${name}: sorry server port ${ss.port} differs from the virtual server's ${vs.port}; only NAT can change ports`,
          );
      }
    }
    if (vs.realServers.length > 0 && vs.quorum > weightSum)
      this.c.err(
        w("quorum"),
        `${name}: quorum ${vs.quorum} exceeds the total weight of the real servers (${weightSum}); the service could never be up`,
      );
    else if (vs.hysteresis >= vs.quorum)
      this.c.err(w("hysteresis"), `${name}: hysteresis ${vs.hysteresis} must be below quorum ${vs.quorum}`);
  }

  realServer(vs: VirtualServer, rs: RealServer, rname: string, fam: 4 | 6 | undefined): void {
    rs.checkers.forEach((ch, i) => {
      this.checker(vs, rs, ch, `${rname}: ${ch.type}`, Checker.where(rs, `checkers.${i}`) ?? ch.loc, fam);
    });
  }

  /**
   * Where a check's packets come from. bindto/bind_port are applied (a socket's local address and
   * port). bind_if (SO_BINDTODEVICE) and fwmark (SO_MARK) are applied by TCP_CHECK, which connects
   * through ffi/ for them; the other checkers' sockets (Bun's, node:tls) cannot set those options, so
   * there they are refused rather than silently dropped. keepalived's PING_CHECK itself ignores all
   * four (check_ping.c opens its socket without them): vigil does the same and says so.
   */
  checkerSource(
    ch: Exclude<CheckerModel, { type: "MISC_CHECK" }>,
    name: string,
    l: (f: string) => SourceLoc | undefined,
  ): void {
    const set = (
      [
        ["bindto", ch.bindto],
        ["bind_port", ch.bindPort],
        ["bind_if", ch.bindIf],
        ["fwmark", ch.fwmark],
      ] as const
    ).filter(([, v]) => v !== undefined);
    const field = { bindto: "bindto", bind_port: "bindPort", bind_if: "bindIf", fwmark: "fwmark" } as const;
    for (const [kw] of set) {
      if (ch.type === "PING_CHECK")
        this.c.warn(l(field[kw]), `${name}: ${kw} is ignored (keepalived's PING_CHECK ignores it too)`);
      else if (ch.type === "TCP_CHECK") continue;
      else if (kw === "bind_if")
        this.c.err(
          l(field[kw]),
          `${name}: bind_if is not supported by vigil for ${ch.type} (TCP_CHECK only)`,
        );
      else if (kw === "fwmark")
        this.c.err(l(field[kw]), `${name}: fwmark is not supported by vigil for ${ch.type} (TCP_CHECK only)`);
    }
  }

  checker(
    _vs: VirtualServer,
    rs: RealServer,
    ch: CheckerModel,
    name: string,
    at: SourceLoc | undefined,
    _fam: 4 | 6 | undefined,
  ): void {
    const l = (f: string) => Checker.where(ch, f) ?? at;
    if (ch.type !== "MISC_CHECK") {
      if (
        ch.connectIp !== undefined &&
        ch.bindto !== undefined &&
        familyOf(ch.connectIp) !== familyOf(ch.bindto)
      )
        this.c.err(
          l("bindto"),
          `${name}: bindto ${ch.bindto} and connect_ip ${ch.connectIp} are different families`,
        );
      this.checkerSource(ch, name, l);
      const dst = parseIp(ch.connectIp ?? rs.address);
      if (dst && dst.length === 16 && isLinkLocalV6(dst) && ch.bindIf === undefined)
        this.c.err(at, `${name}: the link-local address ${ch.connectIp ?? rs.address} needs bind_if`);
    }
    if (ch.type === "UDP_CHECK" && ch.minReplyLength !== undefined && ch.maxReplyLength !== undefined) {
      if (ch.minReplyLength > ch.maxReplyLength)
        this.c.err(
          l("maxReplyLength"),
          `${name}: min_reply_length ${ch.minReplyLength} > max_reply_length ${ch.maxReplyLength}: the check would always fail`,
        );
    }
    if (ch.type === "MISC_CHECK" && ch.user !== undefined && !this.c.env.userExists(ch.user))
      this.c.err(l("user"), `${name}: user '${ch.user}' does not exist`);
  }
}

/** Problems in reading order: files in order of first mention, lines ascending within a file. */
export function sortByPlace(list: ConfigError[]): ConfigError[] {
  const order = new Map<string, number>();
  for (const e of list) if (!order.has(e.file)) order.set(e.file, order.size);
  return list
    .map((e, i) => ({ e, i }))
    .sort((a, b) => order.get(a.e.file)! - order.get(b.e.file)! || a.e.line - b.e.line || a.i - b.i)
    .map((x) => x.e);
}

/** Runs every semantic check; `file` locates problems in configs without source locations. */
export function validateConfig(cfg: Config, env: CheckEnv, file = "<config>"): ValidationResult {
  return new Checker(cfg, env, file).run();
}
