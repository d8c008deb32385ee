// The gRPC server of the watchdog: vigil.v1.Agent, grpc.health.v1.Health and server reflection
// (v1 and v1alpha), on the listeners auth.ts allowed. Handlers translate between proto messages and
// the controller/state/events; they never throw into grpc-js (every failure becomes a status), and
// requests are bounded in size, streams in number, and a slow watcher in how much it may queue.
import * as grpc from "@grpc/grpc-js";
import { fromJSON, loadFileDescriptorSetFromBuffer, type PackageDefinition } from "@grpc/proto-loader";
import type { ServerReflectionRequest } from "@grpc/reflection/build/src/generated/grpc/reflection/v1/ServerReflectionRequest";
import { PROTO_LOADER_OPTS } from "@grpc/reflection/build/src/implementations/common/constants";
import { ReflectionV1Implementation } from "@grpc/reflection/build/src/implementations/reflection-v1";
import { DESCRIPTOR_SET_BASE64, REFLECTION_JSON } from "../../proto/gen/descriptor.ts";
import { Any } from "../../proto/gen/google/protobuf/any.ts";
import { Status as RpcStatus } from "../../proto/gen/google/rpc/status.ts";
import {
  type HealthCheckRequest,
  HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  type HealthServer,
  HealthService,
} from "../../proto/gen/grpc/health/v1/health.ts";
import * as pb from "../../proto/gen/vigil/v1/agent.ts";
import { type ConfigFormat, parseConfigText, toYaml } from "../config/load.ts";
import { type ConfigError, formatConfigError } from "../config/model.ts";
import type { Logger } from "../observe/log.ts";
import { bindAddress, clearStaleSocket, type Listener, restrictSocket, serverCredentials } from "./auth.ts";
import type { ApplyOutcome, ConfigController } from "./controller.ts";
import type { EventRing } from "./events.ts";
import { configFromProto, configToProto, diffToProto, issueToProto } from "./mapping.ts";
import type { AgentState } from "./state.ts";

export interface ApiLimits {
  /** largest request accepted (bytes); larger ones get RESOURCE_EXHAUSTED from grpc-js */
  maxRequestBytes: number;
  /** HTTP/2 streams per connection */
  maxConcurrentStreams: number;
  /** WatchEvents streams at once, over all connections */
  maxWatchers: number;
  /** events queued for one watcher before it is cut off as fallen behind */
  maxQueuedEvents: number;
}

export const DEFAULT_LIMITS: ApiLimits = {
  // keepalived.conf of a few thousand real servers stays well under this
  maxRequestBytes: 4 * 1024 * 1024,
  maxConcurrentStreams: 64,
  maxWatchers: 32,
  maxQueuedEvents: 1024,
};

export type MaintenanceResult =
  | { ok: true; changed: boolean }
  | { ok: false; code: grpc.status; message: string };

/** What the server needs from the agent; run.ts supplies it. */
export interface ApiBackend {
  controller: ConfigController;
  state: AgentState;
  events: EventRing;
  processes: () => pb.ProcessState[];
  setInstanceMaintenance: (name: string, active: boolean) => MaintenanceResult;
  setRealServerMaintenance: (vs: string, rs: string, active: boolean) => MaintenanceResult;
  /** whether the operator drained this real server (by its keys) */
  drained: (vsKey: string, rsKey: string) => boolean;
  log: Logger;
}

const CONFIG_ERRORS_TYPE = "type.googleapis.com/vigil.v1.ConfigErrors";

function statusError(
  code: grpc.status,
  details: string,
  metadata?: grpc.Metadata,
): Partial<grpc.StatusObject> {
  return metadata ? { code, details, metadata } : { code, details };
}

