// Public access tokens with the real SDK: auth.createPublicToken and friends
// against the mock, then runs.retrieve through auth.withAuth with the token.
//
// The SDK signs tokens locally with the wall clock (iat, exp), so the mock's
// clock is set to the wall clock right after start; a test that expires a
// token moves it past the token's exp.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { AuthenticationError, PermissionDeniedError, auth, configure, runs, tasks } from "@trigger.dev/sdk";
import { describeError, moveClock, readJournal, rejectionOf, startServer } from "./helpers.mjs";

const KEY = "tr_dev_public_tokens_0123456789";
const OTHER_KEY = "tr_dev_someone_else_0123456789";
// An additional key (tr_<env>_sk_ + 24 letters and digits): the SDK asks the server to mint.
const ADDITIONAL_KEY = "tr_dev_sk_abcdefghijklmnopqrstuvwx";
const ONE_TRY = { retry: { maxAttempts: 1 } };
// Catalogue runs (fixtures/catalogue.json).
const COMPLETED = "run_demo_completed"; // task summarize-document
const FAILED = "run_demo_failed";
const TAGGED = "run_demo_queued"; // task resize-avatar, tags user_8f2k1x and avatar
const BATCH_ITEM = "run_demo_batch_item";
const BATCH = "batch_cm5q2w7e9r1t3y5u7i9o1p3a5";

function b64url(text) {
  return Buffer.from(text).toString("base64url");
}

