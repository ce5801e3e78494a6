// Realtime with the real SDK: runs.subscribeToRun, subscribeToRunsWithTag and
// subscribeToBatch against the mock's Electric long-poll feeds.
//
// A hang is the failure mode of these APIs (the SDK swallows HTTP errors and
// keeps polling), so every subscription runs under an AbortController with a
// deadline, and every test asserts the exact number of yields.
//
// The clock is frozen (set to the wall clock at start, so the SDK's
// self-signed tokens are current) and moved by the admin API; every test uses
// its own key, so scripted runs start afresh.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { auth, configure, runs } from "@trigger.dev/sdk";
import { moveClock, readJournal, runNodeScript, startServer, writeScenarioFile } from "./helpers.mjs";

const TIMED = "run_rt_timed"; // PENDING 1m → EXECUTING 1m → COMPLETED_SUCCESSFULLY
const CANCELED = "run_rt_canceled"; // PENDING 1m → CANCELED
const FAILED = "run_rt_failed"; // PENDING 1m → EXECUTING 1m → COMPLETED_WITH_ERRORS
const EXPIRING = "run_rt_ttl"; // PENDING with a 10m TTL
const POLLED = "run_rt_polled"; // PENDING for 1 retrieve → EXECUTING for 1 retrieve → COMPLETED
const FLAKY = "run_rt_flaky"; // PENDING 1m → EXECUTING; its first realtime request gets a 500, its first live poll is dropped
const TAG = "rt-contract";
const BATCH = "batch_rt_contract";

const SCENARIO = {
  version: 1,
  description: "realtime contract runs",
  runs: [
    {
      id: TIMED,
      taskIdentifier: "rt-task",
      payload: { a: 1 },
      tags: [TAG, "user:1"],
      batchId: BATCH,
      lifecycle: [{ status: "PENDING", for: "1m" }, { status: "EXECUTING", for: "1m" }, { status: "COMPLETED_SUCCESSFULLY" }],
    },
    {
      id: CANCELED,
      taskIdentifier: "rt-task",
      tags: [TAG],
      batchId: BATCH,
      lifecycle: [{ status: "PENDING", for: "1m" }, { status: "CANCELED" }],
    },
    {
      id: FAILED,
      taskIdentifier: "rt-other",
      lifecycle: [{ status: "PENDING", for: "1m" }, { status: "EXECUTING", for: "1m" }, { status: "COMPLETED_WITH_ERRORS" }],
    },
    { id: EXPIRING, taskIdentifier: "rt-other", status: "PENDING", ttl: "10m" },
    {
      id: POLLED,
      taskIdentifier: "rt-other",
      lifecycle: [{ status: "PENDING", retrieves: 1 }, { status: "EXECUTING", retrieves: 1 }, { status: "COMPLETED_SUCCESSFULLY" }],
    },
    {
      id: FLAKY,
      taskIdentifier: "rt-other",
      lifecycle: [{ status: "PENDING", for: "1m" }, { status: "EXECUTING" }],
    },
  ],
  faults: [
    { runId: FLAKY, route: "realtime", nth: 1, action: { type: "serverError" } },
    { runId: FLAKY, route: "realtime", nth: 3, action: { type: "reset" } },
  ],
};

let server;
let scenario;
let keyCounter = 0;
function freshKey(label) {
  keyCounter += 1;
  return `tr_dev_rt_${label}_${process.pid}_${keyCounter}`;
}

const TIMEOUT = Symbol("timeout");

/**
 * Iterates the subscription `makeIterable(signal)` until it ends or `limitMs`
 * passes, calling `onYield(run, n)` after each yield; then aborts it.
 * Resolves to `{ yields, ended }`. The deadline does not rely on the abort
 * signal ending the iterator (the SDK does not always end it).
 */
async function collect(makeIterable, { limitMs = 8000, onYield = async () => {} } = {}) {
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
        timer = setTimeout(() => resolve(TIMEOUT), left);
      });
      const next = await Promise.race([iterator.next(), timeout]);
      clearTimeout(timer);
      if (next === TIMEOUT) break;
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

