#!/usr/bin/env node
// `npx trigger-mock …`: runs the resolved binary with the same arguments,
// passing signals on and exiting with its code.
import { spawn } from "node:child_process";
import { resolveBinary } from "../binary.js";

let bin;
try {
  bin = resolveBinary().path;
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
const child = spawn(bin, process.argv.slice(2), { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (e) => {
  console.error(`trigger-mock: cannot run ${bin}: ${e.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  else process.exit(code ?? 1);
});
