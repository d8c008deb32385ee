// DNS_CHECK (keepalived check_dns.c): one query (type default SOA, name default the root, RD set) over
// UDP to connect_ip:connect_port; a reply with the query's id, QR set and RCODE NOERROR passes. Replies
// with another id or without QR are ignored (the check keeps waiting until connect_timeout), any other
// RCODE (NXDOMAIN, SERVFAIL, REFUSED, ...) fails at once. Answers are not required, as in keepalived.
import { dnsType, encodeQuery, judgeReply } from "../wire/dns.ts";
import { type CheckResult, type DnsCheckSpec, nowMs } from "./types.ts";
import { udpExchange } from "./udp-exchange.ts";

const RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

export async function dnsCheck(spec: DnsCheckSpec): Promise<CheckResult> {
  const start = nowMs();
  const type = dnsType(spec.queryType ?? "SOA");
  if (type === null) return { ok: false, reason: `unknown query type ${spec.queryType}`, latencyMs: 0 };
  // keepalived uses random(); an unpredictable id also keeps off-path spoofed replies from passing
  const id = crypto.getRandomValues(new Uint16Array(1))[0]!;
  const query = encodeQuery(id, spec.name ?? "", type);
  if (!query) return { ok: false, reason: `invalid name ${spec.name}`, latencyMs: 0 };
  return new Promise((resolve) => {
    const finish = (ok: boolean, reason: string): void => resolve({ ok, reason, latencyMs: nowMs() - start });
    udpExchange(spec.conn, query, {
      data(buf) {
        const v = judgeReply(buf, id);
        if (v.kind === "ok") finish(true, "NOERROR");
        else if (v.kind === "fail") finish(false, `rcode ${RCODE_NAMES[v.rcode] ?? v.rcode}`);
        return v.kind !== "ignore";
      },
      error: (code) => finish(false, code),
      timeout: () => finish(false, "timeout"),
    });
  });
}
