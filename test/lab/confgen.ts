// keepalived.conf text for test topologies. vigil and keepalived read the same syntax, so one
// generator serves both sides of a mixed group.

export interface InstanceConf {
  name?: string;
  vrid?: number;
  priority: number;
  version?: 2 | 3;
  advertInt?: number;
  iface?: string;
  vips: string[];
  state?: "MASTER" | "BACKUP";
  nopreempt?: boolean;
  preemptDelay?: number;
  authPass?: string;
  unicastSrc?: string;
  unicastPeers?: string[];
  trackInterfaces?: { name: string; weight?: number }[];
  trackScripts?: { name: string; weight?: number }[];
  notify?: string;
  notifyMaster?: string;
  notifyBackup?: string;
  notifyFault?: string;
  garpMasterDelay?: number;
  garpMasterRepeat?: number;
  extra?: string[];
}

export interface ScriptConf {
  name: string;
  script: string;
  interval?: number;
  weight?: number;
  rise?: number;
  fall?: number;
  /** `user NAME [GROUP]` */
  user?: string;
}

export function keepalivedConf(opts: {
  routerId?: string;
  instances: InstanceConf[];
  scripts?: ScriptConf[];
  /** track_file blocks; `init` is the rest of an init_file line ("" for the bare keyword) */
  trackFiles?: { name: string; file: string; weight?: number; init?: string }[];
  syncGroups?: { name: string; group: string[]; notify?: string }[];
  globals?: string[];
}): string {
  const out: string[] = [];
  out.push("global_defs {");
  out.push(`  router_id ${opts.routerId ?? "vigil_test"}`);
  for (const g of opts.globals ?? []) out.push(`  ${g}`);
  out.push("}", "");
  for (const s of opts.scripts ?? []) {
    out.push(`vrrp_script ${s.name} {`);
    out.push(`  script "${s.script}"`);
    out.push(`  interval ${s.interval ?? 1}`);
    if (s.weight !== undefined) out.push(`  weight ${s.weight}`);
    if (s.rise !== undefined) out.push(`  rise ${s.rise}`);
    if (s.fall !== undefined) out.push(`  fall ${s.fall}`);
    if (s.user !== undefined) out.push(`  user ${s.user}`);
    out.push("}", "");
  }
  for (const f of opts.trackFiles ?? []) {
    out.push(`track_file ${f.name} {`, `  file "${f.file}"`);
    if (f.weight !== undefined) out.push(`  weight ${f.weight}`);
    if (f.init !== undefined) out.push(`  init_file ${f.init}`.trimEnd());
    out.push("}", "");
  }
  for (const g of opts.syncGroups ?? []) {
    out.push(`vrrp_sync_group ${g.name} {`, "  group {", ...g.group.map((n) => `    ${n}`), "  }");
    if (g.notify) out.push(`  notify "${g.notify}"`);
    out.push("}", "");
  }
  opts.instances.forEach((i, idx) => {
    out.push(`vrrp_instance ${i.name ?? `VI_${idx + 1}`} {`);
    out.push(`  state ${i.state ?? "BACKUP"}`);
    out.push(`  interface ${i.iface ?? "eth0"}`);
    out.push(`  virtual_router_id ${i.vrid ?? 51}`);
    out.push(`  priority ${i.priority}`);
    out.push(`  advert_int ${i.advertInt ?? 1}`);
    if (i.version) out.push(`  version ${i.version}`);
    if (i.nopreempt) out.push("  nopreempt");
    if (i.preemptDelay !== undefined) out.push(`  preempt_delay ${i.preemptDelay}`);
    if (i.authPass !== undefined) {
      out.push("  authentication {", "    auth_type PASS", `    auth_pass ${i.authPass}`, "  }");
    }
    if (i.unicastSrc) out.push(`  unicast_src_ip ${i.unicastSrc}`);
    if (i.unicastPeers?.length) out.push("  unicast_peer {", ...i.unicastPeers.map((p) => `    ${p}`), "  }");
    if (i.trackInterfaces?.length) {
      out.push("  track_interface {");
      for (const t of i.trackInterfaces)
        out.push(`    ${t.name}${t.weight !== undefined ? ` weight ${t.weight}` : ""}`);
      out.push("  }");
    }
    if (i.trackScripts?.length) {
      out.push("  track_script {");
      for (const t of i.trackScripts)
        out.push(`    ${t.name}${t.weight !== undefined ? ` weight ${t.weight}` : ""}`);
      out.push("  }");
    }
    if (i.garpMasterDelay !== undefined) out.push(`  garp_master_delay ${i.garpMasterDelay}`);
    if (i.garpMasterRepeat !== undefined) out.push(`  garp_master_repeat ${i.garpMasterRepeat}`);
    if (i.notify) out.push(`  notify "${i.notify}"`);
    if (i.notifyMaster) out.push(`  notify_master "${i.notifyMaster}"`);
    if (i.notifyBackup) out.push(`  notify_backup "${i.notifyBackup}"`);
    if (i.notifyFault) out.push(`  notify_fault "${i.notifyFault}"`);
    for (const e of i.extra ?? []) out.push(`  ${e}`);
    out.push("  virtual_ipaddress {", ...i.vips.map((v) => `    ${v}`), "  }");
    out.push("}", "");
  });
  return out.join("\n");
}
