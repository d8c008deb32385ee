// Shared fixtures of the checker tests: connection options on loopback, a self-signed certificate made
// by openssl at test time, and a throw-away network namespace for the cases that need an address with
// no host behind it (only 192.0.2.0/24, inside a namespace this run created).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConnectOptions } from "../../agent/check/types.ts";

export function loopback(port: number, timeoutMs = 1000, ip = "127.0.0.1"): ConnectOptions {
  return { connectIp: ip, connectPort: port, connectTimeoutMs: timeoutMs };
}

export interface Cert {
  cert: string;
  key: string;
}

/** A fresh self-signed EC certificate for CN=localhost. */
export function selfSignedCert(): Cert {
  const dir = mkdtempSync(join(tmpdir(), "vigil-cert-"));
  try {
    const r = Bun.spawnSync(
      [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdout: "ignore", stderr: "pipe" },
    );
    if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
    return {
      cert: readFileSync(join(dir, "cert.pem"), "utf8"),
      key: readFileSync(join(dir, "key.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const isRoot = process.getuid?.() === 0;

function sh(args: string[]): { ok: boolean; out: string } {
  const r = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: r.stdout.toString() + r.stderr.toString() };
}

/** True when this machine lets us create network namespaces. */
export function canNetns(): boolean {
  return isRoot && sh(["ip", "netns", "list"]).ok;
}

export interface Netns {
  name: string;
  /** Runs a TypeScript snippet with bun inside the namespace; returns its stdout (JSON by convention). */
  runTs(code: string, timeoutMs?: number): Promise<string>;
  delete(): void;
}

let seq = 0;

/**
 * Creates namespace `vk<pid>c<n>` with lo up and a veth pair whose one end holds 192.0.2.1/24, so that
 * 192.0.2.2 is on a connected link but nobody answers (ARP goes unanswered, nothing leaves the namespace).
 */
export function makeNetns(): Netns {
  const name = `vk${process.pid}c${seq++}`;
  const must = (args: string[]): void => {
    const r = sh(args);
    if (!r.ok) throw new Error(`${args.join(" ")}: ${r.out}`);
  };
  must(["ip", "netns", "add", name]);
  try {
    must(["ip", "-n", name, "link", "set", "lo", "up"]);
    // both ends stay in the namespace: ARP for 192.0.2.2 goes out vka, reaches vkb and nobody answers
    must(["ip", "-n", name, "link", "add", "vka", "type", "veth", "peer", "name", "vkb"]);
    must(["ip", "-n", name, "addr", "add", "192.0.2.1/24", "dev", "vka"]);
    must(["ip", "-n", name, "link", "set", "vka", "up"]);
    must(["ip", "-n", name, "link", "set", "vkb", "up"]);
  } catch (e) {
    sh(["ip", "netns", "del", name]);
    throw e;
  }
  return {
    name,
    async runTs(code: string, timeoutMs = 20_000): Promise<string> {
      const dir = mkdtempSync(join(tmpdir(), "vigil-ns-"));
      const file = join(dir, "snippet.ts");
      await Bun.write(file, code);
      try {
        const p = Bun.spawn(["ip", "netns", "exec", name, process.execPath, file], {
          stdout: "pipe",
          stderr: "pipe",
          cwd: process.cwd(),
        });
        const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
        const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
        await p.exited;
        clearTimeout(t);
        if (p.exitCode !== 0) throw new Error(`snippet failed (${p.exitCode}): ${err}`);
        return out;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    delete(): void {
      sh(["ip", "netns", "del", name]);
    },
  };
}

/** Absolute path of a repository file, for imports in namespace snippets. */
export function repoPath(rel: string): string {
  return join(import.meta.dir, "..", "..", rel);
}
