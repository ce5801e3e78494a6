// Built-in scenarios with a lifecycle (poll-to-completion, expired-ttl,
// delayed-to-queued) driven through the real @trigger.dev/sdk, checked
// against the server's journal and moved along with the admin clock.
//
// Scenario state is per API key, and a run's timeline starts at the first
// request of its key, so every test uses its own key and the shared server
// never leaks state from one test into the next. configure() is global;
// every test sets the configuration it needs before its calls.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { auth, configure, runs } from "@trigger.dev/sdk";
import {
  BOOLEAN_HELPERS,
  journalKey,
  moveClock,
  pickHelpers,
  readClock,
  readJournal,
  resetScenarioState,
  runNodeScript,
  startCountingProxy,
  startServer,
  wallGaps,
} from "./helpers.mjs";

const ONE_TRY = { retry: { maxAttempts: 1 } };
const POLL_OK_OUTPUT = { summary: "All good.", tokens: 512 };
const ALL_FALSE = Object.fromEntries(BOOLEAN_HELPERS.map((k) => [k, false]));

/** A fresh key per test, so scenario state never leaks. */
let keyCounter = 0;
function freshKey(label) {
  keyCounter += 1;
  return `tr_dev_scn_${label}_${process.pid}_${keyCounter}`;
}

function statusesOf(proxyRequests) {
  return proxyRequests.map((r) => {
    assert.ok(r.response, `no response captured for ${r.method} ${r.url}`);
    return JSON.parse(r.response.text).status;
  });
}

