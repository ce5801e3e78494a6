// Responses in the documented (unversioned, "V1") vocabulary, validated against
// the published OpenAPI schema `components.schemas.RetrieveRunResponse`.
//
// The document is read from ../shared/reference/trigger-v3-openapi.yaml beside
// the repository; when it is absent these tests are skipped.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse as parseYaml } from "yaml";
import {
  ENGINE_TO_V1,
  OPENAPI_PATH,
  engineRunId,
  fetchRun,
  helpersForApiStatus,
  pickHelpers,
  readCatalogue,
  startServer,
} from "./helpers.mjs";

// The statuses the server can produce without a version header but that the
// published document does not list (contract.md §6). Only these are added.
const EXTRA_V1_STATUSES = ["WAITING_FOR_DEPLOY", "EXPIRED", "TIMED_OUT"];

// Expected V1 status for each engine-status run id (contract.md §2.2, V1 column).
const EXPECTED_V1 = {
  run_delayed: "DELAYED",
  run_pending_version: "PENDING_VERSION",
  run_waiting_for_deploy: "WAITING_FOR_DEPLOY",
  run_pending: "QUEUED",
  run_dequeued: "EXECUTING",
  run_executing: "EXECUTING",
  run_retrying_after_failure: "REATTEMPTING",
  run_paused: "FROZEN",
  run_waiting_to_resume: "FROZEN",
  run_completed_successfully: "COMPLETED",
  run_canceled: "CANCELED",
  run_completed_with_errors: "FAILED",
  run_interrupted: "INTERRUPTED",
  run_crashed: "CRASHED",
  run_system_failure: "SYSTEM_FAILURE",
  run_expired: "EXPIRED",
  run_timed_out: "TIMED_OUT",
};

const SCHEMA_REF_PREFIX = "#/components/schemas/";
const MISSING_MESSAGE = `published OpenAPI document not found at ${OPENAPI_PATH} (expected beside the repository as ../shared/reference/trigger-v3-openapi.yaml)`;

/** Names of the component schemas `name` refers to, transitively (including itself). */
function schemaClosure(schemas, name) {
  const seen = new Set();
  const visit = (n) => {
    if (seen.has(n)) return;
    if (!Object.hasOwn(schemas, n)) throw new Error(`OpenAPI: components.schemas.${n} is referenced but missing`);
    seen.add(n);
    const walk = (node) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        for (const [k, v] of Object.entries(node)) {
          if (k === "$ref" && typeof v === "string") {
            if (!v.startsWith(SCHEMA_REF_PREFIX)) throw new Error(`OpenAPI: unsupported $ref ${v}`);
            visit(v.slice(SCHEMA_REF_PREFIX.length));
          } else walk(v);
        }
      }
    };
    walk(schemas[n]);
  };
  visit(name);
  return seen;
}

/** Deep copy with `#/components/schemas/X` rewritten to `#/$defs/X`. */
function rewriteRefs(node) {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === "object") {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === "$ref" && typeof v === "string" ? `#/$defs/${v.slice(SCHEMA_REF_PREFIX.length)}` : rewriteRefs(v);
    }
    return out;
  }
  return node;
}

/** A run-status enum is one that lists run statuses (attempt statuses have no QUEUED). */
function isRunStatusEnum(values) {
  return Array.isArray(values) && values.includes("QUEUED") && values.includes("COMPLETED") && values.includes("CANCELED");
}

/** Add EXTRA_V1_STATUSES to every run-status enum; return the JSON pointers widened. */
function widenRunStatusEnums(node, pointer = "", widened = []) {
  if (Array.isArray(node)) {
    node.forEach((v, i) => widenRunStatusEnums(v, `${pointer}/${i}`, widened));
  } else if (node && typeof node === "object") {
    if (isRunStatusEnum(node.enum)) {
      for (const s of EXTRA_V1_STATUSES) if (!node.enum.includes(s)) node.enum.push(s);
      widened.push(`${pointer}/enum`);
    }
    for (const [k, v] of Object.entries(node)) if (k !== "enum") widenRunStatusEnums(v, `${pointer}/${k}`, widened);
  }
  return widened;
}

/** Build and compile the RetrieveRunResponse validator, or return null when the document is absent. */
function loadValidator() {
  if (!existsSync(OPENAPI_PATH)) return null;
  const doc = parseYaml(readFileSync(OPENAPI_PATH, "utf8"));
  const schemas = doc?.components?.schemas;
  assert.ok(schemas?.RetrieveRunResponse, "the OpenAPI document has components.schemas.RetrieveRunResponse");
  const defs = {};
  for (const name of schemaClosure(schemas, "RetrieveRunResponse")) defs[name] = rewriteRefs(schemas[name]);
  const publishedStatuses = [...(schemas.CommonRunObject?.properties?.status?.enum ?? [])];
  const widened = widenRunStatusEnums(defs, "#/$defs");
  const widenedStatuses = defs.CommonRunObject?.properties?.status?.enum ?? [];
  // contract.md §6: the document types payload and output as objects, but they
  // are any JSON value (a text/plain packet is a string). Widen those two only.
  const packetFields = [];
  for (const part of defs.RetrieveRunResponse?.allOf ?? []) {
    for (const field of ["payload", "output"]) {
      if (part?.properties?.[field]?.type === "object") {
        delete part.properties[field].type;
        packetFields.push(field);
      }
    }
  }
  assert.deepEqual(packetFields.sort(), ["output", "payload"], "payload and output are widened to any JSON value");
  const root = {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "urn:trigger-mock-contract:RetrieveRunResponse",
    $defs: defs,
    $ref: "#/$defs/RetrieveRunResponse",
  };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  return { validate: ajv.compile(root), widened, publishedStatuses, widenedStatuses, ajv };
}

