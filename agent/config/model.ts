// The one config model. keepalived.conf, YAML/JSON and (later) the gRPC ApplyConfig message all
// convert into this shape; nothing else reads raw config. Field names follow keepalived's keywords
// in camelCase so an operator finds them by name. Durations are in seconds, as in keepalived.conf.
import { z } from "zod";
import { canonicalIp, familyOf } from "../wire/ip.ts";
import { VRRP_GROUP_V4, VRRP_GROUP_V6 } from "../wire/vrrp.ts";

/** Where a definition came from, for error messages ("FILE:LINE: ..."). */
export const SourceLoc = z.object({ file: z.string(), line: z.number().int().nonnegative() });
export type SourceLoc = z.infer<typeof SourceLoc>;

/**
 * Where each setting of an object came from, keyed by the model field name (nested as "a.b", list items
 * as "group.1"; "end" is the closing brace of a keepalived.conf block). Filled by the keepalived.conf
 * and YAML loaders so semantic checks, which run on the model, can name the line of the offending
 * keyword; absent for configs built in code.
 */
export const SourceLocs = z.record(z.string(), SourceLoc);
export type SourceLocs = z.infer<typeof SourceLocs>;

const ipAddress = z.string().refine((s) => familyOf(s) !== null, { message: "not an IP address" });

const scriptCommand = z.string().min(1);

export const GarpSettings = z.object({
  /** seconds after becoming master before the second burst of GARP/NA (vrrp_garp_master_delay) */
  masterDelay: z.number().min(0).max(1000).default(5),
  /** GARP/NA sent per burst (vrrp_garp_master_repeat) */
  masterRepeat: z.number().int().min(1).max(255).default(5),
  /** seconds between periodic refreshes while master; 0 = off (vrrp_garp_master_refresh) */
  masterRefresh: z.number().min(0).default(0),
  /** GARP/NA per refresh (vrrp_garp_master_refresh_repeat) */
  masterRefreshRepeat: z.number().int().min(1).max(255).default(1),
  /** seconds between GARPs of one burst (vrrp_garp_interval) */
  interval: z.number().min(0).max(1).default(0),
  /** seconds between unsolicited NAs of one burst (vrrp_gna_interval) */
  gnaInterval: z.number().min(0).max(1).default(0),
  /** after hearing a lower-priority advert as master: delay and repeat (vrrp_garp_lower_prio_*) */
  lowerPrioDelay: z.number().min(0).max(1000).optional(),
  lowerPrioRepeat: z.number().int().min(0).max(255).optional(),
});
export type GarpSettings = z.infer<typeof GarpSettings>;

/**
 * keepalived's notify_fifo / vrrp_notify_fifo: a FIFO that gets one line per state change
 * (`INSTANCE "VI_1" MASTER 100`), created if missing and owned by `user`/`group` (default: the
 * script user); `script` is started with the FIFO's path appended, to read it.
 */
export const NotifyFifo = z.object({
  path: z.string().min(1),
  user: z.string().optional(),
  group: z.string().optional(),
  script: scriptCommand.optional(),
});
export type NotifyFifo = z.infer<typeof NotifyFifo>;

