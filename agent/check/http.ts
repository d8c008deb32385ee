// HTTP_GET and SSL_GET (keepalived check_http.c).
//
// One connection per url, in order; the check passes when every url passes. Per url:
//  - request: keepalived's exact text, "GET <path> HTTP/1.<0|1>", "User-Agent: KeepAliveClient",
//    "Connection: close" for http_protocol 1.0C and 1.1, and "Host:" = the url's virtualhost, else the
//    checker's, else "<ip>:<port>" (IPv6 in brackets, RFC 2732);
//  - the status code must be in the url's status_code ranges (default 200-299);
//  - with a digest, the MD5 of the body (the bytes after the header, as received: no chunked decoding,
//    like keepalived) must match.
// The body is read until the peer closes, or until Content-Length bytes arrived (keepalived reads to
// EOF; stopping at Content-Length gives the same digest and does not depend on the server closing).
import { type Abort, openStream } from "./stream.ts";
import type { CheckResult, HttpCheckSpec, HttpUrl } from "./types.ts";
import { nowMs } from "./types.ts";

export const HTTP_STATUS_CODE_MIN = 100;
export const HTTP_STATUS_CODE_MAX = 599;
export const DEFAULT_STATUS_CODES: Array<[number, number]> = [[200, 299]];
/** headers larger than this are a failure, not a reason to buffer forever */
const MAX_HEADER_BYTES = 64 * 1024;

/** The GET request keepalived sends (check_http.c request_template / request_template_ipv6). */
export function buildRequest(spec: HttpCheckSpec, url: HttpUrl): string {
  const proto = spec.httpProtocol ?? "1.0";
  const vhost = url.virtualhost ?? spec.virtualhost;
  let host: string;
  if (vhost) host = vhost;
  else {
    const ip = spec.conn.connectIp;
    host = `${ip.includes(":") ? `[${ip}]` : ip}:${spec.conn.connectPort}`;
  }
  return (
    `GET ${url.path} HTTP/1.${proto === "1.1" ? 1 : 0}\r\n` +
    "User-Agent: KeepAliveClient\r\n" +
    (proto === "1.0" ? "" : "Connection: close\r\n") +
    `Host: ${host}\r\n\r\n`
  );
}

/** True when `code` is inside one of the ranges (the default 200-299 when none are given). */
export function statusAccepted(code: number, ranges: Array<[number, number]> | undefined): boolean {
  if (code < HTTP_STATUS_CODE_MIN || code > HTTP_STATUS_CODE_MAX) return false;
  const rs = ranges && ranges.length > 0 ? ranges : DEFAULT_STATUS_CODES;
  return rs.some(([lo, hi]) => code >= lo && code <= hi);
}

/**
 * Parses keepalived's status_code words ("200", "200-299", "301 302") into ranges; null when a word is
 * invalid (keepalived logs and skips it; the caller decides).
 */
export function parseStatusCodes(words: string[]): Array<[number, number]> | null {
  const out: Array<[number, number]> = [];
  for (const w of words) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(w);
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] !== undefined ? Number(m[2]) : lo;
    if (lo < HTTP_STATUS_CODE_MIN || hi > HTTP_STATUS_CODE_MAX || lo > hi) return null;
    out.push([lo, hi]);
  }
  return out;
}

interface Head {
  status: number;
  contentLength: number | null;
  bodyStart: number;
}

/** Finds the end of the header and the status code; null while the header is incomplete. */
function parseHead(buf: Uint8Array): Head | "bad" | null {
  let end = -1;
  for (let i = 3; i < buf.length; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) {
      end = i + 1;
      break;
    }
  }
  if (end < 0) return buf.length > MAX_HEADER_BYTES ? "bad" : null;
  const text = new TextDecoder("latin1").decode(buf.subarray(0, end));
  const m = /^HTTP\/\d(?:\.\d)? +(\d{3})/.exec(text);
  if (!m) return "bad";
  const cl = /\r\ncontent-length: *(\d+)/i.exec(text);
  return { status: Number(m[1]), contentLength: cl ? Number(cl[1]) : null, bodyStart: end };
}

function md5Hex(body: Bun.CryptoHasher): string {
  return body.digest("hex");
}

/** Fetches one url; resolves with a failure reason or null on success. */
function checkUrl(spec: HttpCheckSpec, url: HttpUrl): Promise<string | null> {
  return new Promise((resolve) => {
    let done = false;
    let abort: Abort | undefined;
    let head: Head | null = null;
    let headBuf: Uint8Array = new Uint8Array(0);
    let bodyLen = 0;
    const hasher = url.digest ? new Bun.CryptoHasher("md5") : null;
    const finish = (reason: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      abort?.();
      resolve(reason);
    };
    const timer = setTimeout(
      () => finish(head ? "timeout reading body" : "timeout"),
      spec.conn.connectTimeoutMs,
    );
    const complete = (): void => {
      if (!head) {
        finish("no response");
        return;
      }
      if (hasher && url.digest) {
        const got = md5Hex(hasher);
        if (got !== url.digest.toLowerCase()) {
          finish("digest mismatch");
          return;
        }
      }
      finish(null);
    };
    const body = (chunk: Uint8Array): void => {
      bodyLen += chunk.length;
      hasher?.update(chunk);
      if (head?.contentLength !== null && head && bodyLen >= head.contentLength) complete();
    };
    const tlsMode =
      spec.type === "SSL_GET"
        ? spec.enableSni
          ? { serverName: url.virtualhost ?? spec.virtualhost ?? spec.conn.connectIp }
          : {}
        : null;
    abort = openStream(spec.conn, tlsMode, {
      open: (write) => write(buildRequest(spec, url)),
      data: (chunk) => {
        if (head) {
          body(chunk);
          return;
        }
        const merged = new Uint8Array(headBuf.length + chunk.length);
        merged.set(headBuf);
        merged.set(chunk, headBuf.length);
        headBuf = merged;
        const h = parseHead(headBuf);
        if (h === null) return;
        if (h === "bad") {
          finish("bad response");
          return;
        }
        head = h;
        // the status decides before the body: no need to read a body that cannot make it pass
        if (!statusAccepted(h.status, url.statusCode)) {
          finish(`status ${h.status}`);
          return;
        }
        const rest = headBuf.subarray(h.bodyStart);
        headBuf = new Uint8Array(0);
        if (rest.length > 0 || h.contentLength === 0) body(rest);
      },
      end: complete,
      error: (code) => finish(code),
    });
    if (done) abort();
  });
}

export async function httpCheck(spec: HttpCheckSpec): Promise<CheckResult> {
  const start = nowMs();
  const urls = spec.urls.length > 0 ? spec.urls : [{ path: "/" }];
  for (const url of urls) {
    const reason = await checkUrl(spec, url);
    if (reason !== null) return { ok: false, reason: `${url.path}: ${reason}`, latencyMs: nowMs() - start };
  }
  return { ok: true, reason: "ok", latencyMs: nowMs() - start };
}
