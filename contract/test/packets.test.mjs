// Payload and output packets through the real @trigger.dev/sdk: offloaded
// packets behind S3-style presigned URLs (contract.md §3.3), and how the SDK
// resolves them (§4.5: a plain fetch with no auth, decoded by Content-Type,
// silently `undefined` on any failure).
//
// Two servers: one with a scenario of packet runs (default 512 KiB offload
// threshold), one with `--offload-threshold 100`. The mock clock of the
// first server is moved by the expiry tests; every other test reads the
// clock instead of assuming it.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { auth, configure, runs } from "@trigger.dev/sdk";
import {
  fetchRun,
  moveClock,
  readClock,
  readJournal,
  startCountingProxy,
  startServer,
  writeScenarioFile,
} from "./helpers.mjs";

const KEY = "tr_dev_packets_0123456789";
const ONE_TRY = { retry: { maxAttempts: 1 } };
const KIB = 1024;
const MIB = 1024 * KIB;

const SCENARIO = {
  version: 1,
  description: "packet runs for the contract suite",
  runs: [
    {
      id: "run_big",
      status: "COMPLETED_SUCCESSFULLY",
      payloadPacket: { type: "application/super+json", size: "5MiB" },
      outputPacket: { type: "text/plain", size: "600KiB" },
    },
    {
      id: "run_url_expired",
      status: "COMPLETED_SUCCESSFULLY",
      payloadPacket: { type: "application/json", data: { hello: "world" }, offload: "always", url: "expired" },
    },
    {
      id: "run_url_not_found",
      status: "COMPLETED_SUCCESSFULLY",
      payloadPacket: { type: "application/super+json", size: "600KiB", url: "notFound" },
    },
    {
      id: "run_url_truncated",
      status: "COMPLETED_SUCCESSFULLY",
      payloadPacket: { type: "application/super+json", size: "600KiB", url: "truncated" },
    },
  ],
};

// For the threshold server: JSON payloads of exactly 100 and 99 bytes.
const AT_THRESHOLD = { note: "x".repeat(100 - '{"note":""}'.length) };
const BELOW_THRESHOLD = { note: "x".repeat(99 - '{"note":""}'.length) };
const THRESHOLD_SCENARIO = {
  version: 1,
  runs: [
    {
      id: "run_at_threshold",
      status: "COMPLETED_SUCCESSFULLY",
      payloadPacket: { type: "application/json", data: AT_THRESHOLD },
      outputPacket: { type: "application/json", data: BELOW_THRESHOLD },
    },
  ],
};

/** `YYYYMMDDTHHMMSSZ`, the `X-Amz-Date` form of an ISO instant. */
function amzDate(iso) {
  return new Date(iso).toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
}

/** A plain, unauthenticated fetch: status, headers and the body as bytes. */
async function plainFetch(url, init = {}) {
  const res = await fetch(url, init);
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes, text: bytes.toString("utf8") };
}

/** The presigned URL a secret key gets for `field` (`payloadPresignedUrl` / `outputPresignedUrl`). */
async function presignedUrl(baseUrl, runId, field = "payloadPresignedUrl") {
  const res = await fetchRun(baseUrl, runId, { key: KEY, apiVersion: "2025-07-16" });
  assert.equal(res.status, 200, `GET ${runId}: ${res.text.slice(0, 300)}`);
  const url = res.body[field];
  assert.equal(typeof url, "string", `${runId} has no ${field}: ${res.text.slice(0, 300)}`);
  return url;
}

function assertS3Error(res, status, code, where) {
  assert.equal(res.status, status, `${where}: status ${res.status}, body ${res.text.slice(0, 400)}`);
  assert.equal(res.headers.get("content-type"), "application/xml", `${where}: content-type`);
  assert.match(res.text, new RegExp(`<Code>${code}</Code>`), `${where}: body ${res.text.slice(0, 400)}`);
}

/** The presigned URL with one character of its `X-Amz-Signature` changed. */
function flipSignature(url) {
  const u = new URL(url);
  const sig = u.searchParams.get("X-Amz-Signature");
  assert.match(sig ?? "", /^[0-9a-f]{64}$/, `X-Amz-Signature of ${url}`);
  const flipped = sig.slice(0, -1) + (sig.at(-1) === "0" ? "1" : "0");
  u.searchParams.set("X-Amz-Signature", flipped);
  return u.toString();
}

