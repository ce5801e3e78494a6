// Fault injection (builtin:flaky-run, builtin:faults and a scenario file of
// our own) as the real @trigger.dev/sdk experiences it: which faults it
// retries, how long it waits (contract.md §4.3) and which error it throws
// (§4.4). The server's journal is the record of what reached it.
//
// Fault counters are per API key, so every test uses its own key. Every call
// that meets an error passes a `retry` override, so no test sits through the
// SDK's default 1 s / 1.6 s / … backoff.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InternalServerError, RateLimitError, configure, runs } from "@trigger.dev/sdk";
import {
  describeError,
  fetchRun,
  readJournal,
  rejectionOf,
  startServer,
  wallGaps,
  writeScenarioFile,
} from "./helpers.mjs";

let keyCounter = 0;
function freshKey(label) {
  keyCounter += 1;
  return `tr_dev_flt_${label}_${process.pid}_${keyCounter}`;
}

/** Our own scenario: one 429 with x-ratelimit-reset = now + 300 ms, then the completed run. */
const RATE_LIMIT_ONCE = {
  version: 1,
  description: "run_rl_once: the first retrieve gets a 429 (reset in 300 ms), then the completed run",
  runs: [{ id: "run_rl_once", status: "COMPLETED_SUCCESSFULLY", output: { ok: true } }],
  faults: [{ runId: "run_rl_once", route: "retrieve", nth: 1, action: { type: "rateLimit", resetMs: 300 } }],
};

function assertSchemaValidationError(err) {
  // ApiSchemaValidationError is not exported by @trigger.dev/sdk; check the class name and the message.
  assert.equal(err?.constructor?.name, "ApiSchemaValidationError", describeError(err));
  assert.equal(err.name, "TriggerApiError");
  assert.equal(err.status, 200);
  assert.ok(err.message.startsWith("200 Validation error"), `message: ${err.message}`);
}

