// The one mapping between the API's config messages and the config model (agent/api/mapping.ts):
// - round trip through the wire (binary encoding) of every fixture config, VRRP and load balancing;
// - a property test over random load-balancing model values (every field of every LB object, every
//   checker type), model -> proto -> bytes -> proto -> model input -> model, equal to the start;
// - drift guards: every model field has a proto field of the same name and every proto field a model
//   field, for every mirrored object; and the generators cover every model field, so a field added to
//   the model but not to the generators fails here too;
// - defaults and errors of structured configs are the model's.
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { configFromProto, configToProto } from "../../agent/api/mapping.ts";
import { stableJson } from "../../agent/config/diff.ts";
import { loadConfigFile, parseConfigText } from "../../agent/config/load.ts";
import * as model from "../../agent/config/model.ts";
import * as pb from "../../proto/gen/vigil/v1/agent.ts";

const fixtures = join(import.meta.dir, "..", "fixtures", "conf");

/** every interface and user exists: the fixtures come from other machines */
const anyEnv = {
  interfaceExists: () => true,
  isLoopback: (n: string) => n === "lo",
  userExists: () => true,
  commandExists: () => true,
};

/** The model without file metadata (source locations, ignored keywords): what the API carries. */
function carried(c: model.Config): unknown {
  const { ignored: _i, ...globals } = c.globalDefs;
  return JSON.parse(stableJson({ ...c, globalDefs: globals }));
}

function throughWire(c: model.Config): model.Config {
  const msg = configToProto(c);
  const wire = pb.Config.decode(pb.Config.encode(msg).finish());
  return model.Config.parse(configFromProto(wire));
}

describe("round trip of the fixture configs", () => {
  // the fixtures that load (some are deliberately invalid, for the loader's own tests)
  const files = [...readdirSync(fixtures).filter((f) => f.endsWith(".conf")), "include/main.conf"].filter(
    (f) => loadConfigFile(join(fixtures, f), anyEnv).ok,
  );
  test("enough fixtures, load balancing among them", () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
    const lb = files.filter((f) => {
      const r = loadConfigFile(join(fixtures, f), anyEnv);
      return r.ok && r.config.virtualServers.length > 0;
    });
    expect(lb.length).toBeGreaterThanOrEqual(3);
  });
  test.each(files)("%s", (f) => {
    const loaded = loadConfigFile(join(fixtures, f), anyEnv);
    if (!loaded.ok) throw new Error(loaded.errors.map(model.formatConfigError).join("\n"));
    expect(carried(throughWire(loaded.config))).toEqual(carried(loaded.config));
  });
});

// ---- generators of load-balancing model values ---------------------------------------------------

const v4 = fc.integer({ min: 1, max: 254 }).map((n) => `192.0.2.${n}`);
const v6 = fc.integer({ min: 1, max: 0xffff }).map((n) => `2001:db8::${n.toString(16)}`);
const ip = fc.oneof(v4, v6);
const u32 = fc.integer({ min: 0, max: 4294967295 });
const port = fc.integer({ min: 0, max: 65535 });
const portNz = fc.integer({ min: 1, max: 65535 });
/** seconds with millisecond steps: exact through a proto double either way */
const secs = fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 1000);
const posSecs = fc.integer({ min: 1, max: 1_000_000 }).map((n) => n / 1000);
const word = fc.stringMatching(/^[a-z][a-z0-9_-]{0,11}$/);
const cmd = fc.string({ minLength: 1, maxLength: 20 });
const kind = fc.constantFrom(...model.LbKind.options);
const hex = fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => Buffer.from(b).toString("hex"));
const weight = fc.integer({ min: 0, max: 2147483647 });

/** Field generators by model object; fields not in `required` may be left out. */
type Fields = Record<string, fc.Arbitrary<unknown>>;
function obj(fields: Fields, required: string[] = []): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(fields, { requiredKeys: required }) as fc.Arbitrary<Record<string, unknown>>;
}

