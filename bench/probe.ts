// Client-visible outage probe for bench/failover.ts.
//
//   bun bench/probe.ts serve PORT            UDP echo on 0.0.0.0:PORT (run on every VRRP node)
//   bun bench/probe.ts client ADDR PORT      one datagram to ADDR:PORT every millisecond; prints a JSON
//                                            line for every gap between two replies longer than 5 ms:
//                                            {"gap":ms,"from":epochMs,"to":epochMs}; every 100 ms a
//                                            heartbeat {"rx","tx","txFail","errors","lastError","reopens","at"};
//                                            on SIGTERM/SIGINT a summary
//                                            {"sent":n,"received":n}
//
// The longest gap that spans a fault is the outage a client sees: the VIP has to move, the new master
// has to announce it (gratuitous ARP) and the echo has to come back from the new holder.
export {};

const GAP_MS = 5;

/** Wall-clock milliseconds with sub-millisecond resolution. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function serve(port: number): Promise<void> {
  await Bun.udpSocket({
    hostname: "0.0.0.0",
    port,
    socket: {
      data(s, buf, rport, addr) {
        s.send(buf, rport, addr);
      },
      // ICMP errors for replies to a client port that is gone (a restarted prober): nothing to do
      error() {},
    },
  });
  emit({ serving: port });
}

async function client(addr: string, port: number): Promise<void> {
  let last = 0;
  let lastOpen = nowMs();
  let received = 0;
  let sent = 0;
  let txFail = 0;
  let errors = 0;
  let reopens = 0;
  let lastError = "";
  const handlers: Bun.udp.SocketHandler<"buffer"> = {
    data() {
      const t = nowMs();
      if (last > 0 && t - last > GAP_MS) emit({ gap: Math.round((t - last) * 10) / 10, from: last, to: t });
      last = t;
      received++;
    },
    // Bun's UDP socket reports ICMP errors (host/port unreachable while the VIP moves) from the socket
    // error queue; unhandled, they end the process
    error(_s, e) {
      errors++;
      lastError = (e as { code?: string }).code ?? e.message;
    },
  };
  let sock = await Bun.udpSocket({ socket: handlers });
  const payload = new Uint8Array(8);
  const view = new DataView(payload.buffer);
  const start = nowMs();
  let reopening = false;
  // catch up on missed ticks so a late timer does not lower the probe rate
  const timer = setInterval(() => {
    const now = nowMs();
    // Stall guard: after an error on the socket Bun may stop delivering datagrams while sends still
    // succeed. When nothing came back for a second (on this socket), take a fresh socket. During a real
    // outage this only changes the source port the replies will come back to.
    if (!reopening && now - Math.max(last, lastOpen) > 1000) {
      reopening = true;
      const old = sock;
      void Bun.udpSocket({ socket: handlers }).then((s) => {
        sock = s;
        old.close();
        reopens++;
        lastOpen = nowMs();
        reopening = false;
      });
    }
    const due = Math.floor(now - start);
    let burst = 0;
    while (sent <= due && burst < 10) {
      view.setUint32(0, sent);
      try {
        if (!sock.send(payload, port, addr)) txFail++;
      } catch {
        txFail++;
      }
      sent++;
      burst++;
    }
    if (sent <= due) sent = due + 1;
  }, 1);
  const beat = setInterval(
    () => emit({ rx: received, tx: sent, txFail, errors, lastError, reopens, at: nowMs() }),
    100,
  );
  const finish = () => {
    clearInterval(timer);
    clearInterval(beat);
    emit({ sent, received, errors, reopens });
    sock.close();
    process.exit(0);
  };
  process.on("SIGTERM", finish);
  process.on("SIGINT", finish);
  emit({ probing: `${addr}:${port}` });
}

const [mode, a1, a2] = process.argv.slice(2);
if (mode === "serve" && a1) await serve(Number(a1));
else if (mode === "client" && a1 && a2) await client(a1, Number(a2));
else {
  process.stderr.write("usage: probe.ts serve PORT | probe.ts client ADDR PORT\n");
  process.exit(2);
}