describe("fault scenarios through the SDK", () => {
  let server;
  let scenarioFile;

  before(async () => {
    scenarioFile = writeScenarioFile(RATE_LIMIT_ONCE, "rate-limit-once.json");
    server = await startServer([
      "--scenario",
      "builtin:flaky-run",
      "--scenario",
      "builtin:faults",
      "--scenario",
      scenarioFile.path,
    ]);
  });

  after(async () => {
    await server?.stop();
    scenarioFile?.cleanup();
  });

  describe("retried faults", () => {
    it("flaky-run: the SDK retries through two 500s and resolves COMPLETED (gaps 100 ms, 150 ms)", async () => {
      const key = freshKey("flaky");
      configure({ baseURL: server.url, accessToken: key });
      const run = await runs.retrieve("run_flaky", { retry: { maxAttempts: 5, minTimeoutInMs: 100, factor: 1.5 } });
      assert.equal(run.id, "run_flaky");
      assert.equal(run.status, "COMPLETED");
      assert.equal(run.isSuccess, true);

      const records = await readJournal(server.url, { key });
      assert.deepEqual(
        records.map((r) => [r.method, r.runId, r.status]),
        [
          ["GET", "run_flaky", 500],
          ["GET", "run_flaky", 500],
          ["GET", "run_flaky", 200],
        ],
        `journal: ${JSON.stringify(records)}`,
      );
      assert.ok(records[0].fault && records[1].fault, "the two 500s are marked as faults");
      assert.ok(!records[2].fault, "the third request is the real answer");
      // Delay before retry n = min * factor^(n-1): 100 ms, then 150 ms (contract.md §4.3, randomize false).
      const [g1, g2] = wallGaps(records);
      assert.ok(g1 >= 95, `first retry after ${g1} ms, expected ≥ 100`);
      assert.ok(g2 >= 145, `second retry after ${g2} ms, expected ≥ 150`);
      assert.ok(g1 < 3_000 && g2 < 3_000, `gaps ${g1} / ${g2} ms are far too long`);
    });

    it("flaky-run: the 500 body is the API's, and with maxAttempts 1 the SDK throws InternalServerError", async () => {
      const key = freshKey("flaky_once");
      const plain = await fetchRun(server.url, "run_flaky", { key });
      assert.equal(plain.status, 500);
      assert.deepEqual(plain.body, { error: "Internal Server Error" });

      configure({ baseURL: server.url, accessToken: key });
      const err = await rejectionOf(runs.retrieve("run_flaky", { retry: { maxAttempts: 1 } }));
      assert.ok(err instanceof InternalServerError, describeError(err));
      assert.equal(err.status, 500);
      assert.equal(err.message, "Internal Server Error");
      // Both faults are used up for this key; the next retrieve succeeds.
      const run = await runs.retrieve("run_flaky", { retry: { maxAttempts: 1 } });
      assert.equal(run.status, "COMPLETED");
    });

    it("a 429 with x-ratelimit-reset: the SDK waits until the reset, retries and resolves", async () => {
      const key = freshKey("rl_once");
      configure({ baseURL: server.url, accessToken: key });
      const run = await runs.retrieve("run_rl_once", { retry: { maxAttempts: 3, minTimeoutInMs: 50 } });
      assert.equal(run.id, "run_rl_once");
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { ok: true });

      const records = await readJournal(server.url, { key });
      assert.deepEqual(records.map((r) => r.status), [429, 200], `journal: ${JSON.stringify(records)}`);
      // contract.md §4.3: the delay is reset − now + random(0–1000) ms, reset being now + 300 ms at the server.
      // A retry on the 50 ms backoff instead would show a gap of ~50 ms.
      const [gap] = wallGaps(records);
      assert.ok(gap >= 250, `the SDK retried after ${gap} ms; x-ratelimit-reset said 300 ms`);
      assert.ok(gap < 3_000, `the SDK retried after ${gap} ms (expected ≤ ~1300)`);
    });

    it("the rateLimit fault's 429 carries x-ratelimit-limit/-remaining/-reset (epoch ms, ~300 ms ahead)", async () => {
      const key = freshKey("rl_headers");
      const startMs = Date.now();
      const res = await fetchRun(server.url, "run_fault_rate_limit", { key, apiVersion: "2025-07-16" });
      const afterMs = Date.now();
      assert.equal(res.status, 429);
      assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
      assert.equal(res.headers.get("x-ratelimit-limit"), "750");
      assert.equal(res.headers.get("x-ratelimit-remaining"), "0");
      const reset = res.headers.get("x-ratelimit-reset");
      assert.match(reset ?? "", /^\d{13}$/, `x-ratelimit-reset should be unix epoch ms, got ${reset}`);
      const resetMs = Number(reset);
      assert.ok(resetMs > startMs, `x-ratelimit-reset ${resetMs} is not in the future (now ${startMs})`);
      assert.ok(resetMs <= afterMs + 1_000, `x-ratelimit-reset ${resetMs} is more than ~300 ms ahead (now ${afterMs})`);
      assert.equal(res.headers.get("retry-after"), null, "the real server sends no Retry-After (contract.md §3.2)");
      assert.equal(res.body?.title, "Rate Limit Exceeded");
      assert.equal(res.body?.status, 429);
      assert.equal(res.body?.limit, 750);
      assert.equal(res.body?.reset, resetMs);
      assert.equal(typeof res.body?.error, "string");
    });

    it("with maxAttempts 1 the rateLimit fault becomes a RateLimitError", async () => {
      const key = freshKey("rl_err");
      configure({ baseURL: server.url, accessToken: key });
      const err = await rejectionOf(runs.retrieve("run_fault_rate_limit", { retry: { maxAttempts: 1 } }));
      assert.ok(err instanceof RateLimitError, describeError(err));
      assert.equal(err.status, 429);
      assert.match(err.message, /^Rate limit exceeded/);
      assert.equal(typeof err.millisecondsUntilReset, "number", "the SDK can read x-ratelimit-reset");
      assert.equal((await readJournal(server.url, { key })).length, 1);
    });
  });

  describe("bodies that break the schema are never retried", () => {
    for (const [runId, kind] of [
      ["run_fault_break_schema", "a 200 with an unknown status"],
      ["run_fault_truncate", "a JSON body cut in half"],
      ["run_fault_malformed", "a body that is not JSON"],
    ]) {
      it(`${runId} (${kind}) -> ApiSchemaValidationError after exactly one request`, async () => {
        const key = freshKey(runId.replace("run_fault_", ""));
        configure({ baseURL: server.url, accessToken: key });
        // Retries are allowed here, so a wrongly retried validation error would show as a second request.
        const err = await rejectionOf(runs.retrieve(runId, { retry: { maxAttempts: 3, minTimeoutInMs: 50 } }));
        assertSchemaValidationError(err);
        if (runId === "run_fault_break_schema") {
          assert.match(err.message, /at "status"/, "the issue is the status field");
        } else {
          // contract.md §4.4: a non-JSON 200 body.
          assert.equal(err.message, "200 Validation error: Invalid input: expected object, received undefined");
        }
        const records = await readJournal(server.url, { key });
        assert.equal(records.length, 1, `journal: ${JSON.stringify(records)}`);
        assert.equal(records[0].status, 200);
        assert.equal(records[0].runId, runId);
        assert.ok(records[0].fault, "the request is marked as a fault");
      });
    }
  });

  describe("broken connections", () => {
    it("run_fault_reset: every attempt is reset -> ApiConnectionError, journal shows status 0 twice", async () => {
      const key = freshKey("reset");
      configure({ baseURL: server.url, accessToken: key });
      const err = await rejectionOf(runs.retrieve("run_fault_reset", { retry: { maxAttempts: 2, minTimeoutInMs: 50 } }));
      // ApiConnectionError is not exported by @trigger.dev/sdk; check the class name.
      assert.equal(err?.constructor?.name, "ApiConnectionError", describeError(err));
      assert.equal(err.name, "TriggerApiError");
      assert.equal(err.status, undefined);
      assert.equal(err.message, "Connection error.");
      assert.ok(err.cause, "the original fetch error is the cause");
      const records = await readJournal(server.url, { key });
      assert.deepEqual(records.map((r) => r.status), [0, 0], `journal: ${JSON.stringify(records)}`);
      assert.ok(records.every((r) => r.runId === "run_fault_reset" && r.fault));
    });

    it("run_fault_close_mid_body: the SDK rejects", async () => {
      const key = freshKey("close_mid");
      configure({ baseURL: server.url, accessToken: key });
      const err = await rejectionOf(
        runs.retrieve("run_fault_close_mid_body", { retry: { maxAttempts: 2, minTimeoutInMs: 50 } }),
      );
      // Observed with SDK 4.8.3 / Node 20: ApiConnectionError "Connection error.", cause "fetch failed"
      // (undici UND_ERR_SOCKET "other side closed"), after both attempts: reading the body fails
      // inside the SDK's fetch try-block, so it is retried like a network failure. A parse error
      // (ApiSchemaValidationError) would also be an acceptable outcome for a cut-off body.
      assert.ok(
        ["ApiConnectionError", "ApiSchemaValidationError"].includes(err?.constructor?.name),
        `expected a connection or parse error, got ${describeError(err)}`,
      );
      const records = await readJournal(server.url, { key });
      assert.ok(records.length >= 1 && records.length <= 2, `journal: ${JSON.stringify(records)}`);
      assert.ok(records.every((r) => r.runId === "run_fault_close_mid_body" && r.fault));
    });

    it("run_fault_dribble and run_fault_latency still give the run", async () => {
      const key = freshKey("slow");
      configure({ baseURL: server.url, accessToken: key });
      const started = performance.now();
      const slow = await runs.retrieve("run_fault_latency", { retry: { maxAttempts: 1 } });
      const elapsed = performance.now() - started;
      assert.equal(slow.status, "COMPLETED");
      assert.ok(elapsed >= 290, `run_fault_latency answered in ${elapsed.toFixed(0)} ms; the fault delays 300 ms`);
      const dribbled = await runs.retrieve("run_fault_dribble", { retry: { maxAttempts: 1 } });
      assert.equal(dribbled.status, "COMPLETED");
      assert.equal(dribbled.id, "run_fault_dribble");
    });
  });
});