const commonFields: Fields = {
  retry: u32,
  delayBeforeRetry: secs,
  warmup: secs,
  delayLoop: posSecs,
  alpha: fc.boolean(),
  logAllFailures: fc.boolean(),
};
const connFields: Fields = {
  connectIp: ip,
  connectPort: portNz,
  bindto: ip,
  bindPort: portNz,
  bindIf: word,
  connectTimeout: posSecs,
  fwmark: u32,
};
const statusCode = fc
  .tuple(fc.integer({ min: 100, max: 599 }), fc.integer({ min: 0, max: 50 }), fc.boolean())
  .map(([a, d, range]) => (range ? `${a}-${Math.min(599, a + d)}` : String(a)));
const urlFields: Fields = {
  path: fc.constantFrom("/", "/health", "/a/b?c=d"),
  digest: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString("hex")),
  statusCode: fc.array(statusCode, { minLength: 1, maxLength: 3 }),
  virtualhost: word,
};
const httpFields: Fields = {
  ...commonFields,
  ...connFields,
  virtualhost: word,
  httpProtocol: fc.constantFrom("1.0", "1.1", "1.0C"),
  url: fc.array(obj(urlFields, ["path"]), { minLength: 1, maxLength: 2 }),
};
/** per checker type: its field generators (besides `type`) and the required ones */
const checkerFields: Record<model.CheckerType, [Fields, string[]]> = {
  TCP_CHECK: [{ ...commonFields, ...connFields }, []],
  HTTP_GET: [httpFields, ["url"]],
  SSL_GET: [{ ...httpFields, enableSni: fc.boolean() }, ["url"]],
  DNS_CHECK: [
    {
      ...commonFields,
      ...connFields,
      dnsType: fc.constantFrom(...model.DNS_TYPES),
      name: fc.constantFrom(".", "example.com", "www.example.org."),
    },
    [],
  ],
  UDP_CHECK: [
    {
      ...commonFields,
      ...connFields,
      payload: hex,
      requireReply: fc.boolean(),
      replyData: hex,
      minReplyLength: fc.integer({ min: 0, max: 65535 }),
      maxReplyLength: fc.integer({ min: 0, max: 65535 }),
    },
    [],
  ],
  PING_CHECK: [{ ...commonFields, ...connFields }, []],
  MISC_CHECK: [
    {
      ...commonFields,
      miscPath: cmd,
      miscTimeout: fc.integer({ min: 0, max: 3600 }),
      miscDynamic: fc.boolean(),
      user: word,
      group: word,
    },
    ["miscPath"],
  ],
};
const checker = fc.oneof(
  ...model.CHECKER_TYPES.map((t) => {
    const [fields, req] = checkerFields[t];
    return obj(fields, req).map((o) => ({ type: t, ...o }));
  }),
);
const realServerFields: Fields = {
  address: ip,
  port,
  weight,
  lvsMethod: kind,
  inhibitOnFailure: fc.boolean(),
  notifyUp: cmd,
  notifyDown: cmd,
  uthreshold: u32,
  lthreshold: u32,
  alpha: fc.boolean(),
  retry: fc.integer({ min: 1, max: 4294967295 }),
  delayBeforeRetry: secs,
  warmup: secs,
  connectTimeout: posSecs,
  delayLoop: posSecs,
  virtualhost: word,
  checkers: fc.array(checker, { maxLength: 3 }),
};
const sorryFields: Fields = { address: ip, port };
const virtualServerFields: Fields = {
  ipFamily: fc.constantFrom("inet", "inet6"),
  delayLoop: posSecs,
  lbAlgo: fc.constantFrom(...model.LB_ALGOS),
  lbKind: kind,
  protocol: fc.constantFrom(...model.LvsProtocol.options),
  persistenceTimeout: fc.integer({ min: 1, max: 2678400 }),
  persistenceGranularity: fc.constantFrom("255.255.255.0", "24", "64"),
  persistenceEngine: fc.constantFrom("sip", "x"),
  quorum: fc.integer({ min: 1, max: 4294967295 }),
  hysteresis: u32,
  quorumUp: cmd,
  quorumDown: cmd,
  sorryServer: obj(sorryFields, ["address"]),
  sorryServerInhibit: fc.boolean(),
  sorryServerLvsMethod: kind,
  inhibitOnFailure: fc.boolean(),
  alpha: fc.boolean(),
  omega: fc.boolean(),
  weight: fc.integer({ min: 1, max: 2147483647 }),
  retry: fc.integer({ min: 1, max: 4294967295 }),
  delayBeforeRetry: secs,
  warmup: secs,
  connectTimeout: posSecs,
  virtualhost: word,
  ops: fc.boolean(),
  shPort: fc.boolean(),
  shFallback: fc.boolean(),
  mhPort: fc.boolean(),
  mhFallback: fc.boolean(),
  haSuspend: fc.boolean(),
  realServers: fc.array(obj(realServerFields, ["address"]), { maxLength: 4 }),
};
/** the service: exactly one of address (+ port), fwmark, group */
const serviceFields: Fields = {
  address: ip,
  port,
  fwmark: fc.integer({ min: 1, max: 4294967295 }),
  group: word,
};
const service = fc.oneof(
  fc.record({ address: ip, port }, { requiredKeys: ["address"] }),
  fc.record({ fwmark: serviceFields["fwmark"]! }),
  fc.record({ group: word }),
);
const virtualServer = fc
  .tuple(service, obj(virtualServerFields, ["lbAlgo", "lbKind"]))
  .map(([s, rest]) => ({ ...rest, ...s }));
