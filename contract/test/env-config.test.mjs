// The SDK configured only through environment variables (no configure() call),
// in a fresh Node process whose environment holds nothing else.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runNodeScript, startServer } from "./helpers.mjs";

// Runs in the child. Prints one JSON line describing the outcome.
const SCRIPT = `
import { runs } from "@trigger.dev/sdk";
try {
  const run = await runs.retrieve("run_completed", { retry: { maxAttempts: 1 } });
  console.log(JSON.stringify({
    ok: true,
    id: run.id,
    status: run.status,
    isCompleted: run.isCompleted,
    createdAtIsDate: run.createdAt instanceof Date,
  }));
} catch (err) {
  console.log(JSON.stringify({
    ok: false,
    class: err?.constructor?.name,
    status: err?.status,
    message: err?.message,
  }));
}
`;

async function retrieveWithEnv(env) {
  const result = await runNodeScript(SCRIPT, { env });
  const lines = result.stdout.trim().split("\n").filter(Boolean);
  assert.equal(result.code, 0, `child exited with ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  assert.ok(lines.length > 0, `child printed nothing\nstderr:\n${result.stderr}`);
  return JSON.parse(lines.at(-1));
}

describe("configuration from TRIGGER_API_URL / TRIGGER_SECRET_KEY", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  for (const [label, suffix] of [
    ["without a trailing slash", ""],
    ["with a trailing slash", "/"],
  ]) {
    it(`runs.retrieve works ${label}`, async () => {
      const outcome = await retrieveWithEnv({
        TRIGGER_API_URL: `${server.url}${suffix}`,
        TRIGGER_SECRET_KEY: "tr_dev_env_0123",
      });
      assert.deepEqual(outcome, {
        ok: true,
        id: "run_completed",
        status: "COMPLETED",
        isCompleted: true,
        createdAtIsDate: true,
      });
    });
  }
});