/** A JWT signed HS256 with `key`, built by hand (no SDK). */
function signWith(key, payload) {
  const input = `${b64url(JSON.stringify({ alg: "HS256" }))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}

function decode(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
}

function asToken(token, fn) {
  return auth.withAuth({ baseURL: server.url, accessToken: token }, fn);
}

function assertDenied(err) {
  assert.ok(err instanceof PermissionDeniedError, `expected PermissionDeniedError, got ${describeError(err)}`);
  assert.equal(err.status, 403);
  assert.equal(err.message, "Unauthorized");
}

let server;

describe("public access tokens", () => {
  before(async () => {
    server = await startServer(["--no-generate"]);
    await moveClock(server.url, { set: new Date().toISOString() });
  });
  after(async () => {
    await server?.stop();
  });

  it("a token scoped to one run retrieves it, with the body a secret key sees, and is denied another", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const byKey = await runs.retrieve(COMPLETED, ONE_TRY);
    const token = await auth.createPublicToken({ scopes: { read: { runs: [COMPLETED] } } });
    const claims = decode(token);
    assert.equal(claims.pub, true);
    assert.match(claims.sub, /^env_[0-9a-z]{24}$/);
    assert.deepEqual(claims.scopes, [`read:runs:${COMPLETED}`]);

    const byToken = await asToken(token, () => runs.retrieve(COMPLETED, ONE_TRY));
    assert.deepEqual(byToken, byKey, "payload and output included");
    assert.notEqual(byToken.output, undefined);

    const err = await rejectionOf(asToken(token, () => runs.retrieve(FAILED, ONE_TRY)));
    assertDenied(err);
  });

  it("tokens scoped by task, tag and batch read the runs they cover, and only those", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const byTask = await auth.createPublicToken({ scopes: { read: { tasks: ["resize-avatar"] } } });
    const byTag = await auth.createPublicToken({ scopes: { read: { tags: ["avatar"] } } });
    const byBatch = await auth.createPublicToken({ scopes: { read: { batch: [BATCH] } } });
    for (const [token, readable] of [
      [byTask, TAGGED],
      [byTag, TAGGED],
      [byBatch, BATCH_ITEM],
    ]) {
      const run = await asToken(token, () => runs.retrieve(readable, ONE_TRY));
      assert.equal(run.id, readable);
      assertDenied(await rejectionOf(asToken(token, () => runs.retrieve(COMPLETED, ONE_TRY))));
    }
    const everything = await auth.createPublicToken({ scopes: { read: { runs: true } } });
    assert.equal((await asToken(everything, () => runs.retrieve(FAILED, ONE_TRY))).id, FAILED);
  });

  it("a token with no scopes and a trigger token can read nothing", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const none = await auth.createPublicToken();
    assert.equal(decode(none).scopes, undefined);
    assertDenied(await rejectionOf(asToken(none, () => runs.retrieve(COMPLETED, ONE_TRY))));
    const trigger = await auth.createTriggerPublicToken("summarize-document");
    assert.deepEqual(decode(trigger).scopes, ["trigger:tasks:summarize-document"]);
    assert.equal(decode(trigger).otu, true);
    assertDenied(await rejectionOf(asToken(trigger, () => runs.retrieve(COMPLETED, ONE_TRY))));
  });

  it("an additional key has the server mint the token, and it works the same", async () => {
    configure({ baseURL: server.url, accessToken: ADDITIONAL_KEY });
    const token = await auth.createPublicToken({ scopes: { read: { runs: [COMPLETED] } }, expirationTime: "1h" });
    const claims = decode(token);
    assert.equal(claims.exp - claims.iat, 3600);
    assert.equal((await asToken(token, () => runs.retrieve(COMPLETED, ONE_TRY))).id, COMPLETED);
    assertDenied(await rejectionOf(asToken(token, () => runs.retrieve(FAILED, ONE_TRY))));
  });

  it("a token signed with another key is refused", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const genuine = decode(await auth.createPublicToken({ scopes: { read: { runs: true } } }));
    const forged = signWith(OTHER_KEY, genuine);
    const err = await rejectionOf(asToken(forged, () => runs.retrieve(COMPLETED, ONE_TRY)));
    assert.ok(err instanceof AuthenticationError, describeError(err));
    assert.equal(err.message, "Public Access Token is invalid");
    // The other key's own token names its own environment and works.
    configure({ baseURL: server.url, accessToken: OTHER_KEY });
    const own = await auth.createPublicToken({ scopes: { read: { runs: true } } });
    assert.notEqual(decode(own).sub, genuine.sub);
    assert.equal((await asToken(own, () => runs.retrieve(COMPLETED, ONE_TRY))).id, COMPLETED);
  });

  it("a public token cannot mint tokens: the claims route takes secret keys only", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const token = await auth.createPublicToken({ scopes: { read: { runs: true } } });
    const err = await rejectionOf(asToken(token, () => auth.createPublicToken({ scopes: { read: { runs: true } } })));
    assert.ok(err instanceof AuthenticationError, describeError(err));
    assert.equal(err.message, "Invalid or Missing API key");
  });

  it("the journal shows a token's environment and scopes, never the token", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const token = await auth.createPublicToken({ scopes: { read: { runs: [COMPLETED] } } });
    await asToken(token, () => runs.retrieve(COMPLETED, ONE_TRY));
    const records = await readJournal(server.url, { key: KEY, runId: COMPLETED });
    const last = records.at(-1);
    assert.deepEqual(last.token, { environment: decode(token).sub, scopes: [`read:runs:${COMPLETED}`], valid: true });
    const all = JSON.stringify(await readJournal(server.url));
    assert.ok(!all.includes(token.split(".")[2]), "no token signature in the journal");
  });

  // Last: it moves the mock clock past every token's expiry.
  it("a trigger's handle.publicAccessToken (the server's x-trigger-jwt) retrieves its run, and only it", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const handle = await tasks.trigger("mailer", { to: "a@example.com" }, {}, ONE_TRY);
    const claims = decode(handle.publicAccessToken);
    // The server's token: the SDK's own fallback would not write input streams.
    assert.deepEqual(claims.scopes, [`read:runs:${handle.id}`, `write:inputStreams:${handle.id}`]);
    const run = await asToken(handle.publicAccessToken, () => runs.retrieve(handle.id, ONE_TRY));
    assert.equal(run.id, handle.id);
    assert.deepEqual(run.payload, { to: "a@example.com" });
    const other = await tasks.trigger("mailer", {}, {}, ONE_TRY);
    assertDenied(await rejectionOf(asToken(handle.publicAccessToken, () => runs.retrieve(other.id, ONE_TRY))));
  });

  it("a trigger token triggers its task once; a read token cannot cancel", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const token = await auth.createTriggerPublicToken("mailer");
    assert.equal(decode(token).otu, true);
    assertDenied(await rejectionOf(asToken(token, () => tasks.trigger("other-task", {}, {}, ONE_TRY))));
    const first = await asToken(token, () => tasks.trigger("mailer", { n: 1 }, {}, ONE_TRY));
    assert.match(first.id, /^run_/);
    const again = await rejectionOf(asToken(token, () => tasks.trigger("mailer", { n: 2 }, {}, ONE_TRY)));
    assert.equal(again?.status, 422, describeError(again));
    assert.equal(again.message, "Cannot trigger mailer with a one-time use token as it has already been used.");
    // Still executing (nothing has retrieved it): a read token cannot cancel it, a write token can.
    const reader = await auth.createPublicToken({ scopes: { read: { runs: true } } });
    assertDenied(await rejectionOf(asToken(reader, () => runs.cancel(first.id, ONE_TRY))));
    const writer = await auth.createPublicToken({ scopes: { write: { runs: [first.id] } } });
    assert.deepEqual(await asToken(writer, () => runs.cancel(first.id, ONE_TRY)), { id: first.id });
    // The run is the environment's: its secret key sees it.
    const run = await runs.retrieve(first.id, ONE_TRY);
    assert.deepEqual([run.status, run.payload], ["CANCELED", { n: 1 }]);
  });

  it("an expired token gets AuthenticationError once the mock clock passes its exp", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const token = await auth.createPublicToken({ scopes: { read: { runs: [COMPLETED] } }, expirationTime: "10m" });
    assert.equal((await asToken(token, () => runs.retrieve(COMPLETED, ONE_TRY))).id, COMPLETED);
    await moveClock(server.url, { set: new Date((decode(token).exp + 1) * 1000).toISOString() });
    const err = await rejectionOf(asToken(token, () => runs.retrieve(COMPLETED, ONE_TRY)));
    assert.ok(err instanceof AuthenticationError, describeError(err));
    assert.equal(err.status, 401);
    assert.equal(err.message, "Public Access Token is invalid");
  });
});
