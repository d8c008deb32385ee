// The messages watchdog and children exchange over the supervisor socket. Every received frame is
// validated against this union before anyone acts on it: a child is a separate process that may be
// from another build (during an upgrade) or broken, so nothing it sends is trusted by type alone.
// Payloads that have their own schema elsewhere (the config model, VRRP instance states) stay opaque
// here and are validated by their consumer; this file only fixes the envelope.
import { z } from "zod";

/** Role names travel in argv and logs: short, lowercase, no spaces. */
export const RoleName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, "role must match [a-z][a-z0-9-]{0,31}");
export type RoleName = z.infer<typeof RoleName>;

const opaqueRecord = z.record(z.string(), z.unknown());

/** First message of a child on a new connection; `pid` must be the pid the watchdog spawned for `role`. */
export const Hello = z.object({
  type: z.literal("hello"),
  role: RoleName,
  pid: z.number().int().positive(),
});

/** Liveness from a child; `seq` increases by one per beat, `at` is the child's wall clock (ms). */
export const Heartbeat = z.object({
  type: z.literal("heartbeat"),
  seq: z.number().int().nonnegative(),
  at: z.number(),
});

/**
 * A config for a child to apply. `config` is the model (agent/config/model.ts) as JSON; the child
 * validates it with that schema, so the envelope does not depend on the model's shape.
 */
export const ConfigMsg = z.object({
  type: z.literal("config"),
  generation: z.number().int().nonnegative(),
  config: z.unknown(),
});

/** Snapshot of a child's instance states, keyed by instance name (shape owned by the role). */
export const StateMsg = z.object({
  type: z.literal("state"),
  instances: opaqueRecord,
  /** check child: virtual/real server health and IPVS state (agent/lvs/runtime.ts LvsStatus) */
  lvs: opaqueRecord.optional(),
  /** vrrp child: runtime counters not tied to an instance (drops before an instance is known) */
  counters: z.record(z.string(), z.number()).optional(),
});

/** Something that happened in a child (state transition, check result, ...), forwarded to the API. */
export const EventMsg = z.object({
  type: z.literal("event"),
  name: z.string().min(1).max(128),
  at: z.number(),
  data: opaqueRecord.optional(),
});

/** A child's answer to a `config` message. */
export const ReloadResult = z.object({
  type: z.literal("reload_result"),
  generation: z.number().int().nonnegative().optional(),
  ok: z.boolean(),
  error: z.string().optional(),
});

/** Watchdog to child: run the graceful shutdown hook and exit. */
export const Shutdown = z.object({
  type: z.literal("shutdown"),
  reason: z.string().optional(),
});

/**
 * Watchdog to vrrp child: the complete set of instances an operator forced to BACKUP (API
 * SetMaintenance). The whole set rather than a toggle, so a respawned child or a reload is brought
 * back to the operator's wish by sending it again.
 */
export const MaintenanceMsg = z.object({
  type: z.literal("maintenance"),
  instances: z.array(z.string().min(1)).max(4096),
});

/** A real server by its keys in the config: virtualServerKey and realServerKey (agent/config/model.ts). */
export const RealServerRef = z.object({
  virtualServer: z.string().min(1).max(512),
  realServer: z.string().min(1).max(512),
});
export type RealServerRef = z.infer<typeof RealServerRef>;

/**
 * Watchdog to check child: the complete set of real servers an operator drained (API SetMaintenance),
 * kept in the table with weight 0. The whole set, like `maintenance`, so a respawned child is brought
 * back to the operator's wish by sending it again (before the config, so it never programs them live).
 */
export const DrainMsg = z.object({
  type: z.literal("drain"),
  realServers: z.array(RealServerRef).max(65536),
});

export const Message = z.discriminatedUnion("type", [
  Hello,
  Heartbeat,
  ConfigMsg,
  MaintenanceMsg,
  DrainMsg,
  StateMsg,
  EventMsg,
  ReloadResult,
  Shutdown,
]);
export type Message = z.infer<typeof Message>;
export type MessageType = Message["type"];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** Messages that a child sends and the watchdog accepts. */
export type ChildMessage = MessageOf<"hello" | "heartbeat" | "state" | "event" | "reload_result">;
/** Messages that the watchdog sends and a child accepts. */
export type WatchdogMessage = MessageOf<"config" | "maintenance" | "drain" | "shutdown">;

export type ParseResult = { ok: true; msg: Message } | { ok: false; error: string };

/** Validates a decoded JSON value; the error names the first failing path in one line (for logs). */
export function parseMessage(value: unknown): ParseResult {
  const r = Message.safeParse(value);
  if (r.success) return { ok: true, msg: r.data };
  const issue = r.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  return { ok: false, error: `${where}${issue?.message ?? "invalid message"}` };
}
