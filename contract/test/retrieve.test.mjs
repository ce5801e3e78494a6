// runs.retrieve / runs.poll through the real @trigger.dev/sdk against trigger-mock.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { configure, runs } from "@trigger.dev/sdk";
import {
  BOOLEAN_HELPERS,
  ENGINE_TO_V2,
  pickHelpers,
  readCatalogue,
  startCountingProxy,
  startServer,
} from "./helpers.mjs";

const ACCESS_TOKEN = "tr_dev_contract_0123456789";
// Fail fast instead of sitting through the SDK's default 5-attempt backoff.
const ONE_TRY = { retry: { maxAttempts: 1 } };

// Expected boolean helpers for every current (V2) status, contract.md §2.3.
// Columns: isQueued, isExecuting, isWaiting, isCompleted, isSuccess, isFailed, isCancelled
const T = true;
const F = false;
const EXPECTED_HELPERS = {
  PENDING_VERSION: [T, F, F, F, F, F, F],
  DELAYED: /*    */ [T, F, F, F, F, F, F],
  QUEUED: /*     */ [T, F, F, F, F, F, F],
  DEQUEUED: /*   */ [F, T, F, F, F, F, F],
  EXECUTING: /*  */ [F, T, F, F, F, F, F],
  WAITING: /*    */ [F, F, T, F, F, F, F],
  COMPLETED: /*  */ [F, F, F, T, T, F, F],
  CANCELED: /*   */ [F, F, F, T, F, T, T],
  FAILED: /*     */ [F, F, F, T, F, T, F],
  CRASHED: /*    */ [F, F, F, T, F, T, F],
  SYSTEM_FAILURE: [F, F, F, T, F, T, F],
  EXPIRED: /*    */ [F, F, F, F, F, F, F],
  TIMED_OUT: /*  */ [F, F, F, F, F, F, F],
};
const STATUSES = Object.keys(EXPECTED_HELPERS);
const NOT_FINISHED = new Set(["PENDING_VERSION", "DELAYED", "QUEUED", "DEQUEUED", "EXECUTING", "WAITING"]);
const WITH_ERROR = new Set(["FAILED", "CRASHED", "SYSTEM_FAILURE"]);
const DATE_FIELDS = ["createdAt", "updatedAt", "startedAt", "finishedAt", "delayedUntil", "expiredAt"];

function expectedHelpers(status) {
  return Object.fromEntries(BOOLEAN_HELPERS.map((k, i) => [k, EXPECTED_HELPERS[status][i]]));
}

/** Every date the SDK coerced must be a real Date, and never the 1970 epoch (a `null` on the wire). */
function assertDates(run, where = run.id) {
  for (const field of ["createdAt", "updatedAt"]) {
    assert.ok(run[field] instanceof Date, `${where}: ${field} should be a Date, got ${run[field]}`);
  }
  for (const field of DATE_FIELDS) {
    if (run[field] === undefined) continue;
    const d = run[field];
    assert.ok(d instanceof Date, `${where}: ${field} should be a Date, got ${typeof d} ${d}`);
    assert.ok(!Number.isNaN(d.getTime()), `${where}: ${field} is an invalid Date`);
    assert.notEqual(d.getTime(), 0, `${where}: ${field} is the 1970 epoch (was null sent?)`);
  }
  assert.ok(run.updatedAt.getTime() >= run.createdAt.getTime(), `${where}: updatedAt is before createdAt`);
  if (run.startedAt && run.finishedAt) {
    assert.ok(run.finishedAt.getTime() >= run.startedAt.getTime(), `${where}: finishedAt is before startedAt`);
  }
}

function assertRelatedRunDates(run) {
  const rel = run.relatedRuns ?? {};
  for (const key of ["root", "parent"]) if (rel[key]) assertDates(rel[key], `${run.id}.relatedRuns.${key}`);
  for (const [i, child] of (rel.children ?? []).entries()) assertDates(child, `${run.id}.relatedRuns.children[${i}]`);
}

/**
 * The checks that apply to a run the SDK returned with `status`.
 * `fixture: true` (the `run_<status>` convention runs) adds the per-status
 * content checks; catalogue runs may legitimately lack an output or error.
 */
function assertRunShape(run, id, status, { fixture = true } = {}) {
  assert.equal(run.id, id);
  assert.equal(run.status, status, `${id}: status`);
  assert.deepEqual(pickHelpers(run), expectedHelpers(status), `${id}: boolean helpers for ${status}`);
  assertDates(run);
  assertRelatedRunDates(run);
  assert.equal(typeof run.attemptCount, "number", `${id}: attemptCount should be a number`);
  assert.ok(Number.isFinite(run.attemptCount), `${id}: attemptCount should be finite`);

  if (NOT_FINISHED.has(status)) {
    assert.equal(run.finishedAt, undefined, `${id}: a ${status} run has no finishedAt`);
  }
  if (status === "COMPLETED") {
    if (fixture) assert.notEqual(run.output, undefined, `${id}: a COMPLETED run has an output`);
    assert.equal(run.error, undefined, `${id}: a COMPLETED run has no error`);
  } else {
    // contract.md §3.3: output is returned only for COMPLETED_SUCCESSFULLY runs.
    assert.equal(run.output, undefined, `${id}: only COMPLETED runs have an output`);
  }
  if (WITH_ERROR.has(status) && fixture) {
    assert.equal(typeof run.error?.message, "string", `${id}: a ${status} run has error.message`);
    assert.notEqual(run.error.message, "", `${id}: error.message should not be empty`);
  }
  if (status === "EXPIRED" && fixture) {
    assert.ok(run.expiredAt instanceof Date, `${id}: an EXPIRED run has expiredAt`);
    assert.equal(typeof run.ttl, "string", `${id}: an EXPIRED run has a string ttl`);
  }
  if (status === "DELAYED" && fixture) {
    assert.ok(run.delayedUntil instanceof Date, `${id}: a DELAYED run has delayedUntil`);
  }
}

