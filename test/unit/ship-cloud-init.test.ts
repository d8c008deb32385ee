// conf/cloud-init.yaml: valid for Debian's cloud-init (`cloud-init schema --config-file`, package
// cloud-init; missing = failed test, CI installs it), carries conf/vigil.service verbatim and a config
// vigil accepts, and its install script really installs a binary from a URL only when the checksum
// and the config check pass (run here in a scratch root against a stand-in binary over file://).
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { loadConfigFile } from "../../agent/config/load.ts";

const CONF = join(import.meta.dir, "..", "..", "conf");
const PATH = join(CONF, "cloud-init.yaml");
const text = readFileSync(PATH, "utf8");

interface WriteFile {
  path: string;
  content: string;
  permissions?: string;
  owner?: string;
}
const doc = parse(text) as { write_files: WriteFile[]; runcmd: (string | string[])[]; packages: string[] };
const file = (p: string): WriteFile => {
  const f = doc.write_files.find((w) => w.path === p);
  if (!f) throw new Error(`cloud-init.yaml writes no ${p}`);
  return f;
};

const scratch: string[] = [];
const tmp = (tag: string) => {
  const d = mkdtempSync(join(tmpdir(), `vigil-ci-${tag}-`));
  scratch.push(d);
  return d;
};
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

function schema(path: string): { code: number; out: string } {
  const ci = Bun.which("cloud-init");
  if (!ci) throw new Error("cloud-init not found: install Debian's cloud-init package (.ci/run does)");
  const p = Bun.spawnSync([ci, "schema", "--config-file", path], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}

describe("conf/cloud-init.yaml", () => {
  test("cloud-init schema --config-file accepts it", () => {
    expect(text.startsWith("#cloud-config\n")).toBe(true);
    const r = schema(PATH);
    expect(r.out).toContain("Valid cloud-config");
    expect(r.code).toBe(0);
  });

  test("cloud-init schema rejects a broken copy (the check can fail)", () => {
    const bad = join(tmp("bad"), "user-data.yaml");
    writeFileSync(bad, text.replace("package_update: true", "package_update: sometimes"));
    const r = schema(bad);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("package_update");
  });

  test("the unit it writes is conf/vigil.service verbatim", () => {
    const unit = file("/etc/systemd/system/vigil.service");
    expect(unit.content).toBe(readFileSync(join(CONF, "vigil.service"), "utf8"));
  });

  test("the config it writes is one vigil accepts without warnings", () => {
    const dir = tmp("conf");
    const p = join(dir, "keepalived.conf");
    writeFileSync(p, file("/etc/vigil/keepalived.conf").content);
    const r = loadConfigFile(p);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.warnings).toEqual([]);
    expect(r.config.vrrpInstances.length).toBe(1);
  });

  test("runcmd installs, reloads systemd and enables the unit in one chain", () => {
    const cmds = doc.runcmd.map((c) => (Array.isArray(c) ? c.join(" ") : c)).join("\n");
    expect(cmds).toMatch(
      /\/usr\/local\/sbin\/install-vigil && systemctl daemon-reload && systemctl enable --now vigil\.service/,
    );
    expect(file("/usr/local/sbin/install-vigil").permissions).toBe("0755");
    expect(doc.packages).toContain("curl");
  });

  describe("install-vigil", () => {
    const script = file("/usr/local/sbin/install-vigil").content;
    const stub =
      '#!/bin/sh\ncase "$1" in\n  version) echo \'vigil stub\' ;;\n  check) exit "$STUB_CHECK" ;;\nesac\n';

    function setup(opts: { sha?: string; check?: number } = {}) {
      const root = tmp("root");
      const src = join(tmp("src"), "vigil-linux-x86_64");
      writeFileSync(src, stub);
      const sha = new Bun.CryptoHasher("sha256").update(stub).digest("hex");
      mkdirSync(join(root, "etc/vigil"), { recursive: true });
      writeFileSync(
        join(root, "etc/vigil/install.env"),
        `VIGIL_URL=file://${src}\nVIGIL_SHA256=${opts.sha ?? sha}\n`,
      );
      writeFileSync(join(root, "etc/vigil/keepalived.conf"), file("/etc/vigil/keepalived.conf").content);
      const sh = join(root, "install-vigil");
      writeFileSync(sh, script);
      chmodSync(sh, 0o755);
      const p = Bun.spawnSync([sh], {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, VIGIL_INSTALL_ROOT: root, STUB_CHECK: String(opts.check ?? 0) },
      });
      const bin = join(root, "usr/local/bin/vigil");
      const leftovers = existsSync(join(root, "usr/local/bin"))
        ? [...new Bun.Glob("vigil.*").scanSync(join(root, "usr/local/bin"))]
        : [];
      return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString(), bin, leftovers };
    }

    test("is valid sh", () => {
      const p = Bun.spawnSync(["sh", "-n", "-c", script], { stdout: "pipe", stderr: "pipe" });
      expect(p.stderr.toString()).toBe("");
      expect(p.exitCode).toBe(0);
    });

    test("installs the binary when the checksum and the config check pass", () => {
      const r = setup();
      expect(r.out).toContain("vigil stub");
      expect(r.code).toBe(0);
      expect(readFileSync(r.bin, "utf8")).toBe(stub);
      expect(Bun.spawnSync([r.bin, "version"]).stdout.toString()).toContain("vigil stub");
      expect(r.leftovers).toEqual([]);
    });

    test("installs nothing on a checksum mismatch (the placeholder checksum included)", () => {
      const r = setup({ sha: "0".repeat(64) });
      expect(r.code).not.toBe(0);
      expect(existsSync(r.bin)).toBe(false);
      expect(r.leftovers).toEqual([]);
    });

    test("installs nothing when the binary rejects the config", () => {
      const r = setup({ check: 1 });
      expect(r.code).not.toBe(0);
      expect(existsSync(r.bin)).toBe(false);
      expect(r.leftovers).toEqual([]);
    });
  });
});
