// The run flow an application drives with the real @trigger.dev/sdk:
// tasks.trigger then runs.poll, idempotency, offloaded payloads, batches,
// runs.list across pages, cancel/replay/reschedule, the errors the SDK
// throws for these routes, and two keys that never see each other's runs.
//
// Every test uses its own key: each key is its own environment (ledger), so
// tests never see each other's runs. configure() is global; every test sets
// the configuration it needs before its calls.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { auth, batch, configure, runs, tasks } from "@trigger.dev/sdk";
import { describeError, readJournal, rejectionOf, startServer, writeScenarioFile } from "./helpers.mjs";

const ONE_TRY = { retry: { maxAttempts: 1 } };
const FAST_POLL = { pollIntervalMs: 50 };

let keyCounter = 0;
function freshKey(label) {
  keyCounter += 1;
  return `tr_dev_flow_${label}_${process.pid}_${keyCounter}`;
}

const SCENARIO = {
  version: 1,
  description: "tasks for the run-flow contract tests",
  tasks: [
    {
      id: "summarise",
      lifecycle: [
        { status: "PENDING", retrieves: 1 },
        { status: "EXECUTING", retrieves: 1 },
        { status: "COMPLETED_SUCCESSFULLY" },
      ],
      output: { summary: "All good.", tokens: 512 },
    },
    {
      id: "flaky",
      lifecycle: [{ status: "EXECUTING", retrieves: 1 }, { status: "COMPLETED_WITH_ERRORS" }],
      error: { message: "It broke", name: "Error" },
    },
    { id: "stays-queued", lifecycle: [{ status: "PENDING" }] },
  ],
};

