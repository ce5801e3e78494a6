// Shared helpers for the contract tests.
//
// Importing this module has no side effects: it only defines functions and
// constants, so it is harmless if a test runner happens to load it as a file.

import { spawn, execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** `<repo>/contract` */
export const CONTRACT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** `<repo>` */
export const REPO_ROOT = path.resolve(CONTRACT_DIR, "..");
/** The published OpenAPI document lives beside the clone, in `../shared`. */
export const OPENAPI_PATH = path.resolve(REPO_ROOT, "..", "shared", "reference", "trigger-v3-openapi.yaml");

/** The API version header value the v4 SDK sends (selects the current vocabulary). */
export const CURRENT_API_VERSION = "2025-07-16";

/** Arguments every test server is started with (before any extra ones). */
export const BASE_SERVE_ARGS = Object.freeze([
  "serve",
  "--addr",
  "127.0.0.1:0",
  "--clock",
  "2026-01-01T00:00:00Z",
  "--not-found-retry",
  "false",
]);

const URL_RE = /http:\/\/127\.0\.0\.1:(\d{1,5})/;

/** Path of the server binary: `$TRIGGER_MOCK_BIN` or `<repo>/target/debug/trigger-mock`. */
export function binaryPath() {
  const fromEnv = process.env.TRIGGER_MOCK_BIN;
  if (fromEnv && fromEnv.trim() !== "") return path.resolve(fromEnv);
  return path.join(REPO_ROOT, "target", "debug", "trigger-mock");
}

/**
 * The environment for the server: ours minus any `TRIGGER_MOCK_*` settings
 * (the server reads its options from those too), so a developer's shell
 * cannot change what the tests see. Only the command line configures it.
 */
function serverEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TRIGGER_MOCK_")));
}

function assertBinaryExists(bin) {
  if (!existsSync(bin)) {
    throw new Error(
      `trigger-mock binary not found at ${bin}. Build it first (cargo build) or set TRIGGER_MOCK_BIN.`,
    );
  }
}

/** Keep only the last `limit` characters of a growing log. */
function appendCapped(buf, chunk, limit = 64 * 1024) {
  const next = buf + chunk;
  return next.length > limit ? next.slice(next.length - limit) : next;
}

/**
 * Start `trigger-mock serve` on an ephemeral loopback port.
 *
 * Resolves to `{ url, child, stop, output }` once the first stdout line (which
 * must contain `http://127.0.0.1:PORT`) has been printed. `stop()` sends
 * SIGTERM and waits for the process to exit (SIGKILL after `killAfterMs`).
 */
export function startServer(extraArgs = [], { startTimeoutMs = 15_000, killAfterMs = 5_000 } = {}) {
  const bin = binaryPath();
  assertBinaryExists(bin);
  const args = [...BASE_SERVE_ARGS, ...extraArgs];
  const child = spawn(bin, args, {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: serverEnv(),
  });

  let stdout = "";
  let stderr = "";
  let exited = null; // { code, signal } once the child has exited
  const exitPromise = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  const output = () => ({ stdout, stderr });
  const describe = () =>
    `command: ${bin} ${args.join(" ")}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;

  async function stop() {
    if (exited) return exited;
    child.kill("SIGTERM");
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), killAfterMs);
    });
    const result = await Promise.race([exitPromise, timeout]);
    clearTimeout(timer);
    if (result) return result;
    child.kill("SIGKILL");
    await exitPromise;
    throw new Error(`trigger-mock did not exit within ${killAfterMs} ms of SIGTERM\n${describe()}`);
  }

  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(value);
    };
    const timer = setTimeout(async () => {
      settle(reject, new Error(`trigger-mock printed no URL within ${startTimeoutMs} ms\n${describe()}`));
      await stop().catch(() => {});
    }, startTimeoutMs);

    child.once("error", (err) => settle(reject, new Error(`could not start ${bin}: ${err.message}`)));
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      stderr = appendCapped(stderr, chunk);
    });
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      stdout = appendCapped(stdout, chunk);
      if (settled) return;
      const nl = stdout.indexOf("\n");
      if (nl === -1) return;
      const firstLine = stdout.slice(0, nl);
      const m = URL_RE.exec(firstLine);
      if (!m) {
        settle(reject, new Error(`first stdout line has no http://127.0.0.1:PORT URL: ${JSON.stringify(firstLine)}\n${describe()}`));
        stop().catch(() => {});
        return;
      }
      settle(resolve, { url: `http://127.0.0.1:${m[1]}`, child, stop, output });
    });
    exitPromise.then(({ code, signal }) => {
      settle(reject, new Error(`trigger-mock exited early (code ${code}, signal ${signal})\n${describe()}`));
    });
  });
}

