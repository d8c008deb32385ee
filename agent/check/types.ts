// Input and output types of the health checkers. These are the checkers' own types, named after
// keepalived's keywords (connect_ip, connect_port, bindto, connect_timeout, retry, delay_before_retry,
// warmup, delay_loop, alpha, ...); the config model is mapped onto them by the caller, so the checkers
// do not depend on how a real server was configured (keepalived.conf, YAML or the API).
//
// All durations are in milliseconds. Defaults follow keepalived 2.2.7 (check_data.c / check_api.c) and
// are filled in by `withDefaults` so that every consumer sees the same resolved values.
import type { ScriptUserSettings } from "../config/script-user.ts";

/** Where and how a checker connects (keepalived's conn_opts_t). */
export interface ConnectOptions {
  /** connect_ip: defaults to the real server's address in keepalived; here the caller resolves it */
  connectIp: string;
  /** connect_port (ignored by PING_CHECK and MISC_CHECK) */
  connectPort: number;
  /** bindto: local source address */
  bindto?: string;
  /** bind_port: local source port */
  bindPort?: number;
  /** bind_if: the interface the check's socket is bound to (SO_BINDTODEVICE); TCP_CHECK only */
  bindIf?: string;
  /** fwmark: firewall mark on the check's packets (SO_MARK); TCP_CHECK only */
  mark?: number;
  /**
   * connect_timeout. keepalived times each step (connect, write, each read) separately; vigil bounds the
   * whole exchange with it (per url for HTTP_GET/SSL_GET), so a server that trickles bytes cannot hold a
   * check open forever.
   */
  connectTimeoutMs: number;
}

/** Scheduling parameters shared by every checker (check_api.c). */
export interface CheckTiming {
  /** delay_loop: interval between checks (default 60 s, from the virtual server) */
  delayLoopMs: number;
  /** retry: failed attempts tolerated before the checker goes down (TCP/HTTP/UDP/PING 1, DNS 3, MISC 0) */
  retry: number;
  /** delay_before_retry: wait before a retry (default 1 s; DNS: delay_loop) */
  delayBeforeRetryMs: number;
  /** warmup: the first check starts after a random delay in [0, warmup] (default delay_loop) */
  warmupMs: number;
  /** alpha: the checker starts down, so a real server enters the pool only after its checks pass */
  alpha: boolean;
}

export type HttpProtocol = "1.0" | "1.0C" | "1.1";

/** One url block of HTTP_GET / SSL_GET. */
export interface HttpUrl {
  path: string;
  /** lowercase hex MD5 of the response body; mismatch = failure */
  digest?: string;
  /** accepted status codes as inclusive ranges; default [[200, 299]] (HTTP_DEFAULT_STATUS_CODE_MIN/MAX) */
  statusCode?: Array<[number, number]>;
  /** Host header for this url; overrides the checker's virtualhost */
  virtualhost?: string;
}

interface Base {
  /** a stable name for logs and events, e.g. "TCP_CHECK 192.0.2.10:80" */
  name?: string;
  timing?: Partial<CheckTiming>;
}

export interface TcpCheckSpec extends Base {
  type: "TCP_CHECK";
  conn: ConnectOptions;
}

export interface HttpCheckSpec extends Base {
  type: "HTTP_GET" | "SSL_GET";
  conn: ConnectOptions;
  urls: HttpUrl[];
  /** virtualhost for every url without its own */
  virtualhost?: string;
  /** http_protocol: "1.0" (default), "1.0C" (1.0 with Connection: close) or "1.1" (with Connection: close) */
  httpProtocol?: HttpProtocol;
  /** SSL_GET: send SNI (enable_sni); the certificate is never verified, as in keepalived */
  enableSni?: boolean;
}

export interface DnsCheckSpec extends Base {
  type: "DNS_CHECK";
  conn: ConnectOptions;
  /** query type (A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY or a number); default SOA */
  queryType?: string | number;
  /** query name; default "" (the root) */
  name?: string;
}

