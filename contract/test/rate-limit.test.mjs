// builtin:rate-limited: a token bucket of 5 per API key (5 more every 10 s)
// with the real server's headers and 429 body (contract.md §3.2). Checked
// with plain fetch (headers, body) and with the SDK (RateLimitError).
//
// Each test uses its own key, so each starts with a full bucket.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { RateLimitError, configure, runs } from "@trigger.dev/sdk";
import { describeError, fetchRun, readJournal, rejectionOf, startServer } from "./helpers.mjs";

const BUCKET = 5;

let keyCounter = 0;
function freshKey(label) {
  keyCounter += 1;
  return `tr_dev_rl_${label}_${process.pid}_${keyCounter}`;
}

/** The three x-ratelimit-* headers, checked and parsed. */
function rateLimitHeaders(res, where) {
  const limit = res.headers.get("x-ratelimit-limit");
  const remaining = res.headers.get("x-ratelimit-remaining");
  const reset = res.headers.get("x-ratelimit-reset");
  assert.match(limit ?? "", /^\d+$/, `${where}: x-ratelimit-limit = ${limit}`);
  assert.match(remaining ?? "", /^\d+$/, `${where}: x-ratelimit-remaining = ${remaining} (clamped ≥ 0)`);
  assert.match(reset ?? "", /^\d{13}$/, `${where}: x-ratelimit-reset = ${reset} should be unix epoch ms`);
  return { limit: Number(limit), remaining: Number(remaining), reset: Number(reset) };
}

describe("builtin:rate-limited", () => {
  let server;

  before(async () => {
    server = await startServer(["--scenario", "builtin:rate-limited"]);
  });

  after(async () => {
    await server?.stop();
  });

  it("every response has x-ratelimit-*; the 6th request of a key is the real 429", async () => {
    const key = freshKey("plain");
    for (let i = 1; i <= BUCKET; i++) {
      const now = Date.now();
      const res = await fetchRun(server.url, "run_completed", { key, apiVersion: "2025-07-16" });
      assert.equal(res.status, 200, `request ${i}: ${res.text.slice(0, 300)}`);
      const h = rateLimitHeaders(res, `request ${i}`);
      assert.equal(h.limit, BUCKET, `request ${i}: limit`);
      assert.equal(h.remaining, BUCKET - i, `request ${i}: remaining`);
      assert.ok(h.reset > now, `request ${i}: reset ${h.reset} should be in the future (now ${now})`);
      assert.ok(h.reset <= now + 60_000, `request ${i}: reset ${h.reset} is too far ahead (now ${now})`);
      assert.equal(res.body?.id, "run_completed");
    }

    const now = Date.now();
    const res = await fetchRun(server.url, "run_completed", { key, apiVersion: "2025-07-16" });
    assert.equal(res.status, 429, `6th request: ${res.text.slice(0, 300)}`);
    assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
    assert.equal(res.headers.get("retry-after"), null, "the real server sends no Retry-After (contract.md §3.2)");
    const h = rateLimitHeaders(res, "the 429");
    assert.equal(h.limit, BUCKET);
    assert.equal(h.remaining, 0);
    assert.ok(h.reset > now, `the 429's reset ${h.reset} should be in the future (now ${now})`);

    const body = res.body;
    assert.ok(body, `the 429 body is JSON: ${res.text.slice(0, 300)}`);
    assert.equal(body.title, "Rate Limit Exceeded");
    assert.equal(body.status, 429);
    assert.equal(body.type, "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/429");
    assert.equal(body.limit, BUCKET);
    assert.equal(typeof body.remaining, "number");
    assert.ok(body.remaining <= 0, `remaining ${body.remaining} (may be negative)`);
    assert.equal(typeof body.reset, "number");
    assert.equal(body.reset, h.reset, "body reset = x-ratelimit-reset");
    assert.equal(typeof body.secondsUntilReset, "number");
    assert.ok(body.secondsUntilReset > 0, `secondsUntilReset ${body.secondsUntilReset}`);
    assert.equal(typeof body.detail, "string");
    assert.match(body.detail, /^Rate limit exceeded /);
    assert.equal(body.error, body.detail, "error repeats detail");

    const records = await readJournal(server.url, { key });
    assert.deepEqual(records.map((r) => r.status), [200, 200, 200, 200, 200, 429]);
  });

  it("another key has its own bucket", async () => {
    const limited = freshKey("limited");
    const other = freshKey("other");
    for (let i = 0; i <= BUCKET; i++) await fetchRun(server.url, "run_completed", { key: limited });
    assert.equal((await fetchRun(server.url, "run_completed", { key: limited })).status, 429, "the first key is limited");

    const res = await fetchRun(server.url, "run_completed", { key: other });
    assert.equal(res.status, 200, "a different key is not limited");
    const h = rateLimitHeaders(res, "other key");
    assert.equal(h.remaining, BUCKET - 1, "the other key's bucket was full");
  });

  it("error responses carry the x-ratelimit-* headers too", async () => {
    const key = freshKey("errors");
    // A malformed run id -> 400; it still passes through the rate limiter (and counts).
    const bad = await fetchRun(server.url, "not_a_run_id", { key });
    assert.equal(bad.status, 400, bad.text.slice(0, 300));
    const h = rateLimitHeaders(bad, "the 400");
    assert.equal(h.limit, BUCKET);
    assert.equal(h.remaining, BUCKET - 1);
  });

  it("through the SDK (maxAttempts 1) the 429 is a RateLimitError", async () => {
    const key = freshKey("sdk");
    configure({ baseURL: server.url, accessToken: key });
    for (let i = 1; i <= BUCKET; i++) {
      const run = await runs.retrieve("run_completed", { retry: { maxAttempts: 1 } });
      assert.equal(run.status, "COMPLETED", `call ${i}`);
    }
    const err = await rejectionOf(runs.retrieve("run_completed", { retry: { maxAttempts: 1 } }));
    assert.ok(err instanceof RateLimitError, describeError(err));
    assert.equal(err.status, 429);
    assert.equal(err.body?.title, "Rate Limit Exceeded");
    assert.equal(err.message, err.body?.error, "the message is the body's error string");
    assert.equal(typeof err.millisecondsUntilReset, "number", "the SDK can read x-ratelimit-reset");
    assert.equal((await readJournal(server.url, { key })).length, BUCKET + 1, "no retry with maxAttempts 1");
  });
});