describe("offloaded packets through the SDK", () => {
  let server;
  let proxy;
  let scenario;

  before(async () => {
    scenario = writeScenarioFile(SCENARIO, "packets.json");
    server = await startServer(["--scenario", scenario.path]);
    // With the client's Host kept, presigned URLs point back at the proxy, so
    // the SDK's packet fetches are recorded with their headers.
    proxy = await startCountingProxy(server.url, { preserveHost: true });
  });

  after(async () => {
    await proxy?.close();
    await server?.stop();
    scenario?.cleanup();
  });

  it("runs.retrieve decodes a 5 MiB super+json payload (real Date) and a 600 KiB text output, fetched without auth", async () => {
    configure({ baseURL: proxy.url, accessToken: KEY });
    const journalBefore = (await readJournal(server.url, { runId: "run_big" })).length;
    proxy.reset();

    const run = await runs.retrieve("run_big", ONE_TRY);

    // The URL fields stay on the result.
    assert.equal(typeof run.payloadPresignedUrl, "string", "payloadPresignedUrl is kept");
    assert.equal(typeof run.outputPresignedUrl, "string", "outputPresignedUrl is kept");
    assert.match(run.payloadPresignedUrl, new RegExp(`^${proxy.url}/packets/run_big/payload\\.json\\?`));
    assert.match(run.outputPresignedUrl, new RegExp(`^${proxy.url}/packets/run_big/output\\.txt\\?`));
    for (const url of [run.payloadPresignedUrl, run.outputPresignedUrl]) {
      const q = new URL(url).searchParams;
      assert.equal(q.get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256", url);
      assert.equal(q.get("X-Amz-Expires"), "300", url);
      assert.match(q.get("X-Amz-Date") ?? "", /^\d{8}T\d{6}Z$/, url);
      assert.match(q.get("X-Amz-Signature") ?? "", /^[0-9a-f]+$/, url);
    }

    // SuperJSON decoded: `meta` applied (a real Date), `json` unwrapped.
    const payload = run.payload;
    assert.ok(payload && typeof payload === "object", `payload: ${typeof payload}`);
    assert.ok(payload.createdAt instanceof Date, `payload.createdAt is ${typeof payload.createdAt} ${payload.createdAt}`);
    assert.ok(!Number.isNaN(payload.createdAt.getTime()), "payload.createdAt is a valid Date");
    assert.ok(Array.isArray(payload.items) && payload.items.length > 0, "payload.items is a non-empty array");
    assert.equal(payload.json, undefined, "the SuperJSON envelope is unwrapped");
    assert.equal(payload.meta, undefined, "the SuperJSON envelope is unwrapped");

    // The offloaded text output: a string of exactly 600 KiB.
    assert.equal(typeof run.output, "string", `output: ${typeof run.output}`);
    assert.equal(run.output.length, 600 * KIB);
    assert.equal(Buffer.byteLength(run.output, "utf8"), 600 * KIB);

    // What went over the wire: one authenticated API GET, two packet GETs with no auth.
    const apiGets = proxy.requests.filter((r) => r.url.startsWith("/api/v3/runs/"));
    const packetGets = proxy.requests.filter((r) => r.url.startsWith("/packets/"));
    assert.equal(apiGets.length, 1, `API requests: ${JSON.stringify(apiGets.map((r) => r.url))}`);
    assert.equal(apiGets[0].headers.authorization, `Bearer ${KEY}`);
    assert.deepEqual(
      packetGets.map((r) => `${r.method} ${r.url.split("?")[0]}`).sort(),
      ["GET /packets/run_big/output.txt", "GET /packets/run_big/payload.json"],
    );
    for (const r of packetGets) {
      assert.equal(r.headers.authorization, undefined, `packet GET ${r.url} sent authorization: ${r.headers.authorization}`);
      assert.equal(r.headers["x-trigger-api-version"], undefined, "a packet GET is a plain fetch, not an API call");
    }
    // The server's journal agrees: both packet GETs answered 200, and no key was seen on them.
    const records = (await readJournal(server.url, { runId: "run_big" })).slice(journalBefore);
    const packetRecords = records.filter((r) => r.path.startsWith("/packets/"));
    assert.deepEqual(
      packetRecords.map((r) => `${r.method} ${r.path} ${r.status}`).sort(),
      ["GET /packets/run_big/output.txt 200", "GET /packets/run_big/payload.json 200"],
      `journal: ${JSON.stringify(records)}`,
    );
    for (const r of packetRecords) assert.equal(r.key, undefined, `journal record has a key: ${JSON.stringify(r)}`);

    // The Date is the ISO string of the packet itself, which is exactly 5 MiB of valid SuperJSON.
    const raw = await plainFetch(await presignedUrl(server.url, "run_big"));
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get("content-type"), "application/super+json");
    assert.equal(raw.bytes.length, 5 * MIB);
    assert.equal(raw.headers.get("content-length"), String(5 * MIB));
    const packet = JSON.parse(raw.text);
    assert.deepEqual(packet.meta, { values: { createdAt: ["Date"] } });
    assert.equal(typeof packet.json.createdAt, "string");
    assert.equal(payload.createdAt.toISOString(), packet.json.createdAt);
    assert.equal(payload.items.length, packet.json.items.length);
    assert.deepEqual(Object.keys(payload).sort(), Object.keys(packet.json).sort());
  });

  it("catalogue packet runs, with no scenario: large payload, large output, inline super+json, inline text", async () => {
    configure({ baseURL: server.url, accessToken: KEY });

    const large = await runs.retrieve("run_demo_large_payload", ONE_TRY);
    assert.equal(typeof large.payloadPresignedUrl, "string", "run_demo_large_payload is offloaded");
    assert.ok(large.payload?.createdAt instanceof Date, `createdAt: ${large.payload?.createdAt}`);
    assert.ok(Array.isArray(large.payload.items));
    const raw = await plainFetch(large.payloadPresignedUrl);
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get("content-type"), "application/super+json");
    assert.equal(raw.bytes.length, 1 * MIB);
    assert.equal(large.payload.createdAt.toISOString(), JSON.parse(raw.text).json.createdAt);

    const bigOut = await runs.retrieve("run_demo_large_output", ONE_TRY);
    assert.equal(typeof bigOut.outputPresignedUrl, "string", "run_demo_large_output is offloaded");
    assert.equal(bigOut.payloadPresignedUrl, undefined, "its payload is small and inline");
    assert.equal(typeof bigOut.output, "string");
    assert.equal(bigOut.output.length, 768 * KIB);
    assert.ok(bigOut.payload && typeof bigOut.payload === "object", "the inline payload is an object");

    // Inline super+json: flattened by the server, and not post-processed by the SDK.
    const superJson = await runs.retrieve("run_demo_super_json", ONE_TRY);
    assert.equal(superJson.payloadPresignedUrl, undefined);
    assert.deepEqual(superJson.payload, {
      remindAt: "2026-01-02T09:00:00.000Z",
      count: "12345678901234567890",
      tags: [
        ["a", 1],
        ["b", 2],
      ],
    });
    assert.equal(typeof superJson.payload.remindAt, "string", "an inline payload keeps ISO strings, not Dates");

    const text = await runs.retrieve("run_demo_text_payload", ONE_TRY);
    assert.equal(text.payloadPresignedUrl, undefined);
    assert.equal(text.outputPresignedUrl, undefined);
    assert.equal(typeof text.payload, "string");
    assert.equal(typeof text.output, "string");
    assert.ok(text.payload.length > 0 && text.output.length > 0);
    const wire = await fetchRun(server.url, "run_demo_text_payload", { key: KEY });
    assert.equal(text.payload, wire.body.payload);
    assert.equal(text.output, wire.body.output);
  });

  it("a URL expires 300 s after signing on the mock clock; runs.retrieve then presigns a fresh one", async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const signedAt = (await readClock(server.url)).now;
    const url = await presignedUrl(server.url, "run_demo_large_payload");
    assert.equal(new URL(url).searchParams.get("X-Amz-Date"), amzDate(signedAt));

    await moveClock(server.url, { advance: "4m" });
    const stillValid = await plainFetch(url, { method: "HEAD" });
    assert.equal(stillValid.status, 200, "4 minutes after signing the URL still works");

    await moveClock(server.url, { advance: "2m" });
    const expired = await plainFetch(url);
    assertS3Error(expired, 403, "AccessDenied", "expired URL");
    assert.match(expired.text, /<Message>Request has expired<\/Message>/);

    // runs.retrieve signs new URLs at the new clock time, and decodes as before.
    const now = (await readClock(server.url)).now;
    const run = await runs.retrieve("run_demo_large_payload", ONE_TRY);
    assert.equal(new URL(run.payloadPresignedUrl).searchParams.get("X-Amz-Date"), amzDate(now));
    assert.notEqual(run.payloadPresignedUrl, url);
    assert.ok(run.payload?.createdAt instanceof Date, `payload after the clock moved: ${typeof run.payload}`);
    // The old URL stays expired.
    assertS3Error(await plainFetch(url), 403, "AccessDenied", "old URL after re-presigning");
  });

  it('a packet with "url": "expired" gets 403 AccessDenied at once; the SDK resolves with payload undefined', async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const url = await presignedUrl(server.url, "run_url_expired");
    const res = await plainFetch(url);
    assertS3Error(res, 403, "AccessDenied", "url: expired");
    assert.match(res.text, /<Message>Request has expired<\/Message>/);

    const run = await runs.retrieve("run_url_expired", ONE_TRY);
    assert.equal(run.status, "COMPLETED");
    assert.equal(typeof run.payloadPresignedUrl, "string");
    assert.equal(run.payload, undefined, "the SDK swallows the 403");
  });

  it("a tampered signature or query gets 403 SignatureDoesNotMatch", async () => {
    const url = await presignedUrl(server.url, "run_demo_large_payload");
    assertS3Error(await plainFetch(flipSignature(url)), 403, "SignatureDoesNotMatch", "flipped signature");
    assertS3Error(
      await plainFetch(url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000")),
      403,
      "SignatureDoesNotMatch",
      "X-Amz-Expires changed",
    );
    // The untampered URL still works.
    assert.equal((await plainFetch(url, { method: "HEAD" })).status, 200);
  });

  it("the signature covers the path: another run id in it gets 403 SignatureDoesNotMatch", async () => {
    const url = await presignedUrl(server.url, "run_demo_large_payload");
    // A run that has an offloaded payload packet of the same kind...
    assertS3Error(
      await plainFetch(url.replace("/packets/run_demo_large_payload/", "/packets/run_big/")),
      403,
      "SignatureDoesNotMatch",
      "path changed to run_big",
    );
    // ...and runs that have none: S3 checks the signature before it looks up the key,
    // so a holder of a URL learns nothing about other keys.
    for (const other of ["run_demo_completed", "run_does_not_exist"]) {
      assertS3Error(
        await plainFetch(url.replace("/packets/run_demo_large_payload/", `/packets/${other}/`)),
        403,
        "SignatureDoesNotMatch",
        `path changed to ${other}`,
      );
    }
  });

  it('"url": "notFound" gets 404 NoSuchKey; the SDK resolves with payload undefined', async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const url = await presignedUrl(server.url, "run_url_not_found");
    const res = await plainFetch(url);
    assertS3Error(res, 404, "NoSuchKey", "url: notFound");

    const run = await runs.retrieve("run_url_not_found", ONE_TRY);
    assert.equal(typeof run.payloadPresignedUrl, "string");
    assert.equal(run.payload, undefined, "the SDK swallows the 404");
  });

  it('"url": "truncated" serves a 200 with half the packet; the SDK cannot parse it and resolves with payload undefined', async () => {
    configure({ baseURL: server.url, accessToken: KEY });
    const url = await presignedUrl(server.url, "run_url_truncated");
    const res = await plainFetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/super+json");
    assert.equal(res.bytes.length, (600 * KIB) / 2);
    assert.equal(res.headers.get("content-length"), String((600 * KIB) / 2));
    assert.throws(() => JSON.parse(res.text), SyntaxError, "half a packet is not JSON");

    const run = await runs.retrieve("run_url_truncated", ONE_TRY);
    assert.equal(typeof run.payloadPresignedUrl, "string");
    assert.equal(run.payload, undefined, "superjson.parse throws and the SDK swallows it");
  });

  it("a public key sees no payload, output or URLs; a secret key's URL works with no auth at all", async () => {
    const wire = await fetchRun(server.url, "run_demo_large_payload", { key: "pk_dev_x", apiVersion: "2025-07-16" });
    assert.equal(wire.status, 200, wire.text.slice(0, 300));
    for (const field of ["payload", "output", "payloadPresignedUrl", "outputPresignedUrl"]) {
      assert.ok(!(field in wire.body), `public key body has ${field}`);
    }
    const run = await auth.withAuth({ baseURL: server.url, accessToken: "pk_dev_x" }, () =>
      runs.retrieve("run_demo_large_payload", ONE_TRY),
    );
    assert.equal(run.id, "run_demo_large_payload");
    assert.equal(run.payload, undefined);
    assert.equal(run.output, undefined);
    assert.equal(run.payloadPresignedUrl, undefined);
    assert.equal(run.outputPresignedUrl, undefined);

    // The same run with a secret key: the URL alone is the credential.
    const url = await presignedUrl(server.url, "run_demo_large_payload");
    const res = await plainFetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/super+json");
    assert.equal(res.bytes.length, 1 * MIB);
  });

  it("Range and HEAD on a packet URL behave like S3", async () => {
    const url = await presignedUrl(server.url, "run_demo_large_output", "outputPresignedUrl");
    const full = await plainFetch(url);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get("content-type"), "text/plain");
    const size = full.bytes.length;
    assert.equal(size, 768 * KIB);
    assert.equal(full.headers.get("accept-ranges"), "bytes");

    const head = await plainFetch(url, { headers: { range: "bytes=0-9" } });
    assert.equal(head.status, 206);
    assert.equal(head.headers.get("content-range"), `bytes 0-9/${size}`);
    assert.equal(head.headers.get("content-length"), "10");
    assert.equal(head.bytes.length, 10);
    assert.ok(head.bytes.equals(full.bytes.subarray(0, 10)), `first 10 bytes: ${head.text} vs ${full.bytes.subarray(0, 10)}`);

    const tail = await plainFetch(url, { headers: { range: "bytes=-10" } });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers.get("content-range"), `bytes ${size - 10}-${size - 1}/${size}`);
    assert.ok(tail.bytes.equals(full.bytes.subarray(size - 10)), "the last 10 bytes");

    const middle = await plainFetch(url, { headers: { range: `bytes=1000-${1000 + 4095}` } });
    assert.equal(middle.status, 206);
    assert.ok(middle.bytes.equals(full.bytes.subarray(1000, 1000 + 4096)), "a range in the middle");

    const beyond = await plainFetch(url, { headers: { range: `bytes=${size}-` } });
    assertS3Error(beyond, 416, "InvalidRange", "range past the end");

    const headRes = await plainFetch(url, { method: "HEAD" });
    assert.equal(headRes.status, 200);
    assert.equal(headRes.headers.get("content-length"), String(size));
    assert.equal(headRes.headers.get("content-type"), "text/plain");
    assert.equal(headRes.bytes.length, 0, "HEAD has no body");
  });
});

