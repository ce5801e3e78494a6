// Uses the server of global-setup.ts through the environment the SDK reads.
import { runs } from "@trigger.dev/sdk";
import { createAdminClient } from "trigger-mock";
import { expect, inject, test } from "vitest";

test("the SDK reaches the global server through TRIGGER_API_URL and TRIGGER_SECRET_KEY", async () => {
  expect(process.env.TRIGGER_API_URL).toBe(inject("triggerMockUrl"));
  const run = await runs.retrieve("run_completed");
  expect(run.isSuccess).toBe(true);
  const admin = createAdminClient(inject("triggerMockUrl"));
  // The filter compares whole keys; a record keeps only a key's first 16 characters.
  const records = await admin.records({ runId: "run_completed", key: process.env.TRIGGER_SECRET_KEY });
  expect(records).toHaveLength(1);
  expect(records[0]?.key).toBe(process.env.TRIGGER_SECRET_KEY?.slice(0, 16));
});