describe("the run flow through the SDK", () => {
  let server;
  let scenario;

  before(async () => {
    scenario = writeScenarioFile(SCENARIO, "tasks.json");
    server = await startServer(["--scenario", scenario.path]);
  });

  after(async () => {
    await server?.stop();
    scenario?.cleanup();
  });

  it("trigger then poll finishes COMPLETED with the default behaviour, one trigger and two retrieves", async () => {
    const key = freshKey("default");
    configure({ baseURL: server.url, accessToken: key });
    const handle = await tasks.trigger("not-in-any-file", { hello: "world" });
    assert.match(handle.id, /^run_c[0-9a-z]{24}$/);
    assert.equal(handle.isCached, false);
    assert.equal(typeof handle.publicAccessToken, "string");
    const run = await runs.poll(handle, FAST_POLL);
    assert.equal(run.status, "COMPLETED");
    assert.equal(run.isSuccess, true);
    assert.deepEqual(run.output, { hello: "world" }, "the default task completes with its payload");
    assert.deepEqual(run.payload, { hello: "world" });
    assert.equal(run.taskIdentifier, "not-in-any-file");
    assert.equal(run.ttl, "10m", "a development environment gets the 10m TTL");
    const journal = await readJournal(server.url, { runId: handle.id });
    assert.deepEqual(
      journal.map((r) => `${r.method} ${r.path}`),
      [
        "POST /api/v1/tasks/not-in-any-file/trigger",
        `GET /api/v3/runs/${handle.id}`,
        `GET /api/v3/runs/${handle.id}`,
      ],
    );
    assert.ok(journal.every((r) => r.triggerVersion === "4.8.3"), JSON.stringify(journal));
  });

  it("trigger then poll ends with the output the scenario declares", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("scenario") });
    const handle = await tasks.trigger("summarise", { text: "long" }, { tags: ["b", "a"], metadata: { m: 1 } });
    const seen = [];
    const run = await runs.poll(handle, FAST_POLL);
    seen.push(run.status);
    assert.equal(run.status, "COMPLETED");
    assert.deepEqual(run.output, SCENARIO.tasks[0].output);
    assert.deepEqual(run.tags, ["a", "b"]);
    assert.deepEqual(run.metadata, { m: 1 });
    assert.ok(run.startedAt instanceof Date && run.finishedAt instanceof Date);
  });

  it("idempotency keys: same key, same run and isCached; a failed run frees the key", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("idem") });
    const first = await tasks.trigger("flaky", { n: 1 }, { idempotencyKey: "order-1" });
    const again = await tasks.trigger("flaky", { n: 2 }, { idempotencyKey: "order-1" });
    assert.equal(first.isCached, false);
    assert.equal(again.id, first.id);
    assert.equal(again.isCached, true);
    const otherTask = await tasks.trigger("summarise", { n: 3 }, { idempotencyKey: "order-1" });
    assert.notEqual(otherTask.id, first.id, "keys are per task");
    const failed = await runs.poll(first, FAST_POLL);
    assert.equal(failed.status, "FAILED");
    assert.deepEqual(failed.error, { message: "It broke", name: "Error" });
    assert.equal(failed.idempotencyKey, "order-1", "retrieve shows the key the user gave");
    const afterFailure = await tasks.trigger("flaky", { n: 4 }, { idempotencyKey: "order-1" });
    assert.notEqual(afterFailure.id, first.id);
    assert.equal(afterFailure.isCached, false);
  });

  it("a payload over 128 KiB is offloaded by the SDK and round-trips byte for byte", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("big") });
    const payload = { blob: "é€😀x".repeat(40 * 1024), n: 1 };
    const handle = await tasks.trigger("not-in-any-file", payload);
    const run = await runs.retrieve(handle.id);
    assert.ok(run.payloadPresignedUrl, "the run has a presigned payload URL");
    assert.deepEqual(run.payload, payload);
    const raw = Buffer.from(await (await fetch(run.payloadPresignedUrl)).arrayBuffer());
    assert.ok(raw.length > 128 * 1024);
    assert.ok(raw.equals(Buffer.from(JSON.stringify({ json: payload }))), "the stored bytes are the bytes uploaded");
    const done = await runs.poll(handle, FAST_POLL);
    assert.deepEqual(done.output, payload, "the echoed output comes back through its own URL");
    const text = "t".repeat(200 * 1024);
    const textRun = await runs.retrieve((await tasks.trigger("not-in-any-file", text)).id);
    assert.equal(textRun.payload, text);
  });

  it("batch.trigger of 50 items, then batch.retrieve, and every run is retrievable", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("batch") });
    const items = Array.from({ length: 50 }, (_, i) => ({ id: i % 2 ? "odd-task" : "even-task", payload: { i } }));
    const handle = await batch.trigger(items);
    assert.match(handle.batchId, /^batch_c[0-9a-z]{24}$/);
    assert.equal(handle.runCount, 50);
    const got = await batch.retrieve(handle.batchId);
    assert.equal(got.status, "COMPLETED");
    assert.equal(got.runs.length, 50);
    const all = await Promise.all(got.runs.map((id) => runs.retrieve(id)));
    all.forEach((run, i) => {
      assert.equal(run.batchId, handle.batchId);
      assert.equal(run.taskIdentifier, i % 2 ? "odd-task" : "even-task");
      assert.deepEqual(run.payload, { i });
    });
    let listed = 0;
    for await (const run of runs.list({ batch: handle.batchId, limit: 20 })) {
      assert.equal(run.batchId, undefined, "list items have no batchId in the SDK's schema");
      listed += 1;
      assert.ok(run.id);
    }
    assert.equal(listed, 50);
  });

  it("runs.list iterates 300 created runs across pages, newest first, with filters", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("list") });
    const ids = [];
    for (let i = 0; i < 300; i += 1) {
      const handle = await tasks.trigger(i % 3 === 0 ? "third" : "other", { i }, { tags: i % 2 ? ["odd"] : ["even"] });
      ids.push(handle.id);
    }
    const seen = [];
    for await (const run of runs.list({ limit: 100 })) seen.push(run.id);
    assert.deepEqual(seen, [...ids].reverse());
    const thirds = [];
    for await (const run of runs.list({ taskIdentifier: "third", tag: "even", limit: 7 })) {
      assert.equal(run.taskIdentifier, "third");
      assert.deepEqual(run.tags, ["even"]);
      thirds.push(run.id);
    }
    assert.equal(thirds.length, 50);
    const page = await runs.list({ status: ["EXECUTING"], limit: 5 });
    assert.equal(page.data.length, 5);
    assert.ok(page.data.every((r) => r.status === "EXECUTING" && r.env.name === "dev"));
    const none = await runs.list({ status: "COMPLETED" });
    assert.equal(none.data.length, 0);
  });

  it("reschedule, cancel and replay", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("ops") });
    const handle = await tasks.trigger("stays-queued", { p: 1 }, { delay: "1h" });
    const delayed = await runs.retrieve(handle.id);
    assert.equal(delayed.status, "DELAYED");
    const moved = await runs.reschedule(handle.id, { delay: "2h" });
    assert.equal(moved.status, "DELAYED");
    assert.equal(moved.delayedUntil.toISOString(), "2026-01-01T02:00:00.000Z");
    assert.deepEqual(await runs.cancel(handle.id), { id: handle.id });
    const canceled = await runs.retrieve(handle.id);
    assert.equal(canceled.status, "CANCELED");
    assert.equal(canceled.isCancelled, true);
    assert.deepEqual(canceled.error, { message: "Canceled by user" });
    assert.deepEqual(await runs.cancel(handle.id), { id: handle.id }, "cancelling a finished run is a no-op");
    const replayed = await runs.replay(handle.id);
    assert.notEqual(replayed.id, handle.id);
    const copy = await runs.retrieve(replayed.id);
    assert.equal(copy.taskIdentifier, "stays-queued");
    assert.deepEqual(copy.payload, { p: 1 });
    assert.equal(copy.status, "QUEUED");
  });

  it("the SDK throws its error classes for these routes, after one request", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("errors") });
    const bad = await rejectionOf(tasks.trigger("x", {}, { machine: "huge" }, ONE_TRY));
    assert.equal(bad.constructor.name, "BadRequestError", describeError(bad));
    assert.match(bad.message, /^Validation error: Invalid enum value\. .* received 'huge' at "options\.machine"$/);
    const tags = await rejectionOf(tasks.trigger("x", {}, { tags: Array.from({ length: 11 }, (_, i) => `t${i}`) }));
    assert.equal(tags.constructor.name, "UnprocessableEntityError", describeError(tags));
    assert.equal(tags.message, "Runs can only have 10 tags, you're trying to set 11.");
    const big = await rejectionOf(tasks.trigger("x", {}, { metadata: { m: "m".repeat(300 * 1024) } }));
    assert.equal(big.status, 413, describeError(big));
    assert.equal(big.message, "Metadata exceeds maximum size of 262144 bytes");
    const query = await rejectionOf(runs.list({ limit: 500 }));
    assert.equal(query.constructor.name, "BadRequestError", describeError(query));
    assert.equal(query.message, "Query Error");
    const missing = await rejectionOf(runs.cancel("nope"));
    assert.equal(missing.constructor.name, "NotFoundError", describeError(missing));
    const notDelayed = await rejectionOf(runs.reschedule((await tasks.trigger("x", {})).id, { delay: "1h" }));
    assert.equal(notDelayed.constructor.name, "BadRequestError", describeError(notDelayed));
    assert.equal(notDelayed.message, "Cannot reschedule a run that is not delayed");
    configure({ baseURL: server.url, accessToken: "not_a_key" });
    const unauth = await rejectionOf(tasks.trigger("x", {}));
    assert.equal(unauth.constructor.name, "AuthenticationError", describeError(unauth));
    assert.equal(unauth.message, "Invalid API key");
  });

  it("two keys in parallel see disjoint ledgers", async () => {
    const keys = [freshKey("left"), freshKey("right")];
    configure({ baseURL: server.url, accessToken: keys[0] });
    const flows = keys.map((key) =>
      auth.withAuth({ baseURL: server.url, accessToken: key }, async () => {
        const made = [];
        for (let i = 0; i < 10; i += 1) made.push((await tasks.trigger("shared-task", { key, i })).id);
        const listed = [];
        for await (const run of runs.list({ limit: 4 })) listed.push(run.id);
        return { made, listed };
      }),
    );
    const [left, right] = await Promise.all(flows);
    assert.deepEqual(left.listed, [...left.made].reverse());
    assert.deepEqual(right.listed, [...right.made].reverse());
    assert.equal(left.made.filter((id) => right.made.includes(id)).length, 0);
    configure({ baseURL: server.url, accessToken: keys[1] });
    const err = await rejectionOf(runs.retrieve(left.made[0], ONE_TRY));
    assert.equal(err.constructor.name, "NotFoundError", describeError(err));
  });
});

