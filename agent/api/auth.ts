// Who may reach the API, decided before anything listens. The API can change what this host routes,
// so the rules refuse rather than warn:
// - default: a unix socket in the state directory (or `--api unix:PATH`), mode 0600, so only root
//   (the agent's user) can connect; the kernel checks that on connect().
// - TCP (`--api-listen HOST:PORT`) only with TLS and a required client certificate signed by the
//   given CA (`--tls-cert --tls-key --tls-client-ca`), or in plaintext on a loopback address with an
//   explicit `--insecure-loopback` (lab and local tooling). Anything else refuses to start.
import { chmodSync, existsSync, lstatSync, readFileSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { ServerCredentials } from "@grpc/grpc-js";

export type Listener =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number; tls: TlsFiles | null };

export interface TlsFiles {
  cert: string;
  key: string;
  clientCa: string;
}

export interface ApiFlags {
  stateDir: string;
  /** "unix:PATH" (or a bare absolute path) */
  api?: string;
  /** "HOST:PORT", "[V6]:PORT" */
  apiListen?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  insecureLoopback?: boolean;
}

export class ApiConfigError extends Error {}

export const DEFAULT_SOCKET = "api.sock";
/** sun_path is 108 bytes including the terminating NUL */
const UNIX_PATH_MAX = 107;

/** Parses "HOST:PORT" / "[V6]:PORT"; null when malformed. */
export function parseHostPort(s: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}

/** The listeners the flags ask for, or an ApiConfigError saying why vigil refuses to start. */
export function listenersFromFlags(f: ApiFlags): Listener[] {
  const out: Listener[] = [];
  let path = join(f.stateDir, DEFAULT_SOCKET);
  if (f.api !== undefined) {
    if (f.api.startsWith("unix:")) path = f.api.slice(5);
    else if (f.api.startsWith("/")) path = f.api;
    else throw new ApiConfigError(`--api takes unix:PATH (TCP is --api-listen HOST:PORT): '${f.api}'`);
    if (!path.startsWith("/")) throw new ApiConfigError(`--api unix socket path must be absolute: '${path}'`);
  }
  if (Buffer.byteLength(path) > UNIX_PATH_MAX) {
    throw new ApiConfigError(`API socket path is longer than ${UNIX_PATH_MAX} bytes: ${path}`);
  }
  out.push({ kind: "unix", path });

  const tlsGiven = [f.tlsCert, f.tlsKey, f.tlsClientCa].filter((x) => x !== undefined).length;
  if (f.apiListen === undefined) {
    if (tlsGiven > 0 || f.insecureLoopback) {
      throw new ApiConfigError("--tls-* and --insecure-loopback only apply with --api-listen HOST:PORT");
    }
    return out;
  }
  const hp = parseHostPort(f.apiListen);
  if (!hp) throw new ApiConfigError(`--api-listen takes HOST:PORT or [V6]:PORT: '${f.apiListen}'`);
  if (tlsGiven === 3) {
    if (f.insecureLoopback) throw new ApiConfigError("--insecure-loopback contradicts --tls-*");
    const tls = { cert: f.tlsCert!, key: f.tlsKey!, clientCa: f.tlsClientCa! };
    for (const [flag, file] of [
      ["--tls-cert", tls.cert],
      ["--tls-key", tls.key],
      ["--tls-client-ca", tls.clientCa],
    ] as const) {
      if (!existsSync(file)) throw new ApiConfigError(`${flag}: no such file: ${file}`);
    }
    out.push({ kind: "tcp", ...hp, tls });
    return out;
  }
  if (tlsGiven > 0) {
    throw new ApiConfigError("a TCP API needs all of --tls-cert, --tls-key and --tls-client-ca");
  }
  if (!f.insecureLoopback) {
    throw new ApiConfigError(
      "refusing a TCP API without TLS: give --tls-cert, --tls-key and --tls-client-ca " +
        "(client certificates required), or --insecure-loopback on a loopback address",
    );
  }
  if (!isLoopback(hp.host)) {
    throw new ApiConfigError(`--insecure-loopback only on a loopback address, not '${hp.host}'`);
  }
  out.push({ kind: "tcp", ...hp, tls: null });
  return out;
}

/** gRPC credentials of a listener: TLS with a required, CA-verified client certificate, or none. */
export function serverCredentials(l: Listener): ServerCredentials {
  if (l.kind === "unix" || l.tls === null) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    readFileSync(l.tls.clientCa),
    [{ cert_chain: readFileSync(l.tls.cert), private_key: readFileSync(l.tls.key) }],
    // checkClientCertificate: the handshake fails without a certificate signed by clientCa
    true,
  );
}

/** grpc-js bind address of a listener. */
export function bindAddress(l: Listener): string {
  if (l.kind === "unix") return `unix://${l.path}`;
  return l.host.includes(":") ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

/**
 * Removes a stale socket file before bind (a previous agent killed with -9 leaves it behind); refuses
 * to remove anything that is not a socket, so a typo in --api cannot delete a file.
 */
export function clearStaleSocket(path: string): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new ApiConfigError(`API socket path exists and is not a socket: ${path}`);
  rmSync(path, { force: true });
}

/** Owner-only access: connect() on a unix socket needs write permission on it. */
export function restrictSocket(path: string): void {
  chmodSync(path, 0o600);
}