let loaded = null;
let loadError = null;
try {
  loaded = loadValidator();
} catch (err) {
  loadError = err;
}

describe("unversioned responses match the published OpenAPI RetrieveRunResponse", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it("the schema loads and its run-status enum is widened exactly as contract.md §6 explains", (t) => {
    if (!loaded && !loadError) return t.skip(MISSING_MESSAGE);
    if (loadError) throw loadError;
    assert.ok(loaded.widened.includes("#/$defs/CommonRunObject/properties/status/enum"), `widened: ${loaded.widened}`);
    assert.deepEqual(
      [...loaded.widenedStatuses].sort(),
      [...new Set([...loaded.publishedStatuses, ...EXTRA_V1_STATUSES])].sort(),
      "only WAITING_FOR_DEPLOY, EXPIRED and TIMED_OUT are added",
    );
    // The attempt-status enum must stay as published.
    assert.ok(!loaded.widened.some((p) => p.includes("attempts")), `attempt status enum must not be widened: ${loaded.widened}`);
  });

  it("the V1 expectation table covers every engine status", () => {
    assert.deepEqual(
      Object.keys(EXPECTED_V1).sort(),
      Object.keys(ENGINE_TO_V1).map(engineRunId).sort(),
    );
    for (const [engine, v1] of Object.entries(ENGINE_TO_V1)) assert.equal(EXPECTED_V1[engineRunId(engine)], v1);
  });

  for (const [id, expectedStatus] of Object.entries(EXPECTED_V1)) {
    it(`${id}: validates, status ${expectedStatus}, attempts []`, async (t) => {
      if (!loaded && !loadError) return t.skip(MISSING_MESSAGE);
      if (loadError) throw loadError;
      const res = await fetchRun(server.url, id, { key: "tr_dev_x", apiVersion: null });
      assert.equal(res.status, 200, `GET ${id}: ${res.text.slice(0, 300)}`);
      assert.match(res.headers.get("content-type") ?? "", /^application\/json;\s*charset=utf-8$/i);
      assert.ok(res.body && typeof res.body === "object", `body is a JSON object: ${res.text.slice(0, 300)}`);

      const valid = loaded.validate(res.body);
      assert.ok(
        valid,
        `${id} does not match RetrieveRunResponse:\n${loaded.ajv.errorsText(loaded.validate.errors, { separator: "\n" })}\nbody: ${res.text.slice(0, 2000)}`,
      );
      assert.equal(res.body.id, id);
      assert.equal(res.body.status, expectedStatus, `${id}: V1 status`);
      assert.deepEqual(res.body.attempts, [], `${id}: attempts`);
    });
  }

  it("every catalogue run validates too, with the V1 rendering of its engine status", async (t) => {
    if (!loaded && !loadError) return t.skip(MISSING_MESSAGE);
    if (loadError) throw loadError;
    const catalogue = await readCatalogue();
    assert.ok(Array.isArray(catalogue) && catalogue.length > 0, "catalogue --json prints a non-empty array");
    for (const entry of catalogue) {
      assert.ok(Object.hasOwn(ENGINE_TO_V1, entry.status), `unknown engine status in catalogue: ${JSON.stringify(entry)}`);
      const res = await fetchRun(server.url, entry.id, { key: "tr_dev_x", apiVersion: null });
      assert.equal(res.status, 200, `GET ${entry.id}: ${res.text.slice(0, 300)}`);
      assert.ok(
        loaded.validate(res.body),
        `${entry.id} does not match RetrieveRunResponse:\n${loaded.ajv.errorsText(loaded.validate.errors, { separator: "\n" })}\nbody: ${res.text.slice(0, 2000)}`,
      );
      assert.equal(res.body.status, ENGINE_TO_V1[entry.status], `${entry.id}: V1 status`);
      assert.deepEqual(res.body.attempts, [], `${entry.id}: attempts`);
    }
  });

  it("unversioned boolean helpers follow the contract.md §2.3 rules for V1 statuses", async () => {
    for (const id of Object.keys(EXPECTED_V1)) {
      const res = await fetchRun(server.url, id, { key: "tr_dev_x", apiVersion: null });
      assert.equal(res.status, 200, `GET ${id}: ${res.text.slice(0, 300)}`);
      assert.deepEqual(pickHelpers(res.body), helpersForApiStatus(res.body.status), `${id} (${res.body.status})`);
    }
  });
});