describe("a rateLimit fault under an active token bucket (--rate-limit)", () => {
  let server;
  let scenarioFile;

  before(async () => {
    scenarioFile = writeScenarioFile(
      {
        version: 1,
        description: "run_rl_bucket: the first retrieve gets a 429 with the fault's values (reset in 700 ms)",
        runs: [{ id: "run_rl_bucket", status: "COMPLETED_SUCCESSFULLY", output: { ok: true } }],
        faults: [
          { runId: "run_rl_bucket", nth: 1, action: { type: "rateLimit", limit: 5, remaining: 0, resetMs: 700 } },
        ],
      },
      "rate-limit-bucket.json",
    );
    server = await startServer(["--rate-limit", "--scenario", scenarioFile.path]);
  });

  after(async () => {
    await server?.stop();
    scenarioFile?.cleanup();
  });

  it("the SDK waits for the fault's reset (700 ms), not the bucket's refill (10 s)", async () => {
    const key = freshKey("rl_bucket");
    configure({ baseURL: server.url, accessToken: key });
    const run = await runs.retrieve("run_rl_bucket", { retry: { maxAttempts: 3, minTimeoutInMs: 50 } });
    assert.equal(run.status, "COMPLETED");
    const records = await readJournal(server.url, { key });
    assert.deepEqual(records.map((r) => r.status), [429, 200], `journal: ${JSON.stringify(records)}`);
    // contract.md §4.3: the delay is reset − now + random(0–1000) ms.
    const [gap] = wallGaps(records);
    assert.ok(gap >= 600, `the SDK retried after ${gap} ms; the fault said 700 ms`);
    assert.ok(gap < 2_500, `the SDK retried after ${gap} ms: it followed the bucket's reset, not the fault's`);
  });

  it("headers and body carry the fault's values", async () => {
    const key = freshKey("rl_bucket_headers");
    const res = await fetchRun(server.url, "run_rl_bucket", { key });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("x-ratelimit-limit"), "5");
    assert.equal(res.headers.get("x-ratelimit-remaining"), "0");
    assert.equal(res.body?.limit, 5);
    assert.equal(res.body?.remaining, 0);
    assert.equal(res.body?.reset, Number(res.headers.get("x-ratelimit-reset")));
  });
});
