// startTriggerMock: spawn `trigger-mock serve` on 127.0.0.1:0 and hand back
// its URL, the SDK's environment, a typed admin client and stop().
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createAdminClient } from "./admin.js";
import { resolveBinary } from "./binary.js";
import { SERVE_FLAGS, serveFlags } from "./flags.js";

export { createAdminClient, ROUTES, TriggerMockAdminError } from "./admin.js";
export { BinaryNotFoundError, PLATFORM_PACKAGES, resolveBinary } from "./binary.js";
export { SERVE_FLAGS } from "./flags.js";

/** The secret key `env` carries unless `secretKeys` says otherwise. */
export const DEFAULT_SECRET_KEY = "tr_dev_trigger_mock";

const OWN_OPTIONS = new Set(["binaryPath", "scenarios", "args", "env", "cwd", "startTimeoutMs", "stopTimeoutMs"]);
const URL_IN_FIRST_LINE = /(http:\/\/127\.0\.0\.1:\d{1,5})(?![\d])/;
const LOG_LIMIT = 64 * 1024;

// The servers this process started and has not stopped. When the process
// exits, they are sent SIGTERM; when it is killed, they see their stdin close
// (--exit-on-stdin-close) and stop on their own.
const live = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
  });
}

function capped(log, chunk) {
  const next = log + chunk;
  return next.length > LOG_LIMIT ? next.slice(next.length - LOG_LIMIT) : next;
}

function scenarioArgs(scenarios, dir) {
  const args = [];
  scenarios.forEach((scenario, i) => {
    if (typeof scenario === "string") {
      args.push("--scenario", scenario);
      return;
    }
    const file = path.join(dir(), `scenario-${i + 1}.json`);
    writeFileSync(file, `${JSON.stringify(scenario, null, 2)}\n`);
    args.push("--scenario", file);
  });
  return args;
}

/**
 * Starts a trigger-mock server for a test suite. See index.d.ts for the options.
 * @param {import("./index.js").StartOptions} [options]
 */
export async function startTriggerMock(options = {}) {
  for (const name of Object.keys(options)) {
    if (!OWN_OPTIONS.has(name) && !(name in SERVE_FLAGS)) {
      throw new TypeError(`startTriggerMock: unknown option ${name} (pass other flags in args)`);
    }
  }
  const { path: bin } = resolveBinary({ binaryPath: options.binaryPath, env: { ...process.env, ...options.env } });
  let tempDir;
  const dir = () => (tempDir ??= mkdtempSync(path.join(os.tmpdir(), "trigger-mock-")));
  const cleanup = () => {
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    tempDir = undefined;
  };
  let args;
  try {
    args = [
      "serve",
      "--addr",
      "127.0.0.1:0",
      "--exit-on-stdin-close",
      ...serveFlags(options),
      ...scenarioArgs(options.scenarios ?? [], dir),
      ...(options.args ?? []),
    ];
  } catch (e) {
    cleanup();
    throw e;
  }
  const child = spawn(bin, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
    windowsHide: true,
  });
  installExitHook();
  live.add(child);
  let stdout = "";
  let stderr = "";
  let exited = null;
  const exit = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      cleanup();
      resolve(exited);
    });
  });
  // The pipe must stay open for the server's life: it ends when this process does.
  child.stdin.on("error", () => {});
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr = capped(stderr, chunk);
  });
  const describe = () => `command: ${bin} ${args.join(" ")}\n--- stderr ---\n${stderr}`;

  async function stop() {
    if (exited) return exited;
    live.delete(child);
    child.ref();
    child.kill("SIGTERM");
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(resolve, options.stopTimeoutMs ?? 5000, null);
    });
    const result = await Promise.race([exit, late]);
    clearTimeout(timer);
    if (result) return result;
    child.kill("SIGKILL");
    return exit;
  }

  const url = await new Promise((resolve, reject) => {
    const timeoutMs = options.startTimeoutMs ?? 15_000;
    const timer = setTimeout(() => {
      reject(new Error(`trigger-mock printed no URL within ${timeoutMs} ms\n${describe()}`));
      stop();
    }, timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      live.delete(child);
      cleanup();
      reject(new Error(`trigger-mock: cannot run ${bin}: ${e.message}`));
    });
    exit.then(({ code, signal }) => {
      clearTimeout(timer);
      // Exit code 2: bad flags or scenario files, one FILE:LINE:COLUMN: message per line on stderr.
      reject(new Error(`trigger-mock exited before serving (code ${code}, signal ${signal})\n${describe()}`));
    });
    child.stdout.on("data", (chunk) => {
      const first = stdout === "" || !stdout.includes("\n");
      stdout = capped(stdout, chunk);
      if (!first) return;
      const nl = stdout.indexOf("\n");
      if (nl === -1) return;
      clearTimeout(timer);
      const m = URL_IN_FIRST_LINE.exec(stdout.slice(0, nl));
      if (m) resolve(m[1]);
      else {
        reject(new Error(`trigger-mock's first line names no URL: ${JSON.stringify(stdout.slice(0, nl))}`));
        stop();
      }
    });
  });
  // Never keep the test runner alive: the exit hook and the stdin pipe end the server.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream.unref?.();

  const secretKey = options.secretKeys?.[0] ?? DEFAULT_SECRET_KEY;
  const mock = {
    url,
    pid: child.pid,
    env: { TRIGGER_API_URL: url, TRIGGER_SECRET_KEY: secretKey },
    admin: createAdminClient(url, { token: options.adminToken }),
    stop,
    output: () => ({ stdout, stderr }),
  };
  // `await using mock = await startTriggerMock()` where the runtime has it.
  if (typeof Symbol.asyncDispose === "symbol") mock[Symbol.asyncDispose] = stop;
  return mock;
}
