// Realtime for runs the application creates: tasks.trigger, runs.cancel,
// batch.trigger and the admin drive route, watched through the real SDK's
// runs.subscribeToRun, subscribeToRunsWithTag and subscribeToBatch.
//
// Every subscription has a deadline and every test asserts the number of
// yields: a hang is the failure mode. The clock is frozen at the wall clock
// and moved by the admin API; every test uses its own key.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { auth, batch, configure, runs, tasks } from "@trigger.dev/sdk";
import { collectRealtime as collect, moveClock, startServer, writeScenarioFile } from "./helpers.mjs";

const SCENARIO = {
  version: 1,
  description: "tasks for the realtime contract tests of triggered runs",
  tasks: [
    {
      id: "rt-timed",
      lifecycle: [{ status: "PENDING", for: "1m" }, { status: "EXECUTING", for: "1m" }, { status: "COMPLETED_SUCCESSFULLY" }],
      output: { done: true },
    },
    { id: "rt-waits", lifecycle: [{ status: "PENDING", for: "1m" }, { status: "EXECUTING" }] },
  ],
};

let server;
let scenario;
let keyCounter = 0;
function useFreshKey(label) {
  keyCounter += 1;
  const key = `tr_dev_rtt_${label}_${process.pid}_${keyCounter}`;
  configure({ baseURL: server.url, accessToken: key });
  return key;
}

async function drive(id, body) {
  const res = await fetch(`${server.url}/_mock/runs/${id}`, { method: "POST", body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.text());
}

describe("realtime of triggered runs through the SDK", () => {
  before(async () => {
    scenario = writeScenarioFile(SCENARIO, "realtime-tasks.json");
    server = await startServer(["--scenario", scenario.path, "--realtime-hold-ms", "1000"]);
  });
  after(async () => {
    await server?.stop();
    scenario?.cleanup();
  });

  it("subscribeToRun on a triggered run yields QUEUED, EXECUTING, COMPLETED as the clock moves, and ends", async () => {
    await moveClock(server.url, { set: new Date().toISOString() });
    useFreshKey("timed");
    const handle = await tasks.trigger("rt-timed", { a: 1 }, { tags: ["t1"] });
    const { yields, ended } = await collect((signal) => runs.subscribeToRun(handle.id, { signal }), {
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
    assert.equal(queued.id, handle.id);
    assert.equal(queued.taskIdentifier, "rt-timed");
    assert.deepEqual(queued.payload, { a: 1 });
    assert.deepEqual(queued.tags, ["t1"]);
    assert.ok(executing.startedAt instanceof Date);
    assert.deepEqual(done.output, { done: true });
    assert.equal(done.finishedAt.getTime() - executing.startedAt.getTime(), 60_000);
    // Realtime and retrieve show one model.
    const retrieved = await runs.retrieve(handle.id);
    assert.equal(retrieved.status, "COMPLETED");
    assert.equal(retrieved.finishedAt.getTime(), done.finishedAt.getTime());
  });

  it("runs.cancel on a triggered run ends the subscription with CANCELED", async () => {
    await moveClock(server.url, { set: new Date().toISOString() });
    useFreshKey("cancel");
    const handle = await tasks.trigger("rt-waits", {});
    const { yields, ended } = await collect((signal) => runs.subscribeToRun(handle.id, { signal }), {
      onYield: async (_run, n) => {
        if (n === 1) await runs.cancel(handle.id);
      },
    });
    assert.deepEqual(
      yields.map((r) => r.status),
      ["QUEUED", "CANCELED"],
    );
    assert.equal(ended, true);
    assert.equal(yields[1].isCancelled, true);
  });

  it("a run the admin drive route moves to FAILED ends the subscription", async () => {
    await moveClock(server.url, { set: new Date().toISOString() });
    useFreshKey("drive");
    const handle = await tasks.trigger("rt-waits", {});
    const { yields, ended } = await collect((signal) => runs.subscribeToRun(handle.id, { signal }), {
      onYield: async (_run, n) => {
        if (n === 1) await moveClock(server.url, { advance: "1m" });
        if (n === 2) await drive(handle.id, { status: "COMPLETED_WITH_ERRORS", error: { message: "boom" } });
      },
    });
    assert.deepEqual(
      yields.map((r) => r.status),
      ["QUEUED", "EXECUTING", "FAILED"],
    );
    assert.equal(ended, true);
    assert.equal(yields[2].isFailed, true);
    assert.equal(yields[2].error?.message, "boom");
  });

  it("subscribeToRunsWithTag yields the triggered runs with that tag", async () => {
    await moveClock(server.url, { set: new Date().toISOString() });
    useFreshKey("tags");
    const a = await tasks.trigger("rt-waits", {}, { tags: ["rt-tag", "x"] });
    const b = await tasks.trigger("rt-timed", {}, { tags: ["rt-tag"] });
    await tasks.trigger("rt-waits", {}, { tags: ["x"] });
    const { yields } = await collect((signal) => runs.subscribeToRunsWithTag("rt-tag", {}, { signal }), {
      limitMs: 1500,
    });
    assert.deepEqual(yields.map((r) => r.id).sort(), [a.id, b.id].sort());
    const both = await collect((signal) => runs.subscribeToRunsWithTag(["rt-tag", "x"], {}, { signal }), {
      limitMs: 1500,
    });
    assert.deepEqual(
      both.yields.map((r) => r.id),
      [a.id],
    );
  });

  it("subscribeToBatch yields the runs of a batch.trigger", async () => {
    await moveClock(server.url, { set: new Date().toISOString() });
    useFreshKey("batch");
    const handle = await batch.trigger([
      { id: "rt-waits", payload: { n: 1 } },
      { id: "rt-waits", payload: { n: 2 } },
      { id: "rt-timed", payload: { n: 3 } },
    ]);
    const { yields } = await collect((signal) => runs.subscribeToBatch(handle.batchId, { signal }), { limitMs: 1500 });
    assert.equal(yields.length, 3);
    assert.deepEqual(
      yields.map((r) => r.payload.n).sort(),
      [1, 2, 3],
    );
    assert.ok(yields.every((r) => r.status === "QUEUED"));
    const retrieved = await batch.retrieve(handle.batchId);
    assert.equal(retrieved.runCount, 3);
  });

  it("handle.publicAccessToken subscribes to its own run, and gets nothing of another", async () => {
    await moveClock(server.url, { set: new Date().toISOString() });
    useFreshKey("token");
    const mine = await tasks.trigger("rt-timed", {});
    const other = await tasks.trigger("rt-timed", {});
    assert.ok(mine.publicAccessToken);
    const own = await auth.withAuth({ baseURL: server.url, accessToken: mine.publicAccessToken }, () =>
      collect((signal) => runs.subscribeToRun(mine.id, { signal }), {
        onYield: async (run) => {
          if (!run.isCompleted) await moveClock(server.url, { advance: "1m" });
        },
      }),
    );
    assert.deepEqual(
      own.yields.map((r) => r.status),
      ["QUEUED", "EXECUTING", "COMPLETED"],
    );
    assert.equal(own.ended, true);
    const denied = await auth.withAuth({ baseURL: server.url, accessToken: mine.publicAccessToken }, () =>
      collect((signal) => runs.subscribeToRun(other.id, { signal }), { limitMs: 1500 }),
    );
    assert.equal(denied.yields.length, 0);
    assert.equal(denied.ended, false, "the SDK hangs on a 4xx until aborted");
  });
});
