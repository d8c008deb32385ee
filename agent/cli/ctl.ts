// `vigil ctl`: the operator's client of the gRPC API (the same API fleet controllers use).
// Output is for people unless --json; every failure is one line on stderr (multi-line only to list
// config errors, one per line) and a non-zero exit: 1 for a refused or failed call, 2 for usage.
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import * as pb from "../../proto/gen/vigil/v1/agent.ts";
import { formatOf } from "../config/load.ts";
import { parseFlags, UsageError } from "./args.ts";

const USAGE = `usage: vigil ctl [--api ADDR] [--tls-ca F --tls-cert F --tls-key F | --insecure] COMMAND
  status [--json]                    instances, processes, virtual servers
  apply -f FILE [--dry-run] [--expect-generation N]
                                     validate, persist and apply a config (keepalived.conf, .yaml, .json)
  config [--json]                    the running config and its generation
  watch [--from SEQ] [--json]        stream events (Ctrl-C to stop)
  drain VS RS | undrain VS RS        keep a real server in IPVS with weight 0 (established connections
                                     continue, no new ones) / give it back its weight
  maintenance INSTANCE on|off        force a VRRP instance to BACKUP / release it
ADDR: unix:PATH (default unix:/var/lib/vigil/api.sock, or $VIGIL_API) or HOST:PORT (TLS unless --insecure)
VS: ADDRESS:PORT/PROTOCOL (192.0.2.10:80/TCP, [2001:db8::10]:443/TCP; /PROTOCOL may be left out when
    unambiguous), "fwmark N" or "group NAME", as "status" shows them
RS: ADDRESS:PORT (198.51.100.1:80, [2001:db8::1]:80), or ADDRESS when unambiguous
Drains and instances in maintenance are persisted by the agent and survive its restarts.
`;

const DEFAULT_API = "unix:/var/lib/vigil/api.sock";

class CtlError extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

interface Conn {
  client: pb.AgentClient;
  target: string;
  timeoutMs: number;
}

function connect(values: Record<string, unknown>): Conn {
  const api = (values["api"] as string | undefined) ?? process.env["VIGIL_API"] ?? DEFAULT_API;
  const timeoutMs = Math.round(Number((values["timeout"] as string | undefined) ?? "30") * 1000);
  if (!(timeoutMs > 0)) throw new CtlError("--timeout takes seconds > 0", 2);
  const opts: grpc.ClientOptions = {
    // big configs come back from GetConfig: accept what the server may send
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  };
  if (api.startsWith("unix:") || api.startsWith("/")) {
    const path = api.startsWith("unix:") ? api.slice(5) : api;
    return {
      client: new pb.AgentClient(`unix:${path}`, grpc.credentials.createInsecure(), opts),
      target: `unix:${path}`,
      timeoutMs,
    };
  }
  let creds: grpc.ChannelCredentials;
  if (values["insecure"] === true) creds = grpc.credentials.createInsecure();
  else {
    const need = ["tls-ca", "tls-cert", "tls-key"].filter((k) => values[k] === undefined);
    if (need.length > 0) {
      throw new CtlError(`TCP API needs --${need.join(", --")} (or --insecure for a loopback agent)`, 2);
    }
    const read = (k: string) => {
      const f = values[k] as string;
      try {
        return readFileSync(f);
      } catch (e) {
        throw new CtlError(`--${k}: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? e}`, 2);
      }
    };
    creds = grpc.credentials.createSsl(read("tls-ca"), read("tls-key"), read("tls-cert"));
  }
  return { client: new pb.AgentClient(api, creds, opts), target: api, timeoutMs };
}

/** One line (plus the config errors, one per line) for a failed call. */
function describe(e: grpc.ServiceError, target: string): string {
  const name = grpc.status[e.code] ?? String(e.code);
  if (e.code === grpc.status.UNAVAILABLE) return `cannot reach the agent at ${target}: ${e.details}`;
  if (e.code === grpc.status.DEADLINE_EXCEEDED) return `no answer from the agent at ${target} in time`;
  return `${name}: ${e.details}`;
}

function unary<Req, Res>(
  conn: Conn,
  call: (
    req: Req,
    md: grpc.Metadata,
    opts: Partial<grpc.CallOptions>,
    cb: (e: grpc.ServiceError | null, r: Res) => void,
  ) => grpc.ClientUnaryCall,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call.call(conn.client, req, new grpc.Metadata(), { deadline: Date.now() + conn.timeoutMs }, (e, r) =>
      e ? reject(new CtlError(describe(e, conn.target))) : resolve(r),
    );
  });
}

function pad(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "))
    .join("\n");
}