const groupEntryFields: Fields = {
  address: v4,
  addressEnd: v4,
  port,
  fwmark: u32,
  family: fc.constantFrom("inet", "inet6"),
};
const groupEntry = fc.oneof(
  obj({ address: v4, addressEnd: v4, port }, ["address"]),
  obj({ fwmark: u32, family: groupEntryFields["family"]! }, ["fwmark"]),
);
const groupFields: Fields = { name: word, entries: fc.array(groupEntry, { minLength: 1, maxLength: 3 }) };
const lbConfig = fc.record({
  virtualServerGroups: fc.array(obj(groupFields, ["name", "entries"]), { maxLength: 2 }),
  virtualServers: fc.array(virtualServer, { maxLength: 3 }),
});

describe("load balancing: property round trip", () => {
  test("model -> proto -> bytes -> proto -> model is the identity", () => {
    fc.assert(
      fc.property(lbConfig, (input) => {
        const c = model.Config.parse(input);
        expect(carried(throughWire(c))).toEqual(carried(c));
      }),
      { numRuns: 300 },
    );
  });

  test("the generators cover every field of every load-balancing model object", () => {
    const exempt = new Set(["loc", "locs", "type"]);
    const pairs: [string, object, Fields][] = [
      ["VirtualServer", shapeOf(model.VirtualServer), { ...serviceFields, ...virtualServerFields }],
      ["RealServer", shapeOf(model.RealServer), realServerFields],
      ["SorryServer", shapeOf(model.SorryServer), sorryFields],
      ["HttpUrl", shapeOf(model.HttpUrl), urlFields],
      ["VirtualServerGroup", shapeOf(model.VirtualServerGroup), groupFields],
      ["VirtualServerGroupEntry", shapeOf(model.VirtualServerGroupEntry), groupEntryFields],
      ...model.CHECKER_TYPES.map((t): [string, object, Fields] => [
        t,
        shapeOf(checkerSchema(t)),
        checkerFields[t][0],
      ]),
    ];
    const uncovered: string[] = [];
    for (const [name, shape, fields] of pairs) {
      for (const k of Object.keys(shape))
        if (!exempt.has(k) && !(k in fields)) uncovered.push(`${name}.${k}`);
    }
    expect(uncovered).toEqual([]);
  });
});