describe("lifecycle scenarios through the SDK", () => {
  let server;
  let proxy;

  before(async () => {
    server = await startServer([
      "--scenario",
      "builtin:poll-to-completion",
      "--scenario",
      "builtin:expired-ttl",
      "--scenario",
      "builtin:delayed-to-queued",
    ]);
    // The proxy records what the SDK actually received, so the lifecycle the SDK walked through is visible.
    proxy = await startCountingProxy(server.url, { captureResponses: true });
  });

  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  it("runs.poll walks run_poll_ok QUEUED -> EXECUTING x2 -> COMPLETED with the scenario output, in 4 GETs", async () => {
    const key = freshKey("poll");
    configure({ baseURL: proxy.url, accessToken: key });
    proxy.reset();
    const run = await runs.poll("run_poll_ok", { pollIntervalMs: 50 }, ONE_TRY);

    assert.equal(run.id, "run_poll_ok");
    assert.equal(run.status, "COMPLETED");
    assert.equal(run.isCompleted, true);
    assert.equal(run.isSuccess, true);
    assert.deepEqual(run.output, POLL_OK_OUTPUT);
    assert.deepEqual(run.payload, { documentId: "doc_42" });
    assert.equal(run.taskIdentifier, "summarize-document");

    // What the SDK saw, response by response.
    assert.deepEqual(statusesOf(proxy.requests), ["QUEUED", "EXECUTING", "EXECUTING", "COMPLETED"]);

    const records = await readJournal(server.url, { key });
    assert.equal(records.length, 4, `journal: ${JSON.stringify(records)}`);
    for (const r of records) {
      assert.equal(r.method, "GET");
      assert.equal(r.path, "/api/v3/runs/run_poll_ok");
      assert.equal(r.runId, "run_poll_ok");
      assert.equal(r.key, journalKey(key));
      assert.equal(r.status, 200);
      assert.ok(!r.fault, `no fault expected: ${JSON.stringify(r)}`);
    }
    const seqs = records.map((r) => r.seq);
    assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, "journal records are in seq order");
    // runs.poll sleeps pollIntervalMs between retrieves.
    for (const gap of wallGaps(records)) assert.ok(gap >= 40, `poll gap ${gap} ms < pollIntervalMs 50`);
  });

  it("run_poll_ok, once COMPLETED, stays COMPLETED", async () => {
    const key = freshKey("poll_stay");
    configure({ baseURL: server.url, accessToken: key });
    const seen = [];
    for (let i = 0; i < 6; i++) seen.push((await runs.retrieve("run_poll_ok", ONE_TRY)).status);
    assert.deepEqual(seen, ["QUEUED", "EXECUTING", "EXECUTING", "COMPLETED", "COMPLETED", "COMPLETED"]);
  });

  it("expired-ttl: run_ttl is QUEUED, then EXPIRED once the mock clock is 10 minutes on", async () => {
    const key = freshKey("ttl");
    configure({ baseURL: server.url, accessToken: key });

    const queued = await runs.retrieve("run_ttl", ONE_TRY);
    assert.equal(queued.status, "QUEUED");
    assert.equal(queued.isQueued, true);
    assert.equal(queued.ttl, "10m");
    assert.equal(queued.expiredAt, undefined, "a QUEUED run has no expiredAt");

    const moved = await moveClock(server.url, { advance: "10m" });
    assert.equal(typeof moved?.nowMs, "number", `clock answer: ${JSON.stringify(moved)}`);
    assert.deepEqual(await readClock(server.url).then((c) => c.nowMs), moved.nowMs);

    const expired = await runs.retrieve("run_ttl", ONE_TRY);
    assert.equal(expired.status, "EXPIRED");
    assert.ok(expired.expiredAt instanceof Date, `expiredAt should be a Date, got ${expired.expiredAt}`);
    assert.ok(!Number.isNaN(expired.expiredAt.getTime()), "expiredAt is a valid Date");
    assert.ok(
      expired.expiredAt.getTime() >= queued.createdAt.getTime() + 10 * 60_000,
      `expiredAt ${expired.expiredAt.toISOString()} is before createdAt ${queued.createdAt.toISOString()} + ttl 10m`,
    );
    assert.ok(expired.expiredAt.getTime() <= moved.nowMs, "expiredAt is not in the (mock) future");
    assert.equal(expired.ttl, "10m");
    // contract.md §2.3: EXPIRED is none of queued/executing/waiting/completed/success/failed/cancelled.
    assert.deepEqual(pickHelpers(expired), ALL_FALSE);
    assert.equal(expired.output, undefined, "an EXPIRED run has no output");
  });

  it("delayed-to-queued: run_delayed_start is DELAYED until createdAt + 1m, then QUEUED", async () => {
    const key = freshKey("delayed");
    configure({ baseURL: server.url, accessToken: key });

    const delayed = await runs.retrieve("run_delayed_start", ONE_TRY);
    assert.equal(delayed.status, "DELAYED");
    assert.equal(delayed.isQueued, true, "DELAYED counts as queued (contract.md §2.3)");
    assert.ok(delayed.delayedUntil instanceof Date, `delayedUntil should be a Date, got ${delayed.delayedUntil}`);
    assert.ok(delayed.createdAt instanceof Date);
    assert.equal(
      delayed.delayedUntil.getTime() - delayed.createdAt.getTime(),
      60_000,
      `delayedUntil ${delayed.delayedUntil.toISOString()} should be createdAt ${delayed.createdAt.toISOString()} + 1m`,
    );

    // Not yet: 59 s on it is still DELAYED.
    await moveClock(server.url, { advanceMs: 59_000 });
    assert.equal((await runs.retrieve("run_delayed_start", ONE_TRY)).status, "DELAYED");

    await moveClock(server.url, { advanceMs: 1_000 });
    const queued = await runs.retrieve("run_delayed_start", ONE_TRY);
    assert.equal(queued.status, "QUEUED");
    assert.equal(queued.isQueued, true);
    assert.equal(queued.createdAt.getTime(), delayed.createdAt.getTime(), "createdAt does not move");
  });
});