function ago(unixMs: number): string {
  if (unixMs <= 0) return "-";
  const s = Math.max(0, Math.round((Date.now() - unixMs) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function formatState(st: pb.GetStateResponse): string {
  const out: string[] = [`generation ${st.generation}`, ""];
  const inst = st.instances.map((i) => [
    i.name,
    String(i.vrid),
    i.maintenance ? `${i.state} (maintenance)` : i.state,
    `${i.effectivePriority}/${i.basePriority}`,
    i.vipsHeld.join(",") || "-",
    i.currentMaster || "-",
    i.lastTransition
      ? `${i.lastTransition.from}->${i.lastTransition.to} ${ago(i.lastTransitionUnixMs)}`
      : "-",
  ]);
  out.push(
    inst.length
      ? pad([["INSTANCE", "VRID", "STATE", "PRIO", "VIPS HELD", "MASTER", "LAST TRANSITION"], ...inst])
      : "no VRRP instances",
  );
  out.push("");
  if (st.virtualServers.length === 0) out.push("no virtual servers");
  else {
    if (!st.loadBalancingAvailable) {
      out.push(`IPVS: ${st.ipvs}${st.ipvsError ? ` (${st.ipvsError})` : ""}: nothing is programmed`);
    }
    const rs = st.virtualServers.flatMap((v) =>
      v.realServers.map((r) => [
        v.quorumUp ? v.name : `${v.name} (no quorum${v.sorryActive ? ", sorry server" : ""})`,
        r.key.slice(v.name.length + 4) || `${r.address}:${r.port}`,
        r.drained ? `${r.health} (drained)` : r.health,
        String(r.weight),
        r.inKernel ? `yes, weight ${r.kernelWeight}` : "no",
        r.lastCheckResult || "-",
      ]),
    );
    out.push(pad([["VIRTUAL SERVER", "REAL SERVER", "HEALTH", "WEIGHT", "IN KERNEL", "LAST CHECK"], ...rs]));
  }
  out.push("");
  out.push(
    pad([
      ["PROCESS", "PID", "STATE", "RESTARTS", "UPTIME"],
      ...st.processes.map((p) => [
        p.role,
        String(p.pid || "-"),
        p.crashLooping ? `${p.state} (crash-looping)` : p.state,
        String(p.restarts),
        `${Math.round(p.uptimeMs / 1000)}s`,
      ]),
    ]),
  );
  return out.join("\n");
}

function formatDiff(d: pb.ConfigDiff | undefined): string {
  const lines: string[] = [];
  const part = (label: string, n: pb.NameDiff | undefined) => {
    if (!n) return;
    for (const x of n.added) lines.push(`  + ${label} ${x}`);
    for (const x of n.changed) lines.push(`  ~ ${label} ${x}`);
    for (const x of n.removed) lines.push(`  - ${label} ${x}`);
  };
  part("instance", d?.instances);
  part("virtual server", d?.virtualServers);
  part("real server", d?.realServers);
  return lines.length ? lines.join("\n") : "  no changes";
}

export function formatEvent(e: pb.Event): string {
  const t = new Date(e.atUnixMs).toISOString();
  const head = `${String(e.sequence).padStart(6)} ${t}`;
  if (e.transition) {
    const x = e.transition;
    return `${head} transition ${x.instance}: ${x.from} -> ${x.to} (${x.reason}) priority ${x.priority}`;
  }
  if (e.configApplied) {
    const c = e.configApplied;
    const n = c.diff?.instances;
    return `${head} config applied: generation ${c.generation} from ${c.source} (+${n?.added.length ?? 0} ~${n?.changed.length ?? 0} -${n?.removed.length ?? 0} instances)`;
  }
  if (e.processRestart) {
    const p = e.processRestart;
    return `${head} process ${p.role} (pid ${p.pid}) exited: ${p.reason}; restarts ${p.restarts}`;
  }
  if (e.health) {
    const h = e.health;
    return `${head} health ${h.virtualServer} ${h.realServer}: ${h.healthy ? "UP" : "DOWN"} weight ${h.weight} (${h.detail})`;
  }
  if (e.quorum) {
    const q = e.quorum;
    return `${head} quorum ${q.virtualServer}: ${q.up ? "gained" : "lost"} (weight ${q.weightSum}, quorum ${q.quorum}, hysteresis ${q.hysteresis})`;
  }
  if (e.maintenance) {
    const m = e.maintenance;
    if (m.instance) return `${head} maintenance instance ${m.instance}: ${m.active ? "on" : "off"}`;
    return `${head} real server ${m.virtualServer} ${m.realServer}: ${m.active ? "drained" : "undrained"}`;
  }
  if (e.eventsLost) {
    return `${head} events ${e.eventsLost.firstMissed}..${e.eventsLost.lastMissed} are not held (dropped from the buffer, or from an earlier run of the agent); run status to resync`;
  }
  return `${head} (unknown event)`;
}

async function cmdWatch(conn: Conn, from: number, json: boolean): Promise<number> {
  let last = 0;
  for (;;) {
    const stream = conn.client.watchEvents(pb.WatchEventsRequest.fromPartial({ fromSequence: from }));
    const end = await new Promise<grpc.ServiceError | null>((resolve) => {
      stream.on("data", (e: pb.Event) => {
        if (e.sequence > 0) last = e.sequence;
        process.stdout.write(`${json ? JSON.stringify(pb.Event.toJSON(e)) : formatEvent(e)}\n`);
      });
      stream.on("error", (e: grpc.ServiceError) => resolve(e));
      stream.on("end", () => resolve(null));
    });
    // cut off for reading too slowly: resume where we were, the server replays what it still holds
    if (end?.code === grpc.status.RESOURCE_EXHAUSTED && last > 0) {
      from = last + 1;
      continue;
    }
    if (end) throw new CtlError(describe(end, conn.target));
    return 0;
  }
}

export async function runCtl(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv, {
      api: { type: "string" },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      insecure: { type: "boolean" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      file: { type: "string", short: "f" },
      "dry-run": { type: "boolean" },
      "expect-generation": { type: "string" },
      from: { type: "string" },
      help: { type: "boolean", short: "h" },
    });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`vigil ctl: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  const v = parsed.values;
  const [cmd, ...args] = parsed.positionals;
  if (v["help"] || cmd === undefined) {
    (cmd === undefined && !v["help"] ? process.stderr : process.stdout).write(USAGE);
    return cmd === undefined && !v["help"] ? 2 : 0;
  }
  const json = v["json"] === true;
  let conn: Conn | null = null;
  try {
    conn = connect(v);
    const c = conn;
    switch (cmd) {
      case "status": {
        const st = await unary(c, c.client.getState, pb.GetStateRequest.fromPartial({}));
        console.log(json ? JSON.stringify(pb.GetStateResponse.toJSON(st), null, 2) : formatState(st));
        return 0;
      }
      case "config": {
        const r = await unary(c, c.client.getConfig, pb.GetConfigRequest.fromPartial({}));
        if (json) console.log(JSON.stringify(pb.GetConfigResponse.toJSON(r), null, 2));
        else process.stdout.write(`# generation ${r.generation} (source: ${r.source})\n${r.yaml}`);
        return 0;
      }
      case "apply": {
        const file = v["file"] as string | undefined;
        if (!file) throw new CtlError("apply needs -f FILE", 2);
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch (e) {
          throw new CtlError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
        }
        const fmt = formatOf(file);
        const format =
          fmt === "yaml"
            ? pb.ConfigFormat.CONFIG_FORMAT_YAML
            : fmt === "json"
              ? pb.ConfigFormat.CONFIG_FORMAT_JSON
              : pb.ConfigFormat.CONFIG_FORMAT_KEEPALIVED;
        const expect = v["expect-generation"] as string | undefined;
        if (expect !== undefined && !/^\d+$/.test(expect))
          throw new CtlError("--expect-generation takes N", 2);
        const r = await unary(
          c,
          c.client.applyConfig,
          pb.ApplyConfigRequest.fromPartial({
            text: { format, text, name: file },
            dryRun: v["dry-run"] === true,
            ...(expect !== undefined ? { expectedGeneration: Number(expect) } : {}),
          }),
        );
        if (json) console.log(JSON.stringify(pb.ApplyConfigResponse.toJSON(r), null, 2));
        else {
          console.log(
            r.dryRun ? `dry run: would be generation ${r.generation}` : `applied: generation ${r.generation}`,
          );
          console.log(formatDiff(r.diff));
          for (const w of r.warnings) console.log(`warning: ${w.file}:${w.line}: ${w.message}`);
        }
        return 0;
      }
      case "watch": {
        const from = (v["from"] as string | undefined) ?? "0";
        if (!/^\d+$/.test(from)) throw new CtlError("--from takes a sequence number", 2);
        return await cmdWatch(c, Number(from), json);
      }
      case "drain":
      case "undrain": {
        const [vs, rs] = args;
        if (!vs || !rs || args.length !== 2) throw new CtlError(`${cmd} takes VS RS`, 2);
        const r = await unary(
          c,
          c.client.setMaintenance,
          pb.SetMaintenanceRequest.fromPartial({
            realServer: { virtualServer: vs, realServer: rs },
            active: cmd === "drain",
          }),
        );
        console.log(
          `${rs} in ${vs}: ${cmd === "drain" ? "drained (weight 0)" : "back in rotation"}${r.changed ? "" : " (already)"}`,
        );
        return 0;
      }
      case "maintenance": {
        const [name, mode] = args;
        if (!name || (mode !== "on" && mode !== "off") || args.length !== 2) {
          throw new CtlError("maintenance takes INSTANCE on|off", 2);
        }
        const r = await unary(
          c,
          c.client.setMaintenance,
          pb.SetMaintenanceRequest.fromPartial({ instance: { name }, active: mode === "on" }),
        );
        console.log(
          `${name}: ${mode === "on" ? "forced to BACKUP" : "released"}${r.changed ? "" : " (already)"}`,
        );
        return 0;
      }
      default:
        throw new CtlError(`unknown command '${cmd}'`, 2);
    }
  } catch (e) {
    if (e instanceof CtlError) {
      process.stderr.write(`vigil ctl: ${e.message}\n${e.code === 2 ? USAGE : ""}`);
      return e.code;
    }
    process.stderr.write(`vigil ctl: ${String((e as Error).message ?? e)}\n`);
    return 1;
  } finally {
    conn?.client.close();
  }
}
