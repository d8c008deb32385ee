// The config model's checkers -> the checkers' own specs (types.ts). This is where keepalived's
// inheritance is resolved: a setting missing on the checker comes from the real server, then from the
// virtual server, then from keepalived's per-type default (left unset here so withDefaults applies it).
// connect_ip / connect_port default to the real server's address and effective port, as in keepalived.
// Model durations are seconds; specs are milliseconds.
import type { Checker, RealServer, VirtualServer } from "../config/model.ts";
import type { ScriptUserSettings } from "../config/script-user.ts";
import type { CheckerSpec, CheckTiming, ConnectOptions, HttpUrl } from "./types.ts";

/** The virtual server settings a real server's checkers inherit (a subset, so tests stay small). */
export type VsDefaults = Pick<
  VirtualServer,
  "delayLoop" | "retry" | "delayBeforeRetry" | "warmup" | "connectTimeout" | "virtualhost" | "alpha" | "port"
>;

const ms = (s: number | undefined): number | undefined =>
  s === undefined ? undefined : Math.round(s * 1000);

function first<T>(...xs: (T | undefined)[]): T | undefined {
  for (const x of xs) if (x !== undefined) return x;
  return undefined;
}

/** "200" -> [200, 200]; "200-299" -> [200, 299] (the model has validated the shape). */
export function parseStatusRange(s: string): [number, number] {
  const [a, b = a] = s.split("-").map(Number) as [number, number?];
  return [a, b ?? a];
}

function hexBytes(hex: string | undefined): Uint8Array | undefined {
  if (hex === undefined) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** The port a real server is checked and forwarded on: its own, else the virtual server's (keepalived). */
export function effectivePort(vs: Pick<VirtualServer, "port">, rs: Pick<RealServer, "port">): number {
  return rs.port || vs.port || 0;
}

function timing(c: Checker, rs: RealServer, vs: VsDefaults): Partial<CheckTiming> {
  const t: Partial<CheckTiming> = {};
  const delayLoopMs = ms(first(c.delayLoop, rs.delayLoop, vs.delayLoop));
  if (delayLoopMs !== undefined) t.delayLoopMs = delayLoopMs;
  const retry = first(c.retry, rs.retry, vs.retry);
  if (retry !== undefined) t.retry = retry;
  const dbr = ms(first(c.delayBeforeRetry, rs.delayBeforeRetry, vs.delayBeforeRetry));
  if (dbr !== undefined) t.delayBeforeRetryMs = dbr;
  const warmup = ms(first(c.warmup, rs.warmup, vs.warmup));
  if (warmup !== undefined) t.warmupMs = warmup;
  const alpha = first(c.alpha, rs.alpha, vs.alpha);
  if (alpha !== undefined) t.alpha = alpha;
  return t;
}

type Connecting = Exclude<Checker, { type: "MISC_CHECK" }>;

function conn(c: Connecting, rs: RealServer, vs: VsDefaults): ConnectOptions {
  const o: ConnectOptions = {
    connectIp: c.connectIp ?? rs.address,
    connectPort: c.connectPort ?? effectivePort(vs, rs),
    // keepalived's connect_timeout default is 5 s (the model defaults vs.connectTimeout to it)
    connectTimeoutMs: ms(first(c.connectTimeout, rs.connectTimeout, vs.connectTimeout)) ?? 5_000,
  };
  if (c.bindto !== undefined) o.bindto = c.bindto;
  if (c.bindPort !== undefined) o.bindPort = c.bindPort;
  // validate.ts allows these on TCP_CHECK only (the other checkers' sockets cannot set them)
  if (c.bindIf !== undefined) o.bindIf = c.bindIf;
  if (c.fwmark !== undefined) o.mark = c.fwmark;
  return o;
}

/** One model checker of real server `rs` of virtual server `vs` as a runnable spec. */
export function mapChecker(
  c: Checker,
  rs: RealServer,
  vs: VsDefaults,
  scripts: ScriptUserSettings = {},
): CheckerSpec {
  const t = timing(c, rs, vs);
  switch (c.type) {
    case "TCP_CHECK":
    case "PING_CHECK":
      return { type: c.type, conn: conn(c, rs, vs), timing: t };
    case "HTTP_GET":
    case "SSL_GET": {
      const urls = c.url.map((u): HttpUrl => {
        const out: HttpUrl = { path: u.path };
        if (u.digest !== undefined) out.digest = u.digest;
        if (u.statusCode !== undefined) out.statusCode = u.statusCode.map(parseStatusRange);
        if (u.virtualhost !== undefined) out.virtualhost = u.virtualhost;
        return out;
      });
      const spec: CheckerSpec = { type: c.type, conn: conn(c, rs, vs), timing: t, urls };
      const vhost = first(c.virtualhost, rs.virtualhost, vs.virtualhost);
      if (vhost !== undefined) spec.virtualhost = vhost;
      if (c.httpProtocol !== undefined) spec.httpProtocol = c.httpProtocol;
      if (c.type === "SSL_GET" && c.enableSni !== undefined) spec.enableSni = c.enableSni;
      return spec;
    }
    case "DNS_CHECK": {
      const spec: CheckerSpec = { type: "DNS_CHECK", conn: conn(c, rs, vs), timing: t };
      if (c.dnsType !== undefined) spec.queryType = c.dnsType;
      // keepalived's default name is "." (the root); the DNS checker spells the root ""
      if (c.name !== undefined) spec.name = c.name === "." ? "" : c.name;
      return spec;
    }
    case "UDP_CHECK": {
      const spec: CheckerSpec = {
        type: "UDP_CHECK",
        conn: conn(c, rs, vs),
        timing: t,
        requireReply: c.requireReply,
      };
      const payload = hexBytes(c.payload);
      if (payload) spec.payload = payload;
      const reply = hexBytes(c.replyData);
      if (reply) spec.replyData = reply;
      if (c.minReplyLength !== undefined) spec.minReplyLength = c.minReplyLength;
      if (c.maxReplyLength !== undefined) spec.maxReplyLength = c.maxReplyLength;
      return spec;
    }
    case "MISC_CHECK": {
      const spec: CheckerSpec = {
        type: "MISC_CHECK",
        miscPath: c.miscPath,
        timing: t,
        miscDynamic: c.miscDynamic,
      };
      // misc_timeout 0 means "unset" in keepalived: the script gets delay_loop
      if (c.miscTimeout) spec.miscTimeoutMs = c.miscTimeout * 1000;
      const own: { user?: string; group?: string } = {};
      if (c.user !== undefined) own.user = c.user;
      if (c.group !== undefined) own.group = c.group;
      spec.runAs = { own, global: scripts };
      return spec;
    }
  }
}

/** All checkers of a real server. */
export function mapCheckers(rs: RealServer, vs: VsDefaults, scripts: ScriptUserSettings = {}): CheckerSpec[] {
  return rs.checkers.map((c) => mapChecker(c, rs, vs, scripts));
}
