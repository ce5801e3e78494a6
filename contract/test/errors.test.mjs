// Error responses as the real @trigger.dev/sdk sees them.
//
// configure() is global, so every test sets the configuration it needs
// before its calls; node:test runs the tests of a file one after another.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  configure,
  runs,
} from "@trigger.dev/sdk";
import { describeError, rejectionOf, startCountingProxy, startServer } from "./helpers.mjs";

const GOOD_KEY = "tr_dev_contract_0123456789";
const ONE_TRY = { retry: { maxAttempts: 1 } };

function assertApiError(err, Class, status, message) {
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${describeError(err)}`);
  assert.equal(err.constructor.name, Class.name);
  assert.equal(err.status, status, `status of ${describeError(err)}`);
  if (message !== undefined) assert.equal(err.message, message, `message of ${describeError(err)}`);
}

describe("default server", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it("a key that is not a Trigger.dev key -> AuthenticationError 401 'Invalid API key'", async () => {
    configure({ baseURL: server.url, accessToken: "not_a_key" });
    const err = await rejectionOf(runs.retrieve("run_completed", ONE_TRY));
    assertApiError(err, AuthenticationError, 401, "Invalid API key");
  });

  it("a malformed run id -> BadRequestError 400 'Invalid or missing run ID'", async () => {
    configure({ baseURL: server.url, accessToken: GOOD_KEY });
    const err = await rejectionOf(runs.retrieve("not_a_run_id", ONE_TRY));
    assertApiError(err, BadRequestError, 400, "Invalid or missing run ID");
  });

  it("a public key (pk_…) gets the run without payload and output", async () => {
    // Sanity: with a secret key this run does carry an output.
    configure({ baseURL: server.url, accessToken: GOOD_KEY });
    const full = await runs.retrieve("run_completed", ONE_TRY);
    assert.notEqual(full.output, undefined, "run_completed has an output for a secret key");

    configure({ baseURL: server.url, accessToken: "pk_dev_0123456789" });
    const run = await runs.retrieve("run_completed", ONE_TRY);
    assert.equal(run.id, "run_completed");
    assert.equal(run.status, "COMPLETED");
    assert.equal(run.payload, undefined, "no payload for a public key");
    assert.equal(run.output, undefined, "no output for a public key");
  });
});

describe("server started with --no-generate", () => {
  let server;
  let proxy;
  before(async () => {
    server = await startServer(["--no-generate"]);
    proxy = await startCountingProxy(server.url);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  it("an unknown run -> NotFoundError 404 after exactly one request, no SDK retry", async () => {
    configure({ baseURL: proxy.url, accessToken: GOOD_KEY });
    proxy.reset();
    // No retry override: the server's --not-found-retry false must stop the SDK's default retries.
    const started = performance.now();
    const err = await rejectionOf(runs.retrieve("run_doesnotexist"));
    const elapsed = performance.now() - started;
    // contract.md §3.2: the real server answers an unknown run with {"error":"Not found"}.
    assertApiError(err, NotFoundError, 404, "Not found");
    assert.equal(proxy.requests.length, 1, "exactly one request reached the server");
    assert.equal(proxy.requests[0].url, "/api/v3/runs/run_doesnotexist");
    assert.ok(elapsed < 950, `the call took ${elapsed.toFixed(0)} ms (a retry would add ≥ 1000 ms)`);
    assert.notEqual(err.headers?.["x-should-retry"], "true", "x-should-retry must not be true");
  });
});

describe("server started with --secret-key tr_dev_allowed_1", () => {
  let server;
  before(async () => {
    server = await startServer(["--secret-key", "tr_dev_allowed_1"]);
  });
  after(async () => {
    await server?.stop();
  });

  it("rejects another well-formed secret key with AuthenticationError", async () => {
    configure({ baseURL: server.url, accessToken: "tr_dev_other" });
    const err = await rejectionOf(runs.retrieve("run_completed", ONE_TRY));
    assertApiError(err, AuthenticationError, 401, "Invalid API key");
  });

  it("accepts the configured key", async () => {
    configure({ baseURL: server.url, accessToken: "tr_dev_allowed_1" });
    const run = await runs.retrieve("run_completed", ONE_TRY);
    assert.equal(run.id, "run_completed");
    assert.equal(run.status, "COMPLETED");
  });
});

describe("server started with --reject-public-keys", () => {
  let server;
  before(async () => {
    server = await startServer(["--reject-public-keys"]);
  });
  after(async () => {
    await server?.stop();
  });

  it("a public key (pk_…) -> AuthenticationError 401", async () => {
    configure({ baseURL: server.url, accessToken: "pk_dev_0123456789" });
    const err = await rejectionOf(runs.retrieve("run_completed", ONE_TRY));
    // contract.md §3.2: the real server refuses pk_… keys with {"error":"Invalid API key"}.
    assertApiError(err, AuthenticationError, 401, "Invalid API key");
  });

  it("a secret key still works", async () => {
    configure({ baseURL: server.url, accessToken: GOOD_KEY });
    const run = await runs.retrieve("run_completed", ONE_TRY);
    assert.equal(run.status, "COMPLETED");
  });
});