/** INVALID_ARGUMENT listing every error, also as google.rpc.Status details (ConfigErrors). */
function invalidConfig(errors: ConfigError[]): Partial<grpc.StatusObject> {
  const details = `invalid config (${errors.length} error${errors.length === 1 ? "" : "s"}):\n${errors
    .map(formatConfigError)
    .join("\n")}`;
  const status = RpcStatus.fromPartial({
    code: grpc.status.INVALID_ARGUMENT,
    message: details,
    details: [
      Any.fromPartial({
        typeUrl: CONFIG_ERRORS_TYPE,
        value: Buffer.from(
          pb.ConfigErrors.encode(pb.ConfigErrors.fromPartial({ errors: errors.map(issueToProto) })).finish(),
        ),
      }),
    ],
  });
  const md = new grpc.Metadata();
  md.set("grpc-status-details-bin", Buffer.from(RpcStatus.encode(status).finish()));
  return statusError(grpc.status.INVALID_ARGUMENT, details, md);
}

function formatOf(f: pb.ConfigFormat): ConfigFormat | null {
  switch (f) {
    case pb.ConfigFormat.CONFIG_FORMAT_KEEPALIVED:
      return "keepalived";
    case pb.ConfigFormat.CONFIG_FORMAT_YAML:
      return "yaml";
    case pb.ConfigFormat.CONFIG_FORMAT_JSON:
      return "json";
    default:
      return null;
  }
}

/** Structured configs go through the same loader as YAML/JSON text; errors name the field path. */
function loadStructured(c: pb.Config) {
  const r = parseConfigText(JSON.stringify(configFromProto(c), null, 1), "json", "config");
  // the line numbers are those of an internal JSON rendering: meaningless to the client
  return r.ok ? r : { ok: false as const, errors: r.errors.map((e) => ({ ...e, line: 0 })) };
}

function outcomeToReply(
  o: ApplyOutcome,
): { err: Partial<grpc.StatusObject> } | { reply: pb.ApplyConfigResponse } {
  if (o.ok) {
    return {
      reply: pb.ApplyConfigResponse.fromPartial({
        generation: o.generation,
        diff: diffToProto(o.diff),
        dryRun: o.dryRun,
        warnings: o.warnings.map(issueToProto),
      }),
    };
  }
  switch (o.kind) {
    case "invalid":
      return { err: invalidConfig(o.errors) };
    case "stale":
      return {
        err: statusError(
          grpc.status.FAILED_PRECONDITION,
          `generation mismatch: expected ${o.expected}, running ${o.running}`,
        ),
      };
    case "failed":
      return { err: statusError(grpc.status.ABORTED, o.message) };
  }
}

export class ApiServer {
  private server: grpc.Server | null = null;
  private readonly limits: ApiLimits;
  private watchers = 0;
  private readonly unixPaths: string[] = [];
  private readonly healthWatchers = new Set<
    grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>
  >();

  constructor(
    private readonly b: ApiBackend,
    limits: Partial<ApiLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Binds every listener; throws (with the address) when one cannot be bound. */
  async listen(listeners: Listener[]): Promise<string[]> {
    const server = new grpc.Server({
      "grpc.max_receive_message_length": this.limits.maxRequestBytes,
      "grpc.max_concurrent_streams": this.limits.maxConcurrentStreams,
      // a client that vanished (cable pulled) does not hold a watcher slot forever
      "grpc.keepalive_time_ms": 60_000,
      "grpc.keepalive_timeout_ms": 20_000,
    });
    this.server = server;
    server.addService(pb.AgentService, this.agentHandlers());
    server.addService(HealthService, this.healthHandlers());
    addReflection(server);
    const bound: string[] = [];
    for (const l of listeners) {
      const addr = bindAddress(l);
      if (l.kind === "unix") clearStaleSocket(l.path);
      // the socket is created with mode ~umask: create it owner-only, so there is no window in
      // which another user could connect before the chmod below
      const prevMask = l.kind === "unix" ? process.umask(0o077) : null;
      try {
        await new Promise<number>((resolve, reject) =>
          server.bindAsync(addr, serverCredentials(l), (err, port) => (err ? reject(err) : resolve(port))),
        );
      } catch (e) {
        throw new Error(`cannot listen on ${addr}: ${(e as Error).message}`);
      } finally {
        if (prevMask !== null) process.umask(prevMask);
      }
      if (l.kind === "unix") {
        restrictSocket(l.path);
        this.unixPaths.push(l.path);
      }
      bound.push(l.kind === "tcp" ? `${addr} (${l.tls ? "mTLS" : "plaintext, loopback"})` : addr);
    }
    return bound;
  }

  /** Ends streams and closes listeners (after in-flight unary calls, at most graceMs). */
  async stop(graceMs = 1000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const w of this.healthWatchers) w.end();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    for (const p of this.unixPaths) clearStaleSocketQuiet(p);
  }

