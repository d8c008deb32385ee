// A fresh process (the agent after a restart): reads the kernel's IPVS table and reconciles it with the
// desired table in argv[2] (JSON). Prints {"ops": [...], "services": n}; applies nothing.
import { readFileSync } from "node:fs";
import { openIpvs, readTable } from "../../../agent/lvs/ipvs-client.ts";
import { type DesiredService, reconcile } from "../../../agent/lvs/reconcile.ts";

const desired = JSON.parse(readFileSync(process.argv[2] ?? "", "utf8")) as DesiredService[];
const { client, socket } = openIpvs();
const table = readTable(client);
socket.close();
console.log(JSON.stringify({ ops: reconcile(desired, table), services: table.length }));