describe("runs.retrieve with the current API vocabulary", () => {
  let server;
  let proxy;

  before(async () => {
    server = await startServer();
    // All SDK traffic goes through a counting proxy, so poll can be checked for a single request.
    proxy = await startCountingProxy(server.url);
    configure({ baseURL: proxy.url, accessToken: ACCESS_TOKEN });
  });

  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  it("the expected truth table covers exactly the 13 SDK statuses", () => {
    assert.equal(STATUSES.length, 13);
  });

  for (const status of STATUSES) {
    const id = `run_${status.toLowerCase()}`;
    it(`${id} -> ${status}`, async () => {
      const run = await runs.retrieve(id, ONE_TRY);
      assertRunShape(run, id, status);
    });
  }

  describe("a suffix after the keyword is allowed", () => {
    const cases = {
      run_completed_abc: "COMPLETED",
      run_timed_out_abc: "TIMED_OUT",
      run_system_failure_x1: "SYSTEM_FAILURE",
      run_pending_version_abc: "PENDING_VERSION",
      run_waiting_abc: "WAITING",
      run_canceled_0: "CANCELED",
    };
    for (const [id, status] of Object.entries(cases)) {
      it(`${id} -> ${status}`, async () => {
        const run = await runs.retrieve(id, ONE_TRY);
        assertRunShape(run, id, status);
      });
    }
  });

  describe("engine (database) status names render in the V2 vocabulary", () => {
    const cases = {
      run_waiting_for_deploy: "PENDING_VERSION",
      run_retrying_after_failure: "EXECUTING",
      run_paused: "WAITING",
      run_waiting_to_resume: "WAITING",
      run_completed_successfully: "COMPLETED",
      run_completed_with_errors: "FAILED",
      run_interrupted: "FAILED",
      run_pending: "QUEUED",
    };
    for (const [id, status] of Object.entries(cases)) {
      it(`${id} -> ${status}`, async () => {
        const run = await runs.retrieve(id, ONE_TRY);
        assertRunShape(run, id, status);
      });
    }
  });

  it("every catalogue run can be retrieved, with the V2 rendering of its engine status", async () => {
    const catalogue = await readCatalogue();
    assert.ok(Array.isArray(catalogue), "catalogue --json prints a JSON array");
    assert.ok(catalogue.length > 0, "the catalogue is not empty");
    const ids = new Set();
    for (const entry of catalogue) {
      assert.equal(typeof entry.id, "string", `catalogue entry id: ${JSON.stringify(entry)}`);
      assert.equal(typeof entry.description, "string", `catalogue entry description: ${JSON.stringify(entry)}`);
      assert.ok(!ids.has(entry.id), `duplicate catalogue id ${entry.id}`);
      ids.add(entry.id);
      assert.ok(
        Object.hasOwn(ENGINE_TO_V2, entry.status),
        `catalogue entry ${entry.id} has an unknown engine status ${JSON.stringify(entry.status)}`,
      );
      const expected = ENGINE_TO_V2[entry.status];
      let run;
      try {
        run = await runs.retrieve(entry.id, ONE_TRY);
      } catch (err) {
        assert.fail(`retrieving catalogue run ${entry.id} (${entry.description}) failed: ${err?.constructor?.name}: ${err?.message}`);
      }
      assertRunShape(run, entry.id, expected, { fixture: false });
    }
  });

  it("runs.poll on a completed run returns after one request", async () => {
    proxy.reset();
    const started = performance.now();
    const run = await runs.poll("run_completed", { pollIntervalMs: 5_000 }, ONE_TRY);
    const elapsed = performance.now() - started;
    assert.equal(run.status, "COMPLETED");
    assert.equal(run.isCompleted, true);
    assert.equal(proxy.requests.length, 1, "poll made exactly one request");
    assert.ok(elapsed < 4_000, `poll took ${elapsed.toFixed(0)} ms (a second poll would add 5000 ms)`);
  });

  it("the SDK sends the current API version header (premise of the V2 checks)", async () => {
    proxy.reset();
    await runs.retrieve("run_queued", ONE_TRY);
    assert.equal(proxy.requests.length, 1);
    for (const req of proxy.requests) {
      assert.equal(req.method, "GET");
      assert.equal(req.headers["x-trigger-api-version"], "2025-07-16");
      assert.equal(req.headers.authorization, `Bearer ${ACCESS_TOKEN}`);
    }
  });
});