describe("scenario state is per API key", () => {
  let server;

  before(async () => {
    server = await startServer(["--scenario", "builtin:poll-to-completion"]);
  });

  after(async () => {
    await server?.stop();
  });

  // auth.withAuth scopes the configuration with AsyncLocalStorage in Node
  // (core apiClientManager.runWithConfig -> sdkScope.withScope), so two
  // interleaved calls in one process really use different keys. The journal
  // below proves it: each key has exactly its own 4 requests.
  it("two keys polling run_poll_ok concurrently (auth.withAuth) each walk their own lifecycle", async () => {
    const keyA = freshKey("iso_a");
    const keyB = freshKey("iso_b");
    configure({ baseURL: server.url, accessToken: freshKey("iso_global_unused") });

    const walk = (key) =>
      auth.withAuth({ baseURL: server.url, accessToken: key }, async () => {
        const first = await runs.retrieve("run_poll_ok", ONE_TRY);
        // Yield so the other key's calls interleave with this one's.
        await new Promise((r) => setTimeout(r, 10));
        const final = await runs.poll("run_poll_ok", { pollIntervalMs: 20 }, ONE_TRY);
        return { first: first.status, final: final.status, output: final.output };
      });

    const [a, b] = await Promise.all([walk(keyA), walk(keyB)]);
    for (const [label, outcome] of [["A", a], ["B", b]]) {
      assert.equal(outcome.first, "QUEUED", `key ${label} sees QUEUED on its first retrieve`);
      assert.equal(outcome.final, "COMPLETED", `key ${label} ends COMPLETED`);
      assert.deepEqual(outcome.output, POLL_OK_OUTPUT);
    }

    const recA = await readJournal(server.url, { key: keyA });
    const recB = await readJournal(server.url, { key: keyB });
    assert.equal(recA.length, 4, `key A journal: ${JSON.stringify(recA)}`);
    assert.equal(recB.length, 4, `key B journal: ${JSON.stringify(recB)}`);
    assert.ok(recA.every((r) => r.key === journalKey(keyA) && r.runId === "run_poll_ok"));
    assert.ok(recB.every((r) => r.key === journalKey(keyB) && r.runId === "run_poll_ok"));
    // The calls really were interleaved (otherwise this would not test isolation).
    const lastA = Math.max(...recA.map((r) => r.seq));
    const firstB = Math.min(...recB.map((r) => r.seq));
    const lastB = Math.max(...recB.map((r) => r.seq));
    const firstA = Math.min(...recA.map((r) => r.seq));
    assert.ok(firstB < lastA && firstA < lastB, `requests of A and B did not interleave: A ${recA.map((r) => r.seq)} B ${recB.map((r) => r.seq)}`);
    // The global configuration's key made no request.
    const all = await readJournal(server.url, { runId: "run_poll_ok" });
    assert.deepEqual(new Set(all.map((r) => r.key)), new Set([journalKey(keyA), journalKey(keyB)]));
  });

  it("two SDK clients in separate Node processes, in parallel, each walk their own lifecycle", async () => {
    const keyA = freshKey("proc_a");
    const keyB = freshKey("proc_b");
    const script = `
      import { runs } from "@trigger.dev/sdk";
      const seen = [];
      try {
        for (;;) {
          const run = await runs.retrieve("run_poll_ok", { retry: { maxAttempts: 1 } });
          seen.push(run.status);
          if (run.isCompleted || seen.length >= 10) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        console.log(JSON.stringify({ ok: true, seen }));
      } catch (err) {
        console.log(JSON.stringify({ ok: false, seen, class: err?.constructor?.name, message: err?.message }));
      }
    `;
    const run = async (key) => {
      const res = await runNodeScript(script, { env: { TRIGGER_API_URL: server.url, TRIGGER_SECRET_KEY: key } });
      assert.equal(res.code, 0, `child exited ${res.code}\n${res.stdout}\n${res.stderr}`);
      return JSON.parse(res.stdout.trim().split("\n").at(-1));
    };
    const [a, b] = await Promise.all([run(keyA), run(keyB)]);
    const expected = { ok: true, seen: ["QUEUED", "EXECUTING", "EXECUTING", "COMPLETED"] };
    assert.deepEqual(a, expected, "process A");
    assert.deepEqual(b, expected, "process B");
    assert.equal((await readJournal(server.url, { key: keyA })).length, 4);
    assert.equal((await readJournal(server.url, { key: keyB })).length, 4);
  });

  it("POST /_mock/reset?key=K restarts K's lifecycle only", async () => {
    const keyA = freshKey("reset_a");
    const keyB = freshKey("reset_b");
    const retrieveAs = (key) =>
      auth.withAuth({ baseURL: server.url, accessToken: key }, () => runs.retrieve("run_poll_ok", ONE_TRY));

    for (const key of [keyA, keyB]) {
      const final = await auth.withAuth({ baseURL: server.url, accessToken: key }, () =>
        runs.poll("run_poll_ok", { pollIntervalMs: 10 }, ONE_TRY),
      );
      assert.equal(final.status, "COMPLETED");
    }

    await resetScenarioState(server.url, keyA);

    assert.equal((await retrieveAs(keyA)).status, "QUEUED", "key A starts over after its reset");
    assert.equal((await retrieveAs(keyB)).status, "COMPLETED", "key B is untouched by A's reset");
    assert.equal((await retrieveAs(keyA)).status, "EXECUTING", "key A walks its lifecycle again");
    assert.equal((await retrieveAs(keyB)).status, "COMPLETED");
  });
});
