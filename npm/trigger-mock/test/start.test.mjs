// startTriggerMock: options become flags, scenarios become files, and the
// server it starts ends with stop() or with the runner, however it ends.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";
import { SERVE_FLAGS, startTriggerMock } from "../index.js";
import { alive, binary, gone, PKG_DIR, runNode } from "./helpers.mjs";

const bin = binary();

test("the options and `serve --help` name the same flags", () => {
  const help = execFileSync(bin, ["serve", "--help"], { encoding: "utf8" });
  const listed = new Set([...help.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]));
  // Flags startTriggerMock sets itself, or takes through another option.
  const own = ["--addr", "--exit-on-stdin-close", "--scenario", "--help", "--version"];
  const offered = Object.values(SERVE_FLAGS).map(([flag]) => flag);
  for (const flag of offered) assert.ok(listed.has(flag), `${flag} is not a serve flag`);
  // A new serve flag fails here until it is one line in flags.js (and one in index.d.ts).
  assert.deepEqual([...listed].filter((f) => !own.includes(f) && !offered.includes(f)), []);
});

test("options reach the server; scenario objects are written to a temp file and removed on stop", async () => {
  const mock = await startTriggerMock({
    binaryPath: bin,
    seed: 42,
    clock: new Date("2026-05-01T12:00:00Z"),
    journalSize: 2,
    notFoundRetry: false,
    noGenerate: true,
    scenarios: [
      "builtin:expired-ttl",
      { version: 1, description: "from an object", runs: [{ id: "run_from_object", status: "EXECUTING" }] },
    ],
    journalBytes: 100_000,
    keyStateBytes: 200_000,
    idleTimeout: 5,
    bodyTimeout: 5,
    maxConnections: 10,
    workers: 1,
    args: ["--offload-threshold", "1000"],
  });
  try {
    assert.equal((await mock.admin.clock()).now, "2026-05-01T12:00:00.000Z");
    const { memory } = await mock.admin.health();
    assert.deepEqual([memory.journalBudget, memory.keyStateBudget], [100_000, 200_000], "--journal-bytes, --key-state-bytes");
    const argv0 = readFileSync(`/proc/${mock.pid}/cmdline`, "utf8").split("\0");
    for (const [flag, value] of [["--idle-timeout", "5"], ["--body-timeout", "5"], ["--max-connections", "10"], ["--workers", "1"]]) {
      assert.equal(argv0[argv0.indexOf(flag) + 1], value, flag);
    }
    const { sources, runs } = await mock.admin.scenarios();
    assert.equal(sources.length, 2);
    assert.ok(runs.includes("run_from_object") && runs.includes("run_ttl"), runs.join());
    const headers = { authorization: `Bearer ${mock.env.TRIGGER_SECRET_KEY}` };
    const unknown = await fetch(`${mock.url}/api/v3/runs/run_generated_elsewhere`, { headers });
    assert.equal(unknown.status, 404, "--no-generate");
    assert.equal(unknown.headers.get("x-should-retry"), "false", "--not-found-retry false");
    for (let i = 0; i < 3; i++) await fetch(`${mock.url}/api/v3/runs/run_from_object`, { headers });
    assert.equal((await mock.admin.records()).length, 2, "--journal-size 2");
    // The object went to a file the server was given on its command line.
    const argv = readFileSync(`/proc/${mock.pid}/cmdline`, "utf8").split("\0");
    const file = argv.find((a) => a.endsWith("scenario-2.json"));
    assert.ok(file && existsSync(file), argv.join(" "));
    await mock.stop();
    assert.equal(existsSync(file), false, `${file} is removed`);
    assert.equal(existsSync(path.dirname(file)), false);
  } finally {
    await mock.stop();
  }
});