export interface UdpCheckSpec extends Base {
  type: "UDP_CHECK";
  conn: ConnectOptions;
  /** payload bytes to send (keepalived sends an empty datagram without one) */
  payload?: Uint8Array;
  /**
   * require_reply: without it a timeout is success and only an ICMP port unreachable fails; with it a
   * reply must arrive, its length must be within [minReplyLength, maxReplyLength] and its first bytes
   * must equal `replyData` where `replyMask` bits are clear (keepalived's hex mask semantics)
   */
  requireReply?: boolean;
  replyData?: Uint8Array;
  replyMask?: Uint8Array;
  minReplyLength?: number;
  maxReplyLength?: number;
}

export interface PingCheckSpec extends Base {
  type: "PING_CHECK";
  conn: ConnectOptions;
}

export interface MiscCheckSpec extends Base {
  type: "MISC_CHECK";
  /** misc_path: the command line, split like keepalived (quotes and escapes) */
  miscPath: string;
  /** misc_timeout in ms; default delay_loop */
  miscTimeoutMs?: number;
  /** misc_dynamic: exit 2..255 means success with weight exit-2 */
  miscDynamic?: boolean;
  /** extra environment for the script */
  env?: Record<string, string>;
  /** who the script runs as: its own `user` over global_defs script_user (config/script-user.ts) */
  runAs?: { own: { user?: string; group?: string }; global: ScriptUserSettings };
}

export type CheckerSpec =
  | TcpCheckSpec
  | HttpCheckSpec
  | DnsCheckSpec
  | UdpCheckSpec
  | PingCheckSpec
  | MiscCheckSpec;

export type CheckerType = CheckerSpec["type"];

/** The outcome of one check attempt. */
export interface CheckResult {
  ok: boolean;
  /** short, stable text: "connected", "timeout", "ECONNREFUSED", "status 503", "digest mismatch", ... */
  reason: string;
  latencyMs: number;
  /** MISC_CHECK with misc_dynamic: the weight the script asked for (exit status - 2) */
  weight?: number;
}

/** keepalived's KEEPALIVED_DEFAULT_DELAY (virtual server delay_loop). */
export const DEFAULT_DELAY_LOOP_MS = 60_000;
/** keepalived's default connect_timeout (virtual server connection_to). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Default retry count per checker type (checker->default_retry in keepalived 2.2.7). */
export function defaultRetry(type: CheckerType): number {
  if (type === "DNS_CHECK") return 3;
  if (type === "MISC_CHECK") return 0;
  return 1;
}

/** Resolves a checker's timing with keepalived's inheritance: checker, then defaults. */
export function withDefaults(spec: CheckerSpec): CheckTiming {
  const t = spec.timing ?? {};
  const delayLoopMs = t.delayLoopMs ?? DEFAULT_DELAY_LOOP_MS;
  return {
    delayLoopMs,
    retry: t.retry ?? defaultRetry(spec.type),
    // DNS_CHECK sets default_delay_before_retry to 0, which makes it fall back to delay_loop
    delayBeforeRetryMs: t.delayBeforeRetryMs ?? (spec.type === "DNS_CHECK" ? delayLoopMs : 1_000),
    warmupMs: t.warmupMs ?? delayLoopMs,
    alpha: t.alpha ?? false,
  };
}

/** A human-readable checker name for events: the spec's name or type and target. */
export function checkerName(spec: CheckerSpec): string {
  if (spec.name) return spec.name;
  if (spec.type === "MISC_CHECK") return `MISC_CHECK ${spec.miscPath}`;
  const { connectIp, connectPort } = spec.conn;
  const host = connectIp.includes(":") ? `[${connectIp}]` : connectIp;
  return spec.type === "PING_CHECK" ? `PING_CHECK ${connectIp}` : `${spec.type} ${host}:${connectPort}`;
}

/** Milliseconds since an arbitrary origin, monotonic. */
export function nowMs(): number {
  return performance.now();
}
