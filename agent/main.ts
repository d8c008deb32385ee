#!/usr/bin/env bun
// vigil command-line entry. The same executable is the agent, its children (by role argument),
// the config checker and the API client, so one file deployed is everything an operator needs.
import pkg from "../package.json" with { type: "json" };

const USAGE = `vigil ${pkg.version}: keepalived-class VRRP agent

usage:
  vigil run -f FILE [--state-dir DIR] [--api unix:PATH]   run the agent in the foreground
      [--api-listen HOST:PORT --tls-cert F --tls-key F --tls-client-ca F | --insecure-loopback]
      [--metrics-listen HOST:PORT] [--log-level LEVEL]
  vigil ctl [--api ADDR] status [--json] | apply -f FILE [--dry-run] | watch | config
      | drain VS RS | undrain VS RS | maintenance INSTANCE on|off      talk to a running agent
  vigil check -f FILE                                     validate a config (keepalived.conf or YAML)
  vigil convert FILE                                      print a config as YAML (vigil's model)
  vigil version                                           print the version
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "run": {
      const { runAgent } = await import("./cli/run.ts");
      return runAgent(rest);
    }
    case "child": {
      const { runChild } = await import("./cli/child.ts");
      return runChild(rest);
    }
    case "ctl": {
      const { runCtl } = await import("./cli/ctl.ts");
      return runCtl(rest);
    }
    case "check": {
      const { runCheck } = await import("./cli/check.ts");
      return runCheck(rest);
    }
    case "convert": {
      const { runConvert } = await import("./cli/convert.ts");
      return runConvert(rest);
    }
    case "version":
    case "--version":
      console.log(`vigil ${pkg.version} (bun ${Bun.version})`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`vigil: unknown command '${cmd}'\n${USAGE}`);
      return 2;
  }
}

const code = await main(process.argv.slice(2));
// run keeps the event loop alive itself and exits on signals; the other commands end here
if (code >= 0) process.exit(code);
