// Reload decisions: which instances keep their state across a config change.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { diffInstances, stableJson } from "../../agent/config/diff.ts";
import { parseConfigText } from "../../agent/config/load.ts";
import type { Config } from "../../agent/config/model.ts";

const opts = { interfaceExists: () => true, commandExists: () => true, userExists: () => true };

function load(text: string): Config {
  const r = parseConfigText(text, "keepalived", "test.conf", opts);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}: ${e.message}`).join("\n"));
  return r.config;
}

const base = (prio = 100, script = "/usr/bin/true", extra = "") => `
vrrp_script chk {
  script "${script}"
  interval 1
  weight -20
}
vrrp_instance A {
  interface eth0
  virtual_router_id 1
  priority ${prio}
  advert_int 1
  track_script {
    chk
  }
  virtual_ipaddress {
    192.0.2.100/24
  }
}
vrrp_instance B {
  interface eth0
  virtual_router_id 2
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.101/24
  }
}
${extra}`;

describe("diffInstances", () => {
  test("moving blocks down the file (comments inserted) changes nothing", () => {
    const d = diffInstances(load(base()), load(`! a comment\n! another\n\n${base()}`));
    expect({ added: d.added, changed: d.changed, removed: d.removed, kept: d.kept }).toEqual({
      added: [],
      changed: [],
      removed: [],
      kept: ["A", "B"],
    });
  });

  test("a changed priority restarts that instance only", () => {
    const d = diffInstances(load(base()), load(base(150)));
    expect(d.changed).toEqual(["A"]);
    expect(d.kept).toEqual(["B"]);
  });

  test("a changed tracked script restarts the instances that track it", () => {
    const d = diffInstances(load(base()), load(base(100, "/usr/bin/false")));
    expect(d.changed).toEqual(["A"]);
    expect(d.kept).toEqual(["B"]);
  });

  test("added and removed instances", () => {
    const extra = `vrrp_instance C {
  interface eth0
  virtual_router_id 3
  priority 100
  virtual_ipaddress {
    192.0.2.102/24
  }
}`;
    const d = diffInstances(load(base()), load(base(100, "/usr/bin/true", extra)));
    expect(d.added).toEqual(["C"]);
    const back = diffInstances(load(base(100, "/usr/bin/true", extra)), load(base()));
    expect(back.removed).toEqual(["C"]);
  });

  test("a global setting every instance inherits restarts all of them", () => {
    const d = diffInstances(load(base()), load(`global_defs {\n  vrrp_garp_master_repeat 3\n}\n${base()}`));
    expect(d.changed.sort()).toEqual(["A", "B"]);
  });
});

describe("stableJson", () => {
  /** the definition: JSON.stringify with every object's keys sorted and loc/locs left out */
  const reference = (v: unknown): string =>
    JSON.stringify(v, (key, value: unknown) => {
      if (key === "loc" || key === "locs") return undefined;
      if (value && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array)) {
        const o = value as Record<string, unknown>;
        return Object.fromEntries(
          Object.keys(o)
            .sort()
            .map((k) => [k, o[k]]),
        );
      }
      return value;
    }) ?? "null";

  test("equals the sorted-keys JSON.stringify on any JSON-like value", () => {
    // (integer-like keys left out: a plain object lists them first whatever the insertion order, so the
    // reference does not sort them; config keys are names)
    const key = fc.oneof(
      fc.string({ maxLength: 4 }).filter((k) => !/^(0|[1-9]\d*)$/.test(k)),
      fc.constantFrom("loc", "locs", "a", "b", "__proto__x"),
    );
    const leaf = fc.oneof(
      fc.string(),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.uint8Array({ maxLength: 4 }),
    );
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: "small" },
        leaf,
        fc.array(tie("v"), { maxLength: 4 }),
        fc.dictionary(key, tie("v"), { maxKeys: 5 }),
      ),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        expect(stableJson(v)).toBe(reference(v));
      }),
      { numRuns: 1000 },
    );
  });

  test("key order does not matter; source positions do not count", () => {
    expect(stableJson({ b: 1, a: [{ y: 2, x: 1, loc: { line: 3 } }] })).toBe(
      stableJson({ a: [{ x: 1, y: 2, locs: { x: 9 } }], b: 1 }),
    );
  });
});