describe("--offload-threshold", () => {
  let server;
  let scenario;

  before(async () => {
    scenario = writeScenarioFile(THRESHOLD_SCENARIO, "threshold.json");
    server = await startServer(["--offload-threshold", "100", "--scenario", scenario.path]);
  });

  after(async () => {
    await server?.stop();
    scenario?.cleanup();
  });

  it("a packet of exactly the threshold is offloaded and still decoded by the SDK; one byte less stays inline", async () => {
    assert.equal(JSON.stringify(AT_THRESHOLD).length, 100);
    assert.equal(JSON.stringify(BELOW_THRESHOLD).length, 99);

    const wire = await fetchRun(server.url, "run_at_threshold", { key: KEY, apiVersion: "2025-07-16" });
    assert.equal(wire.status, 200, wire.text.slice(0, 300));
    assert.equal(typeof wire.body.payloadPresignedUrl, "string", "100 bytes >= threshold 100: offloaded");
    assert.ok(!("payload" in wire.body), "an offloaded payload is not also inline");
    assert.deepEqual(wire.body.output, BELOW_THRESHOLD, "99 bytes < threshold 100: inline");
    assert.ok(!("outputPresignedUrl" in wire.body));

    const raw = await plainFetch(wire.body.payloadPresignedUrl);
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get("content-type"), "application/json");
    assert.equal(raw.text, JSON.stringify(AT_THRESHOLD));

    const run = await auth.withAuth({ baseURL: server.url, accessToken: KEY }, () =>
      runs.retrieve("run_at_threshold", ONE_TRY),
    );
    assert.equal(typeof run.payloadPresignedUrl, "string");
    assert.deepEqual(run.payload, AT_THRESHOLD);
    assert.deepEqual(run.output, BELOW_THRESHOLD);
  });

  it("the threshold applies to every payload: run_demo_large_output's generated payload (> 100 bytes) is offloaded and decoded", async () => {
    const wire = await fetchRun(server.url, "run_demo_large_output", { key: KEY, apiVersion: "2025-07-16" });
    assert.equal(wire.status, 200);
    const inlineBytes = wire.body.payload === undefined ? 0 : Buffer.byteLength(JSON.stringify(wire.body.payload));
    assert.equal(
      typeof wire.body.payloadPresignedUrl,
      "string",
      `a ${inlineBytes}-byte payload is still inline with --offload-threshold 100: ${JSON.stringify(wire.body.payload)}`,
    );
    assert.ok(!("payload" in wire.body));
    const raw = await plainFetch(wire.body.payloadPresignedUrl);
    assert.ok(raw.bytes.length >= 100, `payload packet is ${raw.bytes.length} bytes`);
    const expected = JSON.parse(raw.text);
    assert.equal(typeof expected, "object");

    const run = await auth.withAuth({ baseURL: server.url, accessToken: KEY }, () =>
      runs.retrieve("run_demo_large_output", ONE_TRY),
    );
    assert.deepEqual(run.payload, expected, "the SDK decodes the offloaded payload into the object");
    assert.equal(typeof run.output, "string");
  });
});