  private agentHandlers(): pb.AgentServer {
    const b = this.b;
    return {
      applyConfig: (call, cb) => {
        const req = call.request;
        let load: () => ReturnType<typeof parseConfigText>;
        if (req.text) {
          const fmt = formatOf(req.text.format);
          if (fmt === null) {
            cb(statusError(grpc.status.INVALID_ARGUMENT, "text.format must be KEEPALIVED, YAML or JSON"));
            return;
          }
          const text = req.text.text;
          const name = req.text.name || "api";
          load = () => parseConfigText(text, fmt, name);
        } else if (req.config) {
          const c = req.config;
          load = () => loadStructured(c);
        } else {
          cb(statusError(grpc.status.INVALID_ARGUMENT, "config or text is required"));
          return;
        }
        b.controller
          .apply({
            load,
            ...(req.expectedGeneration !== undefined ? { expectedGeneration: req.expectedGeneration } : {}),
            dryRun: req.dryRun,
            source: "api",
          })
          .then(
            (o) => {
              const r = outcomeToReply(o);
              if ("err" in r) cb(r.err);
              else cb(null, r.reply);
            },
            (e: unknown) => {
              // e.g. the state directory is not writable: nothing was applied
              b.log.error({ err: String(e) }, "ApplyConfig failed");
              cb(statusError(grpc.status.INTERNAL, `apply failed: ${String(e)}`));
            },
          );
      },
      getConfig: (_call, cb) => {
        const cur = b.controller.current;
        cb(
          null,
          pb.GetConfigResponse.fromPartial({
            generation: cur.generation,
            config: configToProto(cur.config),
            yaml: toYaml(cur.config),
            source: cur.source,
          }),
        );
      },
      getState: (_call, cb) => {
        const cur = b.controller.current;
        const ipvs = b.state.ipvs();
        cb(
          null,
          pb.GetStateResponse.fromPartial({
            generation: cur.generation,
            instances: b.state.instanceStates(),
            virtualServers: b.state.virtualServerStates(cur.config, b.drained),
            processes: b.processes(),
            loadBalancingAvailable: ipvs.state === "ok",
            ipvs: ipvs.state,
            ipvsError: ipvs.error,
          }),
        );
      },
      watchEvents: (call) => this.watch(call),
      setMaintenance: (call, cb) => {
        const req = call.request;
        let r: MaintenanceResult;
        if (req.instance) {
          r = b.setInstanceMaintenance(req.instance.name, req.active);
        } else if (req.realServer) {
          r = b.setRealServerMaintenance(req.realServer.virtualServer, req.realServer.realServer, req.active);
        } else {
          r = {
            ok: false,
            code: grpc.status.INVALID_ARGUMENT,
            message: "instance or real_server is required",
          };
        }
        if (r.ok) cb(null, pb.SetMaintenanceResponse.fromPartial({ changed: r.changed }));
        else cb(statusError(r.code, r.message));
      },
    };
  }