describe("faults on the trigger route", () => {
  let server;
  let scenario;

  before(async () => {
    // Every key's first trigger gets a 500 before any run is made.
    scenario = writeScenarioFile(
      { version: 1, faults: [{ route: "trigger", times: 1, action: { type: "serverError" } }] },
      "trigger-500.json",
    );
    server = await startServer(["--scenario", scenario.path]);
  });

  after(async () => {
    await server?.stop();
    scenario?.cleanup();
  });

  it("the SDK retries a 500 with the same request key and one run is made", async () => {
    const key = freshKey("retry");
    configure({ baseURL: server.url, accessToken: key });
    const handle = await tasks.trigger("once", { n: 1 });
    const listed = await runs.list();
    assert.deepEqual(listed.data.map((r) => r.id), [handle.id]);
    const journal = await readJournal(server.url, { key });
    const triggers = journal.filter((r) => r.path === "/api/v1/tasks/once/trigger");
    assert.deepEqual(triggers.map((r) => r.status), [500, 200], JSON.stringify(journal));
    assert.ok(triggers[0].fault?.includes("serverError"), JSON.stringify(triggers[0]));
    assert.deepEqual(triggers[1].runIds, [handle.id]);
    const retrieves = journal.filter((r) => r.runId === handle.id);
    assert.equal(retrieves.length, 0, "no retrieve yet");
  });

  it("without retries the SDK throws InternalServerError", async () => {
    configure({ baseURL: server.url, accessToken: freshKey("no_retry") });
    const err = await rejectionOf(tasks.trigger("once", { n: 1 }, {}, ONE_TRY));
    assert.equal(err.constructor.name, "InternalServerError", describeError(err));
  });
});
