// One datagram exchange on a connected UDP socket, shared by UDP_CHECK and DNS_CHECK.
//
// Connected, because then the kernel turns an ICMP port/host unreachable for our datagram into an error
// on this socket (Bun reports it through the `error` handler), which is how keepalived tells "nothing
// listens" from "no answer". The socket binds to bindto/bind_port when given, otherwise to the wildcard
// of the target's family (Bun's default wildcard is IPv4, which cannot connect to an IPv6 target).

import { familyOf } from "../wire/ip.ts";
import { errorCode } from "./stream.ts";
import type { ConnectOptions } from "./types.ts";

export interface UdpExchange {
  /** a datagram arrived; return true to end the exchange */
  data(buf: Uint8Array): boolean;
  /** the kernel reported an error (ICMP unreachable) or the socket could not be opened */
  error(code: string): void;
  /** connect_timeout passed with no end */
  timeout(): void;
}

export function udpExchange(conn: ConnectOptions, payload: Uint8Array, ev: UdpExchange): void {
  let done = false;
  let sock: Bun.udp.ConnectedSocket<"uint8array"> | undefined;
  const end = (): void => {
    done = true;
    clearTimeout(timer);
    sock?.close();
  };
  const timer = setTimeout(() => {
    if (done) return;
    end();
    ev.timeout();
  }, conn.connectTimeoutMs);
  const fail = (code: string): void => {
    if (done) return;
    end();
    ev.error(code);
  };
  const hostname = conn.bindto ?? (familyOf(conn.connectIp) === 6 ? "::" : "0.0.0.0");
  let opening: Promise<Bun.udp.ConnectedSocket<"uint8array">>;
  try {
    opening = Bun.udpSocket({
      binaryType: "uint8array",
      hostname,
      ...(conn.bindPort !== undefined ? { port: conn.bindPort } : {}),
      connect: { hostname: conn.connectIp, port: conn.connectPort },
      socket: {
        data(_s, buf) {
          if (!done && ev.data(buf)) end();
        },
        error(_s, err) {
          fail(err ? errorCode(err) : "unreachable");
        },
      },
    });
  } catch (e) {
    // Bun throws synchronously for some bind/connect errors (e.g. EAFNOSUPPORT)
    fail(errorCode(e));
    return;
  }
  opening.then(
    (s) => {
      sock = s;
      if (done) {
        s.close();
        return;
      }
      s.send(payload);
    },
    (e: unknown) => fail(errorCode(e)),
  );
}