  private watch(call: grpc.ServerWritableStream<pb.WatchEventsRequest, pb.Event>): void {
    const ring = this.b.events;
    if (this.watchers >= this.limits.maxWatchers) {
      call.emit(
        "error",
        statusError(grpc.status.RESOURCE_EXHAUSTED, `at most ${this.limits.maxWatchers} watchers`),
      );
      return;
    }
    this.watchers++;
    let lastSent = 0;
    let unsubscribe: (() => void) | null = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.watchers--;
      unsubscribe?.();
    };
    const send = (e: pb.Event): void => {
      if (done) return;
      // objectMode stream: writableLength counts messages not yet taken by HTTP/2 flow control
      if (call.writableLength >= this.limits.maxQueuedEvents) {
        finish();
        call.emit(
          "error",
          statusError(
            grpc.status.RESOURCE_EXHAUSTED,
            `client fell behind after sequence ${lastSent}; reconnect with from_sequence=${lastSent + 1}`,
          ),
        );
        return;
      }
      call.write(e);
      lastSent = e.sequence;
    };
    call.on("cancelled", finish);
    call.on("close", finish);
    call.on("error", finish);
    // replay and subscribe in one synchronous run: no event can slip between them
    const since = ring.since(call.request.fromSequence);
    if (since.kind === "beyond") {
      finish();
      call.emit(
        "error",
        statusError(
          grpc.status.OUT_OF_RANGE,
          `from_sequence ${call.request.fromSequence} is beyond the newest event (${since.last}): it is not from this agent's history; resync with GetState and watch from ${since.last + 1}`,
        ),
      );
      return;
    }
    const { lost, events } = since;
    if (lost) {
      send(
        pb.Event.fromPartial({
          sequence: 0,
          atUnixMs: Date.now(),
          eventsLost: pb.EventsLost.fromPartial(lost),
        }),
      );
    }
    for (const e of events) send(e);
    if (!done) unsubscribe = ring.subscribe(send);
  }

  private healthHandlers(): HealthServer {
    // the API answers only while the agent runs: SERVING for "" and for the Agent service
    const known = new Set(["", "vigil.v1.Agent"]);
    const statusOf = (service: string) =>
      known.has(service)
        ? HealthCheckResponse_ServingStatus.SERVING
        : HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN;
    return {
      check: (call, cb) => {
        if (!known.has(call.request.service)) {
          cb(statusError(grpc.status.NOT_FOUND, `unknown service '${call.request.service}'`));
          return;
        }
        cb(null, HealthCheckResponse.fromPartial({ status: statusOf(call.request.service) }));
      },
      watch: (call) => {
        call.write(HealthCheckResponse.fromPartial({ status: statusOf(call.request.service) }));
        this.healthWatchers.add(call);
        call.on("cancelled", () => this.healthWatchers.delete(call));
      },
    };
  }
}

function clearStaleSocketQuiet(path: string): void {
  try {
    clearStaleSocket(path);
  } catch {
    // replaced by something else meanwhile: not ours to remove
  }
}

let reflectionDefs: PackageDefinition | null = null;
let reflectionImpl: ReflectionV1Implementation | null = null;

/**
 * Server reflection from the descriptor set embedded at codegen time. @grpc/reflection's own
 * addToServer reads its .proto files from disk, which the compiled binary does not have, so its
 * request logic is used here with service definitions embedded as JSON (camelCase fields, as that
 * logic expects); the descriptors it answers with come from the embedded descriptor set. Indexing
 * that set costs a few hundred ms of CPU, so it happens on the first reflection request, not at start.
 */
function addReflection(server: grpc.Server): void {
  // generated from protobufjs's own toJSON(): the shape fromJSON takes
  reflectionDefs ??= fromJSON(REFLECTION_JSON as Parameters<typeof fromJSON>[0], PROTO_LOADER_OPTS);
  const impl = () => {
    reflectionImpl ??= new ReflectionV1Implementation(
      loadFileDescriptorSetFromBuffer(Buffer.from(DESCRIPTOR_SET_BASE64, "base64"), PROTO_LOADER_OPTS),
    );
    return reflectionImpl;
  };
  for (const name of ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]) {
    const def = reflectionDefs[name] as grpc.ServiceDefinition | undefined;
    if (!def) continue;
    server.addService(def, {
      ServerReflectionInfo: (stream: grpc.ServerDuplexStream<ServerReflectionRequest, unknown>) => {
        stream.on("end", () => stream.end());
        stream.on("data", (m: ServerReflectionRequest) => {
          stream.write(impl().handleServerReflectionRequest(m));
        });
      },
    });
  }
}
