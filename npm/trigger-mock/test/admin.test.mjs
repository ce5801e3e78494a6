// The admin client: its routes are the OpenAPI document's, and every method
// works against a real server.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { ROUTES, TriggerMockAdminError, createAdminClient, startTriggerMock } from "../index.js";
import { binary, REPO_ROOT } from "./helpers.mjs";

const doc = JSON.parse(readFileSync(path.join(REPO_ROOT, "schemas", "admin.openapi.json"), "utf8"));
const KEY = "tr_dev_admin_tests";
let mock;
before(async () => {
  mock = await startTriggerMock({ binaryPath: binary(), clock: "2026-01-01T00:00:00Z", secretKeys: [KEY], notFoundRetry: false });
});
after(() => mock?.stop());

test("ROUTES are exactly the operations of schemas/admin.openapi.json", () => {
  const documented = {};
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === "parameters") continue;
      const query = (op.parameters ?? []).filter((q) => q.in === "query").map((q) => q.name);
      documented[op.operationId] = {
        method: method.toUpperCase(),
        path: p,
        ...(query.length ? { query } : {}),
        ...(op.requestBody ? { body: true } : {}),
      };
    }
  }
  assert.deepEqual({ ...ROUTES }, documented);
});

test("every client method against a real server", async () => {
  const { admin, env, url } = mock;
  assert.deepEqual(env, { TRIGGER_API_URL: url, TRIGGER_SECRET_KEY: KEY });
  const health = await admin.health();
  assert.equal(health.status, "ok");
  assert.equal(health.now, "2026-01-01T00:00:00.000Z");
  assert.ok(Number.isInteger(health.listenBacklog) && health.listenBacklog > 0, String(health.listenBacklog));
  assert.equal(health.memory.journalBudget, 8 << 20);
  assert.equal(health.memory.keyStateBudget, 32 << 20);
  assert.equal((await admin.openApi()).openapi, "3.1.0");

  assert.deepEqual(await admin.clock(), { now: "2026-01-01T00:00:00.000Z", nowMs: 1767225600000, frozen: true });
  assert.equal((await admin.advanceClock("10m")).now, "2026-01-01T00:10:00.000Z");
  assert.equal((await admin.advanceClock(1500)).nowMs, 1767226201500);
  assert.equal((await admin.setClock(new Date("2026-02-01T00:00:00Z"))).now, "2026-02-01T00:00:00.000Z");
  assert.equal((await admin.setClock("2026-03-01T00:00:00Z")).now, "2026-03-01T00:00:00.000Z");
  assert.equal((await admin.freezeClock(false)).frozen, false);
  assert.equal((await admin.freezeClock()).frozen, true);
  assert.equal((await admin.changeClock({ set: "2025-12-31T23:59:59.999Z", advanceMs: 1 })).nowMs, 1767225600000);
  // Forward only, and a refused change changes nothing.
  const back = await admin.changeClock({ freeze: false, advanceMs: -1 }).catch((e) => e);
  assert.equal(back.status, 400);
  assert.match(back.serverMessage, /forward only/);
  assert.deepEqual(await admin.clock(), { now: "2026-01-01T00:00:00.000Z", nowMs: 1767225600000, frozen: true });
  const beyond = await admin.setClock("9999-01-01T00:00:00Z").catch((e) => e);
  assert.equal(beyond.status, 400);
  assert.match(beyond.serverMessage, /9998-12-31T23:59:59\.999Z/);

  // The journal, filtered.
  assert.deepEqual(await admin.clearJournal(), { cleared: true });
  for (const id of ["run_completed", "run_failed", "run_completed"]) {
    const res = await fetch(`${url}/api/v3/runs/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 200);
  }
  const all = await admin.journal();
  assert.equal(all.enabled, true);
  assert.deepEqual(all.records.map((r) => r.runId), ["run_completed", "run_failed", "run_completed"]);
  assert.deepEqual((await admin.records({ runId: "run_completed" })).length, 2);
  assert.deepEqual((await admin.records({ key: KEY, limit: 1 })).map((r) => r.runId), ["run_completed"]);
  assert.deepEqual(await admin.records({ key: "tr_dev_someone_else" }), []);
  // Records hold the key's first 16 characters only.
  assert.deepEqual(all.records.map((r) => r.key), Array(3).fill(KEY.slice(0, 16)));
  // Paging with the cursor.
  const first = await admin.journal({ after: 0, limit: 2 });
  assert.deepEqual(first.records.map((r) => r.runId), ["run_completed", "run_failed"]);
  assert.equal(first.next, first.records[1].seq);
  const second = await admin.journal({ after: first.next, limit: 2 });
  assert.deepEqual([second.records.length, second.next], [1, undefined]);
  assert.deepEqual(await admin.allRecords({ limit: 1 }), all.records);
  assert.deepEqual(await admin.allRecords({ runId: "run_failed", after: 0 }), [all.records[1]]);
  const notANumber = await admin.records({ limit: "ten" }).catch((e) => e);
  assert.equal(notANumber.status, 400);

  // Scenarios: load, list, refuse an invalid one with its problems, unload.
  const loaded = await admin.putScenario("one run", { version: 1, runs: [{ id: "run_loaded", status: "EXECUTING" }] });
  assert.equal(loaded.loaded.length, 1);
  const listed = await admin.scenarios();
  assert.deepEqual(listed.sources, ["one run"]);
  assert.deepEqual(listed.runs, ["run_loaded"]);
  const res = await fetch(`${url}/api/v3/runs/run_loaded`, { headers: { authorization: `Bearer ${KEY}`, "x-trigger-api-version": "2025-07-16" } });
  assert.equal((await res.json()).status, "EXECUTING");
  const invalid = await admin.putScenario("bad", '{"version": 1, "runz": []}').catch((e) => e);
  assert.ok(invalid instanceof TriggerMockAdminError, String(invalid));
  assert.equal(invalid.status, 422);
  assert.equal(invalid.serverMessage, "the scenario is invalid; the previous scenarios keep serving");
  assert.match(invalid.problems[0], /^bad:1:16: runz: unknown field/);
  assert.match(invalid.message, /bad:1:16: /);
  assert.deepEqual(await admin.deleteScenario("one run"), { loaded: [] });
  const long = await admin.putScenario("n".repeat(129), { version: 1 }).catch((e) => e);
  assert.equal(long.status, 400);
  assert.match(long.serverMessage, /at most 128 characters/);
  const missing = await admin.deleteScenario("one run").catch((e) => e);
  assert.equal(missing.status, 404);
  assert.equal(missing.serverMessage, "no scenario named one run");

  // The dashboard's views: environments by handle, their runs, one run.
  const envs = await admin.environments();
  const mine = envs.environments.find((e) => e.key === KEY.slice(0, 16));
  assert.ok(mine, JSON.stringify(envs));
  const listing = await admin.runs(mine.env, { status: "COMPLETED_SUCCESSFULLY" });
  assert.ok(listing.runs.some((r) => r.id === "run_completed") && listing.runs.every((r) => r.status === "COMPLETED_SUCCESSFULLY"));
  const one = await admin.run("run_completed", mine.env);
  assert.equal(one.bodies["2025-07-16"].status, "COMPLETED");
  assert.equal(one.requests.length, 2);
  // A triggered run, driven to its outcome.
  const made = await fetch(`${url}/api/v1/tasks/driven/trigger`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ payload: "{}", options: { payloadType: "application/json" } }),
  });
  const { id } = await made.json();
  const driven = await admin.driveRun(id, { status: "COMPLETED_SUCCESSFULLY", output: { ok: true } });
  assert.deepEqual([driven.id, driven.status, driven.output], [id, "COMPLETED", { ok: true }]);
  const again = await admin.driveRun(id, { status: "CANCELED" }).catch((e) => e);
  assert.equal(again.status, 409);

  assert.deepEqual(await admin.reset(KEY), { reset: KEY });
  assert.deepEqual(await admin.reset(), { reset: "all" });
  assert.equal((await admin.call("getHealth")).status, "ok");
  await assert.rejects(admin.call("noSuchOperation"), TypeError);
  await assert.rejects(admin.putScenario("", { version: 1 }), /name is required/);
});

test("errors carry the server's message", async () => {
  const err = await mock.admin.advanceClock("soon").catch((e) => e);
  assert.ok(err instanceof TriggerMockAdminError);
  assert.equal(err.status, 400);
  assert.equal(err.serverMessage, "`soon` is not a duration such as 10m");
  assert.match(err.message, /POST \/_mock\/clock answered 400: `soon` is not a duration/);
  const unreachable = createAdminClient("http://127.0.0.1:1");
  await assert.rejects(unreachable.health());
});

test("with --admin-token the client sends it, and a client without it is told why", async () => {
  const locked = await startTriggerMock({ binaryPath: binary(), adminToken: "s3cret" });
  try {
    assert.equal((await locked.admin.health()).status, "ok");
    const err = await createAdminClient(locked.url).health().catch((e) => e);
    assert.equal(err.status, 401);
    assert.match(err.serverMessage, /Authorization: Bearer/);
  } finally {
    await locked.stop();
  }
});