export const GlobalDefs = z.object({
  routerId: z.string().optional(),
  vrrpVersion: z.union([z.literal(2), z.literal(3)]).default(2),
  garp: GarpSettings.prefault({}),
  scriptUser: z.string().optional(),
  scriptGroup: z.string().optional(),
  enableScriptSecurity: z.boolean().default(false),
  /** keepalived's vrrp_strict: strict RFC compliance (no unicast, no PASS auth with v3 ...) */
  vrrpStrict: z.boolean().default(false),
  /** send v3 IPv4 checksums without the pseudo-header (keepalived's v3_checksum_as_v2) */
  v3ChecksumAsV2: z.boolean().default(false),
  /** drop adverts whose source is not a configured unicast peer (vrrp_check_unicast_src) */
  checkUnicastSrc: z.boolean().default(false),
  /**
   * keepalived's dynamic_interfaces: interfaces named in the config may appear later, so a missing one
   * is a warning at check time instead of an error (the instance stays in FAULT until it exists).
   */
  dynamicInterfaces: z.boolean().default(false),
  /**
   * keepalived's rs_init_notifies: a real server that starts up (no checker, or not alpha) runs its
   * notify_up when it is added, not only on a later down -> up transition
   */
  rsInitNotifies: z.boolean().default(false),
  /**
   * keepalived's vrrp_startup_delay, seconds: after the VRRP process starts, no backup's
   * Master_Down_Timer expires before this delay plus its Master_Down_Interval (0 = none)
   */
  vrrpStartupDelay: z.number().min(0).max(4294.967295).default(0),
  /** default of the instances' down_timer_adverts */
  vrrpDownTimerAdverts: z.number().int().min(1).max(100).default(3),
  /** multicast groups adverts go to instead of 224.0.0.18 / ff02::12 (vrrp_mcast_group4/6) */
  vrrpMcastGroup4: ipAddress.optional(),
  vrrpMcastGroup6: ipAddress.transform((s) => canonicalIp(s) ?? s).optional(),
  /** defaults of the instances' lower_prio_no_advert / higher_prio_send_advert (vrrp_strict aside) */
  vrrpLowerPrioNoAdvert: z.boolean().default(false),
  vrrpHigherPrioSendAdvert: z.boolean().default(false),
  /** notify_fifo: gets the VRRP lines (vigil's load-balancing side writes none) */
  notifyFifo: NotifyFifo.optional(),
  /** vrrp_notify_fifo: the VRRP lines only */
  vrrpNotifyFifo: NotifyFifo.optional(),
  /** default of the instances' notify_priority_changes */
  vrrpNotifyPriorityChanges: z.boolean().default(false),
  /** keepalived keywords accepted for compatibility but without effect in vigil, for `vigil check` */
  ignored: z.array(z.object({ keyword: z.string(), loc: SourceLoc })).default([]),
  locs: SourceLocs.optional(),
});
export type GlobalDefs = z.infer<typeof GlobalDefs>;