test("a bad scenario or flag rejects with the server's FILE:LINE:COLUMN message, leaving nothing behind", async () => {
  const err = await startTriggerMock({ binaryPath: bin, scenarios: [{ version: 1, runs: [{ id: "nope" }] }] }).catch((e) => e);
  assert.match(err.message, /exited before serving \(code 2/);
  assert.match(err.message, /scenario-1\.json:\d+:\d+: /);
  await assert.rejects(startTriggerMock({ binaryPath: bin, args: ["--seed", "x"] }), /code 2/);
  await assert.rejects(startTriggerMock({ binaryPath: bin, sead: 1 }), /unknown option sead/);
});

test("stop() ends the process it started, and only it", async () => {
  const [a, b] = await Promise.all([startTriggerMock({ binaryPath: bin }), startTriggerMock({ binaryPath: bin })]);
  assert.notEqual(a.pid, b.pid);
  assert.ok(alive(a.pid) && alive(b.pid));
  assert.deepEqual(await a.stop(), { code: 0, signal: null }, "a graceful exit");
  assert.equal(alive(a.pid), false, `server ${a.pid} is gone`);
  assert.equal((await b.admin.health()).status, "ok", "the other one still serves");
  await a.stop(); // a second stop is harmless
  await b.stop();
  assert.equal(alive(b.pid), false);
});

test("a runner that forgets stop() is not kept alive, and its server goes with it", async () => {
  let pid;
  const { code, stderr } = await runNode(
    `import { startTriggerMock } from "trigger-mock";
     const mock = await startTriggerMock({ binaryPath: ${JSON.stringify(bin)} });
     console.log(mock.pid);`,
    { onLine: (line) => (pid ??= Number(line)), timeoutMs: 10_000 },
  );
  assert.equal(code, 0, stderr);
  assert.ok(await gone(pid), `server ${pid} outlived its runner`);
});

// However the runner dies, the server follows: 'exit' handlers for exits and
// uncaught errors, and the closed stdin pipe (--exit-on-stdin-close) for
// signals that run no handler at all.
for (const [how, ending, kill] of [
  ["process.exit(1)", "process.exit(1);", null],
  ["an uncaught exception", "setTimeout(() => { throw new Error('boom'); }, 10);", null],
  ["SIGTERM", "setInterval(() => {}, 1000);", "SIGTERM"],
  ["SIGKILL", "setInterval(() => {}, 1000);", "SIGKILL"],
]) {
  test(`a runner ended by ${how} leaves no server behind`, async () => {
    let pid;
    const { code, signal } = await runNode(
      `import { startTriggerMock } from "trigger-mock";
       const mock = await startTriggerMock({ binaryPath: ${JSON.stringify(bin)} });
       await mock.admin.health();
       console.log(mock.pid);
       ${ending}`,
      {
        onLine: (line, child) => {
          pid ??= Number(line);
          if (kill) child.kill(kill);
        },
      },
    );
    assert.ok(pid > 0, "the runner printed the server's pid");
    if (kill) assert.equal(signal, kill);
    else assert.equal(code, 1);
    assert.ok(await gone(pid), `server ${pid} outlived a runner ended by ${how}`);
  });
}

test("the CommonJS entry starts and stops a server", async () => {
  const require = createRequire(path.join(PKG_DIR, "test", "cjs.cjs"));
  const cjs = require("trigger-mock");
  const mock = await cjs.startTriggerMock({ binaryPath: bin });
  try {
    assert.equal((await mock.admin.health()).status, "ok");
    assert.equal((await cjs.createAdminClient(mock.url).clock()).frozen, false);
    await cjs.ready;
    assert.equal(typeof cjs.resolveBinary, "function");
  } finally {
    await mock.stop();
  }
});

test("npx trigger-mock runs the resolved binary and passes signals on", async () => {
  const launcher = path.join(PKG_DIR, "bin", "trigger-mock.js");
  const version = execFileSync(process.execPath, [launcher, "--version"], {
    encoding: "utf8",
    env: { ...process.env, TRIGGER_MOCK_BIN: bin },
  });
  assert.match(version, /^trigger-mock \d+\.\d+\.\d+/);
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [launcher, "serve", "--addr", "127.0.0.1:0"], {
    env: { ...process.env, TRIGGER_MOCK_BIN: bin },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const url = await new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8");
    child.stdout.once("data", (line) => resolve(/http:\/\/[\d.:]+/.exec(line)?.[0]));
    child.once("exit", () => reject(new Error("the launcher exited")));
  });
  assert.equal((await (await fetch(`${url}/_mock/health`)).json()).status, "ok");
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.kill("SIGTERM");
  // The server stops gracefully on the forwarded SIGTERM, and the launcher exits with its code.
  assert.deepEqual(await exited, { code: 0, signal: null });
  await assert.rejects(fetch(`${url}/_mock/health`), "the server went with the launcher");
  const missing = await new Promise((resolve) => {
    const c = spawn(process.execPath, [launcher, "--version"], { env: { PATH: "/nonexistent" }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    c.stderr.on("data", (d) => (err += d));
    c.once("exit", (code) => resolve({ code, err }));
  });
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no server binary found\. Tried:/);
});