// ---- drift guards -------------------------------------------------------------------------------

/** The object shape of a schema, refined (superRefine) or not. */
function shapeOf(s: unknown): Record<string, unknown> {
  const z = s as { shape?: Record<string, unknown>; def?: { in?: { shape: Record<string, unknown> } } };
  const shape = z.shape ?? z.def?.in?.shape;
  if (!shape) throw new Error("not an object schema");
  return shape;
}

function checkerSchema(t: model.CheckerType): unknown {
  const byType = {
    TCP_CHECK: model.TcpCheck,
    HTTP_GET: model.HttpGetCheck,
    SSL_GET: model.SslGetCheck,
    DNS_CHECK: model.DnsCheck,
    UDP_CHECK: model.UdpCheck,
    PING_CHECK: model.PingCheck,
    MISC_CHECK: model.MiscCheck,
  } as const;
  return byType[t];
}

/** The proto message mirroring each checker type (the oneof case of pb.Checker). */
const checkerMessages: Record<model.CheckerType, [keyof pb.Checker, object]> = {
  TCP_CHECK: ["tcpCheck", pb.TcpCheck.create()],
  HTTP_GET: ["httpGet", pb.HttpGetCheck.create()],
  SSL_GET: ["sslGet", pb.SslGetCheck.create()],
  DNS_CHECK: ["dnsCheck", pb.DnsCheck.create()],
  UDP_CHECK: ["udpCheck", pb.UdpCheck.create()],
  PING_CHECK: ["pingCheck", pb.PingCheck.create()],
  MISC_CHECK: ["miscCheck", pb.MiscCheck.create()],
};

describe("drift guards", () => {
  /**
   * Every mirrored pair, both ways: a model field without a proto field, or a proto field without a
   * model field, is drift. File metadata is exempt, and so is the checkers' `type` (the oneof case).
   */
  const pairs: [string, Record<string, unknown>, object][] = [
    ["Config", shapeOf(model.Config), pb.Config.create()],
    ["GlobalDefs", shapeOf(model.GlobalDefs), pb.GlobalDefs.create()],
    ["GarpSettings", shapeOf(model.GarpSettings), pb.GarpSettings.create()],
    ["VrrpScript", shapeOf(model.VrrpScript), pb.VrrpScript.create()],
    ["VrrpInstance", shapeOf(model.VrrpInstance), pb.VrrpInstance.create()],
    ["VirtualIp", shapeOf(model.VirtualIp), pb.VirtualIp.create()],
    ["TrackInterface", shapeOf(model.TrackInterface), pb.TrackInterface.create()],
    ["TrackScript", shapeOf(model.TrackScript), pb.TrackScript.create()],
    ["TrackFile", shapeOf(model.TrackFile), pb.TrackFile.create()],
    ["NotifyFifo", shapeOf(model.NotifyFifo), pb.NotifyFifo.create()],
    ["TrackFileDef", shapeOf(model.TrackFileDef), pb.TrackFileDef.create()],
    ["UnicastPeer", shapeOf(model.UnicastPeer), pb.UnicastPeer.create()],
    ["NotifyScripts", shapeOf(model.NotifyScripts), pb.NotifyScripts.create()],
    ["SyncGroup", shapeOf(model.SyncGroup), pb.SyncGroup.create()],
    ["VirtualServerGroup", shapeOf(model.VirtualServerGroup), pb.VirtualServerGroup.create()],
    ["VirtualServerGroupEntry", shapeOf(model.VirtualServerGroupEntry), pb.VirtualServerGroupEntry.create()],
    ["VirtualServer", shapeOf(model.VirtualServer), pb.VirtualServer.create()],
    ["RealServer", shapeOf(model.RealServer), pb.RealServer.create()],
    ["SorryServer", shapeOf(model.SorryServer), pb.SorryServer.create()],
    ["HttpUrl", shapeOf(model.HttpUrl), pb.HttpUrl.create()],
    ...model.CHECKER_TYPES.map((t): [string, Record<string, unknown>, object] => [
      t,
      shapeOf(checkerSchema(t)),
      checkerMessages[t][1],
    ]),
  ];
  const exempt = new Set(["loc", "locs", "ignored", "type"]);

  test("every model field has a proto field", () => {
    const missing: string[] = [];
    for (const [name, shape, msg] of pairs) {
      for (const key of Object.keys(shape))
        if (!exempt.has(key) && !(key in msg)) missing.push(`${name}.${key}`);
    }
    expect(missing).toEqual([]);
  });

  test("every proto field has a model field", () => {
    const extra: string[] = [];
    for (const [name, shape, msg] of pairs) {
      for (const key of protoFields(msg)) if (!(key in shape)) extra.push(`${name}.${key}`);
    }
    expect(extra).toEqual([]);
  });

  test("every checker type has its oneof case, and only those", () => {
    const all = Object.values(checkerMessages)
      .map(([k]) => k)
      .sort();
    expect(protoFields(pb.Checker.create()).sort()).toEqual(all);
  });
});