/** Run a one-shot subcommand of the binary (e.g. `catalogue --json`) and return stdout. */
export function runBinary(args, { timeoutMs = 15_000 } = {}) {
  const bin = binaryPath();
  assertBinaryExists(bin);
  return new Promise((resolve, reject) => {
    execFile(bin, args, { cwd: REPO_ROOT, env: serverEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${bin} ${args.join(" ")} failed: ${err.message}\n--- stderr ---\n${stderr}`));
        return;
      }
      resolve(stdout);
    });
  });
}

/** `trigger-mock catalogue --json`, parsed. */
export async function readCatalogue() {
  const text = await runBinary(["catalogue", "--json"]);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`catalogue --json did not print JSON (${err.message}): ${text.slice(0, 500)}`);
  }
}

/**
 * Run an ES-module script in a fresh Node process.
 *
 * The child gets exactly `env` as its environment (nothing is inherited, so
 * no stray TRIGGER_* variables or test-runner state leak in) and runs with
 * the contract directory as cwd so that `@trigger.dev/sdk` resolves.
 * Resolves to `{ code, signal, stdout, stderr }`; never rejects on a
 * non-zero exit.
 */
export function runNodeScript(source, { env = {}, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "--eval", source], {
      cwd: CONTRACT_DIR,
      env: { ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (c) => (stdout = appendCapped(stdout, c)));
    child.stderr.on("data", (c) => (stderr = appendCapped(stderr, c)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * A loopback HTTP proxy that forwards every request to `targetUrl` and
 * records it, so a test can count how many requests the SDK really made.
 * `captureResponses: true` also records each response's status and body text.
 * `preserveHost: true` forwards the client's own `Host` header instead of the
 * target's, so URLs the server builds from `Host` (presigned packet URLs)
 * point back at the proxy and the client's requests to them are recorded too.
 */
export async function startCountingProxy(targetUrl, { captureResponses = false, preserveHost = false } = {}) {
  const target = new URL(targetUrl);
  const requests = [];
  const server = http.createServer((req, res) => {
    const entry = { method: req.method, url: req.url, headers: { ...req.headers }, at: Date.now() };
    requests.push(entry);
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: preserveHost ? { ...req.headers } : { ...req.headers, host: target.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (captureResponses) {
          // With captureResponses, each entry gets `response: {status, text}` once the body has been read.
          const chunks = [];
          up.on("data", (c) => chunks.push(c));
          up.on("end", () => {
            entry.response = { status: up.statusCode, text: Buffer.concat(chunks).toString("utf8") };
          });
        }
        up.pipe(res);
      },
    );
    upstream.on("error", (err) => {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(`proxy error: ${err.message}`);
    });
    req.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    reset() {
      requests.length = 0;
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A plain GET of `/api/v3/runs/{id}` (no SDK). `apiVersion: null` sends no version header. */
export async function fetchRun(baseUrl, runId, { key = "tr_dev_x", apiVersion = null } = {}) {
  const headers = { authorization: `Bearer ${key}` };
  if (apiVersion) headers["x-trigger-api-version"] = apiVersion;
  const res = await fetch(`${baseUrl}/api/v3/runs/${runId}`, { headers });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/** Await a promise that must reject; return the rejection reason. */
export async function rejectionOf(promise) {
  try {
    const value = await promise;
    throw Object.assign(new Error(`expected a rejection, got a value: ${JSON.stringify(value)?.slice(0, 300)}`), {
      unexpectedValue: true,
    });
  } catch (err) {
    if (err?.unexpectedValue) throw err;
    return err;
  }
}

/** One-line description of an SDK error, for assertion messages. */
export function describeError(err) {
  return JSON.stringify({
    class: err?.constructor?.name,
    name: err?.name,
    status: err?.status,
    message: err?.message,
    body: err?.body,
  });
}

// ---------------------------------------------------------------------------
// Status vocabularies (contract.md §2.2) and helper rules (§2.3).

/** Engine (database) status -> status rendered with `x-trigger-api-version: 2025-07-16`. */
export const ENGINE_TO_V2 = Object.freeze({
  DELAYED: "DELAYED",
  PENDING_VERSION: "PENDING_VERSION",
  WAITING_FOR_DEPLOY: "PENDING_VERSION",
  PENDING: "QUEUED",
  DEQUEUED: "DEQUEUED",
  EXECUTING: "EXECUTING",
  RETRYING_AFTER_FAILURE: "EXECUTING",
  PAUSED: "WAITING",
  WAITING_TO_RESUME: "WAITING",
  COMPLETED_SUCCESSFULLY: "COMPLETED",
  CANCELED: "CANCELED",
  COMPLETED_WITH_ERRORS: "FAILED",
  INTERRUPTED: "FAILED",
  CRASHED: "CRASHED",
  SYSTEM_FAILURE: "SYSTEM_FAILURE",
  EXPIRED: "EXPIRED",
  TIMED_OUT: "TIMED_OUT",
});

/** Engine (database) status -> status rendered without an API version header. */
export const ENGINE_TO_V1 = Object.freeze({
  DELAYED: "DELAYED",
  PENDING_VERSION: "PENDING_VERSION",
  WAITING_FOR_DEPLOY: "WAITING_FOR_DEPLOY",
  PENDING: "QUEUED",
  DEQUEUED: "EXECUTING",
  EXECUTING: "EXECUTING",
  RETRYING_AFTER_FAILURE: "REATTEMPTING",
  PAUSED: "FROZEN",
  WAITING_TO_RESUME: "FROZEN",
  COMPLETED_SUCCESSFULLY: "COMPLETED",
  CANCELED: "CANCELED",
  COMPLETED_WITH_ERRORS: "FAILED",
  INTERRUPTED: "INTERRUPTED",
  CRASHED: "CRASHED",
  SYSTEM_FAILURE: "SYSTEM_FAILURE",
  EXPIRED: "EXPIRED",
  TIMED_OUT: "TIMED_OUT",
});

/** Run id for an engine status, by the server's convention: `run_<lowercased status>`. */
export function engineRunId(engineStatus) {
  return `run_${engineStatus.toLowerCase()}`;
}

export const BOOLEAN_HELPERS = Object.freeze([
  "isQueued",
  "isExecuting",
  "isWaiting",
  "isCompleted",
  "isSuccess",
  "isFailed",
  "isCancelled",
]);

/** The §2.3 rules, applied to any API status (V1 or V2 vocabulary). */
export function helpersForApiStatus(status) {
  const isCompleted = ["COMPLETED", "CANCELED", "FAILED", "CRASHED", "INTERRUPTED", "SYSTEM_FAILURE"].includes(status);
  return {
    isQueued: ["QUEUED", "WAITING_FOR_DEPLOY", "DELAYED", "PENDING_VERSION"].includes(status),
    isExecuting: ["EXECUTING", "REATTEMPTING", "FROZEN", "DEQUEUED"].includes(status),
    isWaiting: status === "WAITING",
    isCompleted,
    isSuccess: status === "COMPLETED",
    isFailed: isCompleted && status !== "COMPLETED",
    isCancelled: status === "CANCELED",
  };
}

/** Pick the seven boolean helpers from a run. */
export function pickHelpers(run) {
  return Object.fromEntries(BOOLEAN_HELPERS.map((k) => [k, run[k]]));
}


// ---------------------------------------------------------------------------
// Scenarios and the admin API (`/_mock/…`, no auth).

/**
 * Write a scenario object to a JSON file in a fresh temp folder.
 * Returns `{ path, cleanup }`; pass `path` to `--scenario`.
 */
export function writeScenarioFile(scenario, name = "scenario.json") {
  const dir = mkdtempSync(path.join(os.tmpdir(), "trigger-mock-contract-"));
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(scenario, null, 2));
  return { path: file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function adminRequest(baseUrl, method, pathAndQuery, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${baseUrl}${pathAndQuery}`, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${pathAndQuery} -> ${res.status}: ${text.slice(0, 500)}`);
  try {
    return text === "" ? undefined : JSON.parse(text);
  } catch {
    throw new Error(`${method} ${pathAndQuery} did not answer JSON: ${text.slice(0, 500)}`);
  }
}

/** The journal shows only the first 16 characters of a key (filtering by `key` still uses the whole key). */
export const JOURNAL_KEY_CHARS = 16;

/** A key as a journal record shows it. */
export function journalKey(key) {
  return key.slice(0, JOURNAL_KEY_CHARS);
}

/** `GET /_mock/journal` filtered by `key`, `runId`, `limit`; resolves to the records (oldest first). */
export async function readJournal(baseUrl, { key, runId, limit } = {}) {
  const q = new URLSearchParams();
  if (key !== undefined) q.set("key", key);
  if (runId !== undefined) q.set("runId", runId);
  if (limit !== undefined) q.set("limit", String(limit));
  const qs = q.toString();
  const body = await adminRequest(baseUrl, "GET", `/_mock/journal${qs ? `?${qs}` : ""}`);
  if (!body || body.enabled !== true || !Array.isArray(body.records)) {
    throw new Error(`unexpected journal answer: ${JSON.stringify(body)?.slice(0, 500)}`);
  }
  return body.records;
}

/** `POST /_mock/clock` with e.g. `{advance: "10m"}`, `{set: "…Z"}` or `{advanceMs: N}`; resolves to the new clock. */
export function moveClock(baseUrl, change) {
  return adminRequest(baseUrl, "POST", "/_mock/clock", change);
}

/** `GET /_mock/clock`. */
export function readClock(baseUrl) {
  return adminRequest(baseUrl, "GET", "/_mock/clock");
}

/** `POST /_mock/reset[?key=KEY]`: forget the scenario state of one key (or of all keys). */
export function resetScenarioState(baseUrl, key) {
  const qs = key === undefined ? "" : `?key=${encodeURIComponent(key)}`;
  return adminRequest(baseUrl, "POST", `/_mock/reset${qs}`);
}

/** Milliseconds between consecutive journal records (by the server's wall clock). */
export function wallGaps(records) {
  return records.slice(1).map((r, i) => r.wallMs - records[i].wallMs);
}

const COLLECT_TIMEOUT = Symbol("timeout");

/**
 * Iterates the realtime subscription `makeIterable(signal)` until it ends or
 * `limitMs` passes, calling `onYield(run, n)` after each yield; then aborts
 * it. Resolves to `{ yields, ended }`. The deadline does not rely on the
 * abort signal ending the iterator (the SDK does not always end it), since a
 * hang is the failure mode of these APIs.
 */
export async function collectRealtime(makeIterable, { limitMs = 8000, onYield = async () => {} } = {}) {
  const ac = new AbortController();
  const iterator = makeIterable(ac.signal)[Symbol.asyncIterator]();
  const deadline = Date.now() + limitMs;
  const yields = [];
  let ended = false;
  try {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(() => resolve(COLLECT_TIMEOUT), left);
      });
      const next = await Promise.race([iterator.next(), timeout]);
      clearTimeout(timer);
      if (next === COLLECT_TIMEOUT) break;
      if (next.done) {
        ended = true;
        break;
      }
      yields.push(next.value);
      await onYield(next.value, yields.length);
    }
  } finally {
    ac.abort();
    // Not awaited: an iterator parked in a long-poll may never settle.
    Promise.resolve(iterator.return?.()).catch(() => {});
  }
  return { yields, ended };
}

/** Debian's Chromium, which scripts/test installs when missing (or CHROMIUM_PATH). */
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * The flags the browser tests start Chromium with: headless as root, and none
 * of its own network traffic, which this machine's closed network refuses.
 */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