describe("realtime through the SDK", () => {
  before(async () => {
    scenario = writeScenarioFile(SCENARIO, "realtime.json");
    server = await startServer(["--scenario", scenario.path, "--realtime-hold-ms", "1000"]);
    await moveClock(server.url, { set: new Date().toISOString() });
  });
  after(async () => {
    await server?.stop();
    scenario?.cleanup();
  });

  it("subscribeToRun yields QUEUED, EXECUTING, COMPLETED as the admin clock moves, and ends", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("timed") });
    const { yields, ended } = await collect((signal) => runs.subscribeToRun(TIMED, { signal }), {
      onYield: async (run) => {
        if (!run.isCompleted) await moveClock(server.url, { advance: "1m" });
      },
    });
    assert.deepEqual(
      yields.map((r) => r.status),
      ["QUEUED", "EXECUTING", "COMPLETED"],
    );
    assert.equal(ended, true, "the iterator ends by itself on completedAt");
    const [queued, executing, done] = yields;
    assert.equal(queued.id, TIMED);
    assert.equal(queued.taskIdentifier, "rt-task");
    assert.deepEqual(queued.payload, { a: 1 });
    assert.deepEqual(queued.tags.slice().sort(), [TAG, "user:1"].sort());
    assert.equal(queued.finishedAt, undefined);
    assert.ok(executing.startedAt instanceof Date);
    assert.ok(done.finishedAt instanceof Date);
    assert.equal(done.isSuccess, true);
    assert.equal(done.finishedAt.getTime() - executing.startedAt.getTime(), 60_000);
  });

  for (const [id, statuses, expect] of [
    [CANCELED, ["QUEUED", "CANCELED"], { isCancelled: true, isCompleted: false }],
    [FAILED, ["QUEUED", "EXECUTING", "FAILED"], { isFailed: true, isCompleted: true }],
  ]) {
    const final = statuses.at(-1);
    it(`subscribeToRun ends for a run that becomes ${final}`, async () => {
      configure({ baseURL: server.url, accessToken: freshKey(final) });
      const { yields, ended } = await collect((signal) => runs.subscribeToRun(id, { signal }), {
        onYield: async (run) => {
          if (!run.finishedAt) await moveClock(server.url, { advance: "1m" });
        },
      });
      assert.deepEqual(
        yields.map((r) => r.status),
        statuses,
      );
      assert.equal(ended, true);
      const last = yields.at(-1);
      for (const [k, v] of Object.entries(expect)) assert.equal(last[k], v, k);
      assert.ok(last.finishedAt instanceof Date);
    });
  }

  it("subscribeToRun ends for a run whose TTL runs out (EXPIRED)", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("ttl") });
    const { yields, ended } = await collect((signal) => runs.subscribeToRun(EXPIRING, { signal }), {
      onYield: async (_run, n) => {
        if (n === 1) await moveClock(server.url, { advance: "10m" });
      },
    });
    assert.deepEqual(
      yields.map((r) => r.status),
      ["QUEUED", "EXPIRED"],
    );
    assert.equal(ended, true);
    assert.ok(yields[1].expiredAt instanceof Date);
  });

  it("a run finished before the subscription yields once and ends", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("done") });
    const { yields, ended } = await collect((signal) => runs.subscribeToRun("run_canceled", { signal }));
    assert.deepEqual(
      yields.map((r) => r.status),
      ["CANCELED"],
    );
    assert.equal(ended, true, "every terminal status carries completedAt");
  });

  it("realtime reads never move a retrieve-driven step; retrieves do, and wake the subscription", async () => {
    const key = freshKey("polled");
    configure({ baseURL: server.url, accessToken: key });
    const { yields, ended } = await collect((signal) => runs.subscribeToRun(POLLED, { signal }), {
      limitMs: 10_000,
      onYield: async (_run, n) => {
        if (n === 1) {
          // Two hold times pass with no retrieve: nothing changes.
          await new Promise((r) => setTimeout(r, 2500));
        }
        await runs.retrieve(POLLED);
      },
    });
    assert.deepEqual(
      yields.map((r) => r.status),
      ["QUEUED", "EXECUTING", "COMPLETED"],
    );
    assert.equal(ended, true);
    const realtime = (await readJournal(server.url, { key, runId: POLLED })).filter((r) => r.path.startsWith("/realtime/"));
    assert.ok(realtime.length >= 3, `at least a snapshot and the idle polls: ${realtime.length}`);
  });

  it("the tag feed yields every run with the tags, once each", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("tags") });
    const { yields } = await collect((signal) => runs.subscribeToRunsWithTag(TAG, {}, { signal }), { limitMs: 1500 });
    assert.deepEqual(yields.map((r) => r.id).sort(), [CANCELED, TIMED].sort());
    const both = await collect((signal) => runs.subscribeToRunsWithTag([TAG, "user:1"], {}, { signal }), {
      limitMs: 1500,
    });
    assert.deepEqual(
      both.yields.map((r) => r.id),
      [TIMED],
      "a run must carry every listed tag",
    );
  });

  it("the batch feed yields every run of the batch, and its changes", async () => {
    // In a child process: after a multi-row feed has seen changes, SDK 4.8.3 keeps
    // polling even once aborted, which would keep this test file alive.
    const source = `
      import { configure, runs } from "@trigger.dev/sdk";
      configure({ baseURL: ${JSON.stringify(server.url)}, accessToken: ${JSON.stringify(freshKey("batch"))} });
      setTimeout(() => process.exit(0), 3000);
      let n = 0;
      for await (const run of runs.subscribeToBatch(${JSON.stringify(BATCH)})) {
        n += 1;
        console.log(JSON.stringify({ id: run.id, status: run.status }));
        if (n === 2) await fetch(${JSON.stringify(server.url)} + "/_mock/clock", { method: "POST", body: '{"advance":"1m"}' });
      }`;
    const { code, stdout, stderr } = await runNodeScript(source, { env: { PATH: process.env.PATH }, timeoutMs: 10_000 });
    assert.equal(code, 0, stderr);
    const yields = stdout.trim().split("\n").filter(Boolean).map((line) => JSON.parse(line));
    assert.deepEqual(
      yields.slice(0, 2).map((r) => r.id).sort(),
      [CANCELED, TIMED].sort(),
    );
    assert.deepEqual(
      yields.slice(2).map((r) => `${r.id} ${r.status}`).sort(),
      [`${CANCELED} CANCELED`, `${TIMED} EXECUTING`],
    );
    assert.equal(yields.length, 4);
  });

  it("skipColumns drops the payload, from the query and from the token", async () => {
    const key = freshKey("skip");
    // The SDK signs tokens with the wall clock; earlier tests moved the mock clock on.
    await moveClock(server.url, { set: new Date().toISOString() });
    configure({ baseURL: server.url, accessToken: key });
    const plain = await collect((signal) => runs.subscribeToRun("run_completed", { signal }));
    assert.equal(plain.yields.length, 1);
    assert.notEqual(plain.yields[0].payload, undefined);
    const skipped = await collect((signal) => runs.subscribeToRun("run_completed", { signal, skipColumns: ["payload"] }));
    assert.equal(skipped.yields.length, 1);
    assert.equal(skipped.yields[0].payload, undefined);
    assert.equal(skipped.yields[0].status, "COMPLETED");
    const token = await auth.createPublicToken({
      scopes: { read: { runs: ["run_completed"] } },
      realtime: { skipColumns: ["payload"] },
    });
    const byToken = await auth.withAuth({ baseURL: server.url, accessToken: token }, () =>
      collect((signal) => runs.subscribeToRun("run_completed", { signal })),
    );
    assert.equal(byToken.yields.length, 1);
    assert.equal(byToken.yields[0].payload, undefined);
  });

  it("a token for another run gets nothing (403, and the SDK yields nothing)", async () => {
    const key = freshKey("deny");
    await moveClock(server.url, { set: new Date().toISOString() });
    configure({ baseURL: server.url, accessToken: key });
    const token = await auth.createPublicToken({ scopes: { read: { runs: ["run_other"] } } });
    const denied = await auth.withAuth({ baseURL: server.url, accessToken: token }, () =>
      collect((signal) => runs.subscribeToRun("run_completed", { signal }), { limitMs: 1500 }),
    );
    assert.equal(denied.yields.length, 0);
    assert.equal(denied.ended, false, "the SDK hangs on a 4xx until aborted");
    const records = await readJournal(server.url, { key, runId: "run_completed" });
    assert.ok(records.length >= 1);
    assert.ok(records.every((r) => r.status === 403 && r.token?.valid === true), JSON.stringify(records));
    const allowed = await auth.withAuth({ baseURL: server.url, accessToken: token }, () =>
      collect((signal) => runs.subscribeToRun("run_other", { signal }), { limitMs: 3000 }),
    );
    assert.equal(allowed.yields.length, 1, "the same token reads its own run");
  });

  it("a 500 on the feed and a dropped long-poll are retried by the SDK, and journaled", async () => {
    const key = freshKey("faults");
    configure({ baseURL: server.url, accessToken: key });
    const { yields } = await collect((signal) => runs.subscribeToRun(FLAKY, { signal }), {
      limitMs: 4000,
      onYield: async (_run, n) => {
        if (n === 1) {
          await new Promise((r) => setTimeout(r, 300)); // let the live poll reach the server and be dropped
          await moveClock(server.url, { advance: "1m" });
        }
      },
    });
    assert.deepEqual(
      yields.map((r) => r.status),
      ["QUEUED", "EXECUTING"],
    );
    const records = await readJournal(server.url, { key, runId: FLAKY });
    assert.equal(records[0].status, 500);
    assert.match(records[0].fault, /serverError/);
    assert.equal(records[1].status, 200);
    assert.equal(records[2].status, 0, "the third request's connection was reset");
    assert.match(records[2].fault, /reset/);
    assert.ok(records.slice(3).every((r) => r.status === 200));
  });
});