/** Every field of a generated message: ts-proto's create() sets optional ones to undefined. */
function protoFields(msg: object): string[] {
  return Object.keys(msg);
}

describe("structured configs: the model's defaults and errors", () => {
  test("unset optional fields take the model's defaults", () => {
    const c = model.Config.parse(
      configFromProto(
        pb.Config.fromPartial({
          vrrpInstances: [{ name: "VI_1", interface: "eth0", virtualRouterId: 7 }],
          virtualServers: [
            {
              address: "192.0.2.10",
              port: 80,
              protocol: "TCP",
              lbAlgo: "rr",
              lbKind: "NAT",
              realServers: [{ address: "198.51.100.1", checkers: [{ tcpCheck: {} }] }],
            },
          ],
        }),
      ),
    );
    expect(c.vrrpInstances[0]!.priority).toBe(100);
    expect(c.globalDefs.garp.masterRepeat).toBe(5);
    const vs = c.virtualServers[0]!;
    expect(vs.delayLoop).toBe(60);
    expect(vs.quorum).toBe(1);
    expect(vs.weight).toBe(1);
    expect(vs.connectTimeout).toBe(5);
    expect(vs.realServers[0]!.port).toBeUndefined();
    expect(vs.realServers[0]!.checkers[0]).toEqual({ type: "TCP_CHECK" });
  });

  test("invalid structured values are the model's errors, with field paths", () => {
    const input = configFromProto(
      pb.Config.fromPartial({
        vrrpInstances: [
          { name: "VI_1", interface: "eth0", virtualRouterId: 300, priority: 0, state: "LEADER" },
        ],
        virtualServers: [
          {
            address: "192.0.2.10",
            port: 80,
            protocol: "TCP",
            lbAlgo: "round-robin",
            lbKind: "NAT",
            realServers: [{ address: "not-an-ip", checkers: [{}, { httpGet: { url: [] } }] }],
          },
          { fwmark: 1, group: "g", lbAlgo: "rr", lbKind: "DR" },
        ],
      }),
    );
    const r = parseConfigText(JSON.stringify(input), "json", "config", anyEnv);
    expect(r.ok).toBe(false);
    const text = r.ok ? "" : r.errors.map((e) => e.message).join("\n");
    for (const path of [
      "vrrpInstances[0].virtualRouterId",
      "vrrpInstances[0].priority",
      "vrrpInstances[0].state",
      "virtualServers[0].lbAlgo",
      "virtualServers[0].realServers[0].address",
      "virtualServers[0].realServers[0].checkers[0]",
      "virtualServers[0].realServers[0].checkers[1].url",
      "virtualServers[1]",
    ]) {
      expect(text).toContain(path);
    }
  });
});
