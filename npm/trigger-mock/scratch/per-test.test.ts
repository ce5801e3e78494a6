// A fresh server per test (the README's beforeEach example).
import { configure, runs } from "@trigger.dev/sdk";
import { startTriggerMock, type TriggerMock } from "trigger-mock";
import { afterEach, beforeEach, expect, test } from "vitest";

let mock: TriggerMock;
beforeEach(async () => {
  mock = await startTriggerMock({ seed: 7, clock: "2026-01-01T00:00:00Z", notFoundRetry: false });
  configure({ baseURL: mock.url, accessToken: mock.env.TRIGGER_SECRET_KEY });
});
afterEach(() => mock.stop());

for (const n of [1, 2]) {
  test(`test ${n} sees an empty journal and the same generated run`, async () => {
    expect((await mock.admin.journal()).records).toEqual([]);
    const run = await runs.retrieve("run_generated_here");
    expect(run.id).toBe("run_generated_here");
    expect((await mock.admin.records()).length).toBe(1);
  });
}