export const VrrpScript = z.object({
  name: z.string().min(1),
  script: scriptCommand,
  /** seconds between runs */
  interval: z.number().positive().default(1),
  /** seconds before a run counts as failed; defaults to interval */
  timeout: z.number().positive().optional(),
  /** priority change while the script is OK (>0) or failing (<0); 0 = failure means FAULT */
  weight: z.number().int().min(-253).max(253).default(0),
  /** weight applies in reverse: subtracted while OK, not when failing (keepalived's `weight N reverse`) */
  weightReverse: z.boolean().default(false),
  rise: z.number().int().min(1).default(1),
  fall: z.number().int().min(1).default(1),
  user: z.string().optional(),
  group: z.string().optional(),
  /** start in the failed state until the first success (init_fail) */
  initFail: z.boolean().default(false),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type VrrpScript = z.infer<typeof VrrpScript>;

/**
 * keepalived's `track_file NAME { file PATH; weight W [reverse]; init_file [VALUE] [overwrite] }`
 * (and its deprecated synonym `vrrp_track_file`): a file holding a number that the instances tracking
 * it turn into a priority change or a fault.
 */
export const TrackFileDef = z.object({
  name: z.string().min(1),
  file: z.string().min(1),
  /** multiplies the number read; trackers may override it. 0: a non-zero number means FAULT */
  weight: z.number().int().min(-254).max(254).default(1),
  weightReverse: z.boolean().default(false),
  /** create the file with `value` when it is missing (or at every start, with overwrite) */
  init: z
    .object({
      value: z.number().int().min(-254).max(254).default(0),
      overwrite: z.boolean().default(false),
    })
    .optional(),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type TrackFileDef = z.infer<typeof TrackFileDef>;

/** A `track_file` entry of an instance or sync group: `NAME [weight W [reverse|noreverse]]`. */
export const TrackFile = z.object({
  name: z.string().min(1),
  /** overrides the track_file's own weight when set */
  weight: z.number().int().min(-254).max(254).optional(),
  weightReverse: z.boolean().optional(),
  loc: SourceLoc.optional(),
});
export type TrackFile = z.infer<typeof TrackFile>;

export const VirtualIp = z
  .object({
    address: ipAddress.transform((s) => canonicalIp(s) ?? s),
    /** prefix length; defaults to 32 (IPv4) or 128 (IPv6) like keepalived */
    prefixLen: z.number().int().min(0).max(128).optional(),
    /** interface to add it on; defaults to the instance's interface */
    dev: z.string().optional(),
    label: z.string().max(15).optional(),
    brd: z.string().optional(),
    scope: z.enum(["global", "site", "link", "host", "nowhere"]).optional(),
    noPrefixRoute: z.boolean().default(false),
    loc: SourceLoc.optional(),
  })
  .superRefine((v, ctx) => {
    const fam = familyOf(v.address);
    if (v.prefixLen !== undefined && fam === 4 && v.prefixLen > 32) {
      ctx.addIssue({
        code: "custom",
        message: `prefix /${v.prefixLen} too long for IPv4`,
        path: ["prefixLen"],
      });
    }
  });
export type VirtualIp = z.infer<typeof VirtualIp>;

export const TrackInterface = z.object({
  name: z.string().min(1),
  /** 0 = link down puts the instance in FAULT; otherwise priority change while down (negative) or up (positive) */
  weight: z.number().int().min(-253).max(253).default(0),
  weightReverse: z.boolean().default(false),
  loc: SourceLoc.optional(),
});
export type TrackInterface = z.infer<typeof TrackInterface>;

export const TrackScript = z.object({
  name: z.string().min(1),
  /** overrides the script's own weight when set */
  weight: z.number().int().min(-253).max(253).optional(),
  weightReverse: z.boolean().optional(),
  loc: SourceLoc.optional(),
});
export type TrackScript = z.infer<typeof TrackScript>;

export const UnicastPeer = z.object({
  address: ipAddress.transform((s) => canonicalIp(s) ?? s),
  minTtl: z.number().int().min(0).max(255).optional(),
  maxTtl: z.number().int().min(0).max(255).optional(),
  loc: SourceLoc.optional(),
});
export type UnicastPeer = z.infer<typeof UnicastPeer>;

export const NotifyScripts = z.object({
  master: scriptCommand.optional(),
  backup: scriptCommand.optional(),
  fault: scriptCommand.optional(),
  stop: scriptCommand.optional(),
  /** called on every transition with `INSTANCE|GROUP name state priority` (keepalived's `notify`) */
  any: scriptCommand.optional(),
  /** instances only: run when a reload deletes the instance, with notify_deleted (keepalived script_deleted) */
  deleted: scriptCommand.optional(),
  /** instances only: run (without arguments) when the master hears a lower-priority advert */
  masterRxLowerPri: scriptCommand.optional(),
});
export type NotifyScripts = z.infer<typeof NotifyScripts>;

export const VrrpInstance = z.object({
  name: z.string().min(1),
  /**
   * initial state wish; keepalived still starts in BACKUP unless priority is 255, and an owner with an
   * explicit BACKUP waits like any backup (so unset and BACKUP differ)
   */
  state: z.enum(["MASTER", "BACKUP"]).optional(),
  interface: z.string().min(1),
  virtualRouterId: z.number().int().min(1).max(255),
  /** base priority 1..255; 255 = address owner */
  priority: z.number().int().min(1).max(255).default(100),
  /** seconds; v2 whole seconds 1..255, v3 0.01..40.95 */
  advertInt: z.number().positive().max(255).default(1),
  /** protocol version; defaults to global_defs vrrp_version */
  version: z.union([z.literal(2), z.literal(3)]).optional(),
  /** address family of the VIPs (all VIPs of an instance share one family, as in keepalived) */
  family: z.union([z.literal(4), z.literal(6)]).default(4),
  nopreempt: z.boolean().default(false),
  /** seconds a higher-priority backup waits before preempting (0..1000) */
  preemptDelay: z.number().min(0).max(1000).default(0),
  authentication: z.object({ type: z.enum(["PASS", "AH"]), pass: z.string().max(8).default("") }).optional(),
  virtualIpaddress: z.array(VirtualIp).default([]),
  virtualIpaddressExcluded: z.array(VirtualIp).default([]),
  unicastSrcIp: ipAddress.transform((s) => canonicalIp(s) ?? s).optional(),
  unicastPeer: z.array(UnicastPeer).default([]),
  trackInterface: z.array(TrackInterface).default([]),
  trackScript: z.array(TrackScript).default([]),
  trackFile: z.array(TrackFile).default([]),
  /** do not go to FAULT when the instance's own interface goes down */
  dontTrackPrimary: z.boolean().default(false),
  /** per-instance GARP overrides; unset fields inherit global_defs */
  garpMasterDelay: z.number().min(0).max(1000).optional(),
  garpMasterRepeat: z.number().int().min(1).max(255).optional(),
  garpMasterRefresh: z.number().min(0).optional(),
  garpMasterRefreshRepeat: z.number().int().min(1).max(255).optional(),
  /** per-instance garp_lower_prio_delay / garp_lower_prio_repeat; unset fields inherit global_defs */
  garpLowerPrioDelay: z.number().min(0).max(1000).optional(),
  garpLowerPrioRepeat: z.number().int().min(0).max(255).optional(),
  /**
   * as master, do not answer a lower-priority advert with an advert of our own; unset: global
   * vrrp_lower_prio_no_advert, or on with vrrp_strict (see instanceAdvertPolicy)
   */
  lowerPrioNoAdvert: z.boolean().optional(),
  /** as master, send an advert before yielding to a higher-priority one; unset: global, off with vrrp_strict */
  higherPrioSendAdvert: z.boolean().optional(),
  /** write MASTER_PRIORITY / BACKUP_PRIORITY lines to the notify FIFOs; unset: the group's, else global */
  notifyPriorityChanges: z.boolean().optional(),
  /**
   * adverts missed before a backup takes over: Master_Down_Interval = N x Master_Adver_Interval +
   * Skew_Time (RFC 5798 has 3); unset: vrrp_down_timer_adverts
   */
  downTimerAdverts: z.number().int().min(1).max(100).optional(),
  /** this instance's multicast group (mcast_dst_ip); unset: vrrp_mcast_group4/6, else the RFC's */
  mcastDstIp: ipAddress.transform((s) => canonicalIp(s) ?? s).optional(),
  /**
   * keepalived's notify_deleted: a reload that deletes the instance notifies DELETED (notify.deleted
   * and the generic notify) instead of keepalived's historical FAULT
   */
  notifyDeleted: z.boolean().default(false),
  notify: NotifyScripts.prefault({}),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type VrrpInstance = z.infer<typeof VrrpInstance>;

export const SyncGroup = z.object({
  name: z.string().min(1),
  group: z.array(z.string().min(1)).min(1),
  notify: NotifyScripts.prefault({}),
  trackInterface: z.array(TrackInterface).default([]),
  trackScript: z.array(TrackScript).default([]),
  trackFile: z.array(TrackFile).default([]),
  /** default of its members' notify_priority_changes */
  notifyPriorityChanges: z.boolean().optional(),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type SyncGroup = z.infer<typeof SyncGroup>;

// ---- load balancing (keepalived's virtual_server / virtual_server_group sections) ----------------

/** IPVS schedulers keepalived 2.2.7 accepts for lb_algo / lvs_sched */
export const LB_ALGOS = [
  "rr",
  "wrr",
  "lc",
  "wlc",
  "lblc",
  "lblcr",
  "dh",
  "sh",
  "sed",
  "nq",
  "mh",
  "fo",
  "ovf",
  "twos",
] as const;
export const LbAlgo = z.enum(LB_ALGOS);
export type LbAlgo = z.infer<typeof LbAlgo>;
/** forwarding methods (lb_kind / lvs_method): masquerading, direct routing, IP-in-IP tunnelling */
export const LbKind = z.enum(["NAT", "DR", "TUN"]);
export type LbKind = z.infer<typeof LbKind>;
export const LvsProtocol = z.enum(["TCP", "UDP", "SCTP"]);
export type LvsProtocol = z.infer<typeof LvsProtocol>;

const port = z.number().int().min(0).max(65535);
const portNonZero = z.number().int().min(1).max(65535);
/** keepalived's timers: seconds with up to microsecond precision */
const seconds = z.number().min(0);
const positiveSeconds = z.number().positive();
/** IPVS weights are a signed 32-bit int in the kernel (keepalived's IPVS_WEIGHT_LIMIT) */
const WEIGHT_MAX = 2147483647;
const canonIp = ipAddress.transform((s) => canonicalIp(s) ?? s);

/**
 * Settings every checker has (keepalived's install_checker_common_keywords). Unset fields inherit
 * from the real server, then the virtual server, then keepalived's defaults.
 */
const checkerCommon = {
  /** retries after a failure before the real server is taken down (nb_get_retry is the old name) */
  retry: z.number().int().min(0).max(4294967295).optional(),
  delayBeforeRetry: seconds.optional(),
  /** random delay up to this before the first check */
  warmup: seconds.optional(),
  delayLoop: positiveSeconds.optional(),
  /** start in the failed state (alpha) */
  alpha: z.boolean().optional(),
  logAllFailures: z.boolean().optional(),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
};
/** Where a connecting checker connects from and to (connect_ip/connect_port/bindto/...). */
const connection = {
  connectIp: canonIp.optional(),
  connectPort: portNonZero.optional(),
  bindto: canonIp.optional(),
  bindPort: portNonZero.optional(),
  bindIf: z.string().min(1).max(15).optional(),
  /** seconds; keepalived's default is the real server's connect_timeout (5 s) */
  connectTimeout: positiveSeconds.optional(),
  /** firewall mark set on the check's packets (SO_MARK) */
  fwmark: z.number().int().min(0).max(4294967295).optional(),
};

export const TcpCheck = z.object({ type: z.literal("TCP_CHECK"), ...checkerCommon, ...connection });
export type TcpCheck = z.infer<typeof TcpCheck>;

/** keepalived's HTTP_STATUS_CODE_MIN/MAX */
export const HTTP_STATUS_MIN = 100;
export const HTTP_STATUS_MAX = 599;
/** "200" or "200-299" (YAML may write a single code as a number) */
const statusCode = z.union([z.number().int().transform(String), z.string()]).pipe(
  z
    .string()
    .regex(/^\d+(-\d+)?$/, { message: "expected CODE or MIN-MAX" })
    .refine(
      (s) => {
        const [a, b = a] = s.split("-").map(Number) as [number, number?];
        return a >= HTTP_STATUS_MIN && b! <= HTTP_STATUS_MAX && a <= b!;
      },
      { message: `status codes are ${HTTP_STATUS_MIN}..${HTTP_STATUS_MAX}, ranges MIN-MAX with MIN <= MAX` },
    ),
);

export const HttpUrl = z.object({
  path: z.string().min(1),
  /** MD5 of the page body, 32 hex digits */
  digest: z
    .string()
    .regex(/^[0-9a-fA-F]{32}$/, { message: "an MD5 digest is 32 hex digits" })
    .transform((s) => s.toLowerCase())
    .optional(),
  /** accepted codes and ranges; keepalived's default is 200-299 */
  statusCode: z.array(statusCode).optional(),
  virtualhost: z.string().min(1).optional(),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type HttpUrl = z.infer<typeof HttpUrl>;

const httpFields = {
  ...checkerCommon,
  ...connection,
  virtualhost: z.string().min(1).optional(),
  httpProtocol: z.enum(["1.0", "1.1", "1.0C"]).optional(),
  url: z.array(HttpUrl).min(1),
};
export const HttpGetCheck = z.object({ type: z.literal("HTTP_GET"), ...httpFields });
export type HttpGetCheck = z.infer<typeof HttpGetCheck>;
export const SslGetCheck = z.object({
  type: z.literal("SSL_GET"),
  ...httpFields,
  /** send SNI (the virtualhost) in the TLS handshake */
  enableSni: z.boolean().optional(),
});
export type SslGetCheck = z.infer<typeof SslGetCheck>;

export const DNS_TYPES = ["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"] as const;
export const DnsCheck = z.object({
  type: z.literal("DNS_CHECK"),
  ...checkerCommon,
  ...connection,
  /** keepalived's `type` keyword inside DNS_CHECK (renamed: `type` names the checker); default SOA */
  dnsType: z.enum(DNS_TYPES).optional(),
  /** the name queried; keepalived's default is "." */
  name: z
    .string()
    .min(1)
    .refine((n) => !(n.startsWith(".") && n !== ".") && !n.includes(".."), { message: "empty DNS label" })
    .optional(),
});
export type DnsCheck = z.infer<typeof DnsCheck>;

const hexPayload = z
  .string()
  .regex(/^(?:[0-9a-fA-F]{2})+$/, { message: "expected an even number of hex digits" });
export const UdpCheck = z.object({
  type: z.literal("UDP_CHECK"),
  ...checkerCommon,
  ...connection,
  /** datagram sent, as hex */
  payload: hexPayload.optional(),
  /** a reply is needed for success (require_reply) */
  requireReply: z.boolean().default(false),
  /** the reply must start with these bytes (require_reply HEX) */
  replyData: hexPayload.optional(),
  minReplyLength: z.number().int().min(0).max(65535).optional(),
  maxReplyLength: z.number().int().min(0).max(65535).optional(),
});
export type UdpCheck = z.infer<typeof UdpCheck>;

export const PingCheck = z.object({ type: z.literal("PING_CHECK"), ...checkerCommon, ...connection });
export type PingCheck = z.infer<typeof PingCheck>;

export const MiscCheck = z.object({
  type: z.literal("MISC_CHECK"),
  ...checkerCommon,
  /** command line, split like keepalived's scripts */
  miscPath: scriptCommand,
  /** seconds before the script counts as failed; keepalived defaults to delay_loop */
  miscTimeout: z.number().int().min(0).optional(),
  /** exit status 2..255 sets the weight to status - 2 */
  miscDynamic: z.boolean().default(false),
  user: z.string().min(1).optional(),
  group: z.string().min(1).optional(),
});
export type MiscCheck = z.infer<typeof MiscCheck>;

export const Checker = z.discriminatedUnion("type", [
  TcpCheck,
  HttpGetCheck,
  SslGetCheck,
  DnsCheck,
  UdpCheck,
  PingCheck,
  MiscCheck,
]);
export type Checker = z.infer<typeof Checker>;
export type CheckerType = Checker["type"];
export const CHECKER_TYPES: readonly CheckerType[] = [
  "TCP_CHECK",
  "HTTP_GET",
  "SSL_GET",
  "DNS_CHECK",
  "UDP_CHECK",
  "PING_CHECK",
  "MISC_CHECK",
];

export const RealServer = z.object({
  address: canonIp,
  /** unset (or 0 in keepalived.conf): the virtual server's port */
  port: port.optional(),
  /** unset: the virtual server's `weight` (default 1) */
  weight: z.number().int().min(0).max(WEIGHT_MAX).optional(),
  /** per real server forwarding method (lvs_method); unset: the virtual server's lb_kind */
  lvsMethod: LbKind.optional(),
  /** set the weight to 0 instead of removing the server when checks fail; unset: the virtual server's */
  inhibitOnFailure: z.boolean().optional(),
  notifyUp: scriptCommand.optional(),
  notifyDown: scriptCommand.optional(),
  /** IPVS upper/lower connection thresholds */
  uthreshold: z.number().int().min(0).max(4294967295).optional(),
  lthreshold: z.number().int().min(0).max(4294967295).optional(),
  /** defaults for this server's checkers; unset: the virtual server's */
  alpha: z.boolean().optional(),
  retry: z.number().int().min(1).max(4294967295).optional(),
  delayBeforeRetry: seconds.optional(),
  warmup: seconds.optional(),
  connectTimeout: positiveSeconds.optional(),
  delayLoop: positiveSeconds.optional(),
  virtualhost: z.string().min(1).optional(),
  /** health checks; a server without any is always up */
  checkers: z.array(Checker).default([]),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type RealServer = z.infer<typeof RealServer>;

export const SorryServer = z.object({
  address: canonIp,
  port: port.optional(),
  loc: SourceLoc.optional(),
});
export type SorryServer = z.infer<typeof SorryServer>;

export const VirtualServer = z
  .object({
    /** the service: an address and port, a firewall mark, or a virtual_server_group by name */
    address: canonIp.optional(),
    port: port.optional(),
    fwmark: z.number().int().min(1).max(4294967295).optional(),
    group: z.string().min(1).optional(),
    /** address family of a fwmark/group service (ip_family inet|inet6) */
    ipFamily: z.enum(["inet", "inet6"]).optional(),
    /** seconds between checks (keepalived's default: 60) */
    delayLoop: positiveSeconds.default(60),
    lbAlgo: LbAlgo,
    lbKind: LbKind,
    /** required for address and address-group services; fwmark services have none */
    protocol: LvsProtocol.optional(),
    /** seconds; makes the service persistent (keepalived: 1..2678400, 360 when given without a value) */
    persistenceTimeout: z.number().int().min(1).max(2678400).optional(),
    /** netmask (IPv4) or prefix length (IPv6) clients are grouped by for persistence */
    persistenceGranularity: z.string().min(1).optional(),
    persistenceEngine: z.string().min(1).max(15).optional(),
    /** minimum total weight of live real servers for the service to count as up */
    quorum: z.number().int().min(1).max(4294967295).default(1),
    hysteresis: z.number().int().min(0).max(4294967295).default(0),
    quorumUp: scriptCommand.optional(),
    quorumDown: scriptCommand.optional(),
    sorryServer: SorryServer.optional(),
    /** keep the sorry server with weight 0 while real servers are up (sorry_server_inhibit) */
    sorryServerInhibit: z.boolean().default(false),
    sorryServerLvsMethod: LbKind.optional(),
    /** defaults for the real servers */
    inhibitOnFailure: z.boolean().default(false),
    alpha: z.boolean().default(false),
    omega: z.boolean().default(false),
    weight: z.number().int().min(1).max(WEIGHT_MAX).default(1),
    retry: z.number().int().min(1).max(4294967295).optional(),
    delayBeforeRetry: seconds.optional(),
    warmup: seconds.optional(),
    /** seconds (keepalived's default: 5) */
    connectTimeout: positiveSeconds.default(5),
    virtualhost: z.string().min(1).optional(),
    /** one-packet scheduling (UDP) */
    ops: z.boolean().default(false),
    /** scheduler flags of sh and mh */
    shPort: z.boolean().default(false),
    shFallback: z.boolean().default(false),
    mhPort: z.boolean().default(false),
    mhFallback: z.boolean().default(false),
    /** run the checkers only while the virtual server's address is on this host (agent/lvs/ha-suspend.ts) */
    haSuspend: z.boolean().default(false),
    realServers: z.array(RealServer).default([]),
    loc: SourceLoc.optional(),
    locs: SourceLocs.optional(),
  })
  .superRefine((v, ctx) => {
    const kinds = [v.address !== undefined, v.fwmark !== undefined, v.group !== undefined].filter(Boolean);
    if (kinds.length !== 1)
      ctx.addIssue({
        code: "custom",
        message: "a virtual server has exactly one of address (with port), fwmark or group",
        path: [],
      });
    if (v.port !== undefined && v.address === undefined)
      ctx.addIssue({ code: "custom", message: "port belongs to an address service", path: ["port"] });
  });
export type VirtualServer = z.infer<typeof VirtualServer>;

/**
 * One entry of a virtual_server_group: an address range with a port (a single address has
 * addressEnd equal to address) or a firewall mark.
 */
export const VirtualServerGroupEntry = z
  .object({
    address: canonIp.optional(),
    /** last address of the range, same family, not below `address` */
    addressEnd: canonIp.optional(),
    port: port.optional(),
    fwmark: z.number().int().min(0).max(4294967295).optional(),
    /** family of a fwmark entry (inet|inet6) */
    family: z.enum(["inet", "inet6"]).optional(),
    loc: SourceLoc.optional(),
  })
  .superRefine((e, ctx) => {
    if ((e.address === undefined) === (e.fwmark === undefined))
      ctx.addIssue({ code: "custom", message: "an entry has either an address or a fwmark", path: [] });
  });
export type VirtualServerGroupEntry = z.infer<typeof VirtualServerGroupEntry>;

export const VirtualServerGroup = z.object({
  name: z.string().min(1),
  entries: z.array(VirtualServerGroupEntry).min(1),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type VirtualServerGroup = z.infer<typeof VirtualServerGroup>;

/** What identifies a virtual server: `ADDR:PORT/PROTO` (v6 in brackets), `fwmark N`, `group NAME`. */
export function virtualServerKey(vs: VsKeyFields): string {
  // asked for ten thousand times per table computation (every real server's id starts with it);
  // parsed configs are never mutated, so one string per object
  let key = vsKeys.get(vs);
  if (key === undefined) {
    key = vsKeyOf(vs);
    vsKeys.set(vs, key);
  }
  return key;
}

interface VsKeyFields {
  address?: string;
  port?: number;
  protocol?: string;
  fwmark?: number;
  group?: string;
}

const vsKeys = new WeakMap<VsKeyFields, string>();

function vsKeyOf(vs: VsKeyFields): string {
  if (vs.group !== undefined) return `group ${vs.group}`;
  if (vs.fwmark !== undefined) return `fwmark ${vs.fwmark}`;
  const a = vs.address ?? "?";
  return `${a.includes(":") ? `[${a}]` : a}:${vs.port ?? 0}/${vs.protocol ?? "-"}`;
}

/** A real server's key within its virtual server: `ADDR:PORT` with the port it effectively uses. */
export function realServerKey(vs: { port?: number; fwmark?: number }, rs: RealServer): string {
  const p = rs.port || vs.port || 0;
  return `${rs.address.includes(":") ? `[${rs.address}]` : rs.address}:${p}`;
}

export const Config = z.object({
  globalDefs: GlobalDefs.prefault({}),
  vrrpScripts: z.array(VrrpScript).default([]),
  trackFiles: z.array(TrackFileDef).default([]),
  vrrpInstances: z.array(VrrpInstance).default([]),
  vrrpSyncGroups: z.array(SyncGroup).default([]),
  virtualServerGroups: z.array(VirtualServerGroup).default([]),
  virtualServers: z.array(VirtualServer).default([]),
});
export type Config = z.infer<typeof Config>;
/** What YAML/JSON authors write: defaults may be omitted. */
export type ConfigInput = z.input<typeof Config>;

/**
 * The version an instance speaks, after inheriting from global_defs. An IPv6 instance without its own
 * `version` speaks v3 whatever vrrp_version says (VRRPv2 has no IPv6), as keepalived does.
 */
export function instanceVersion(cfg: Config, inst: VrrpInstance): 2 | 3 {
  if (inst.version !== undefined) return inst.version;
  return inst.family === 6 ? 3 : cfg.globalDefs.vrrpVersion;
}

/** The multicast group an instance advertises to and listens on. */
export function instanceMcastGroup(cfg: Config, inst: VrrpInstance): string {
  const g = cfg.globalDefs;
  return (
    inst.mcastDstIp ??
    (inst.family === 4 ? (g.vrrpMcastGroup4 ?? VRRP_GROUP_V4) : (g.vrrpMcastGroup6 ?? VRRP_GROUP_V6))
  );
}

/** A track_file entry's weight and reverse: its own, else its track_file's (weight 1 by default). */
export function trackFileWeights(cfg: Config, t: TrackFile): { weight: number; weightReverse: boolean } {
  const def = cfg.trackFiles.find((f) => f.name === t.name);
  return {
    weight: t.weight ?? def?.weight ?? 1,
    weightReverse: t.weightReverse ?? def?.weightReverse ?? false,
  };
}

/** keepalived's lower_prio_no_advert / higher_prio_send_advert after inheriting (vrrp_complete_instance). */
export function instanceAdvertPolicy(
  cfg: Config,
  inst: VrrpInstance,
): { lowerPrioNoAdvert: boolean; higherPrioSendAdvert: boolean } {
  const g = cfg.globalDefs;
  const strict = g.vrrpStrict;
  return {
    lowerPrioNoAdvert: inst.lowerPrioNoAdvert ?? (strict ? true : g.vrrpLowerPrioNoAdvert),
    higherPrioSendAdvert: inst.higherPrioSendAdvert ?? (strict ? false : g.vrrpHigherPrioSendAdvert),
  };
}

/** Effective GARP settings for an instance: per-instance overrides over global_defs. */
export function instanceGarp(cfg: Config, inst: VrrpInstance): GarpSettings {
  const g = cfg.globalDefs.garp;
  return {
    ...g,
    masterDelay: inst.garpMasterDelay ?? g.masterDelay,
    masterRepeat: inst.garpMasterRepeat ?? g.masterRepeat,
    masterRefresh: inst.garpMasterRefresh ?? g.masterRefresh,
    masterRefreshRepeat: inst.garpMasterRefreshRepeat ?? g.masterRefreshRepeat,
    lowerPrioDelay: inst.garpLowerPrioDelay ?? g.lowerPrioDelay,
    lowerPrioRepeat: inst.garpLowerPrioRepeat ?? g.lowerPrioRepeat,
  };
}

/** Every address an instance puts on the kernel: virtual_ipaddress then virtual_ipaddress_excluded. */
export function instanceVips(inst: VrrpInstance): VirtualIp[] {
  return [...inst.virtualIpaddress, ...inst.virtualIpaddressExcluded];
}

/** A VIP's prefix length; keepalived's default is a host route (/32 or /128). */
export function vipPrefixLen(v: VirtualIp): number {
  return v.prefixLen ?? (familyOf(v.address) === 6 ? 128 : 32);
}

/** A config problem with its location, printed as `FILE:LINE: message`. */
export interface ConfigError {
  file: string;
  line: number;
  message: string;
}

export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}: ${e.message}`;
}
