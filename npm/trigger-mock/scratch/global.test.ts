// Uses the server of global-setup.ts through the environment the SDK reads.
import { runs } from "@trigger.dev/sdk";
import { createAdminClient } from "trigger-mock";
import { expect, inject, test } from "vitest";

test("the SDK reaches the global server through TRIGGER_API_URL and TRIGGER_SECRET_KEY", async () => {
  expect(process.env.TRIGGER_API_URL).toBe(inject("triggerMockUrl"));
  const run = await runs.retrieve("run_completed");
  expect(run.isSuccess).toBe(true);
  const admin = createAdminClient(inject("triggerMockUrl"));
  const records = await admin.records({ runId: "run_completed" });
  // The journal keeps a key's first 16 characters.
  expect(records.at(-1)?.key).toBe(process.env.TRIGGER_SECRET_KEY?.slice(0, 16));
});
