// A user's vitest suite, run by install.test.mjs in a fresh project where
// trigger-mock was installed from its packed tarballs (binary included).
import { configure, runs, tasks } from "@trigger.dev/sdk";
import { resolveBinary, startTriggerMock, type TriggerMock } from "trigger-mock";
import { afterAll, beforeAll, expect, test } from "vitest";

let mock: TriggerMock;

beforeAll(async () => {
  mock = await startTriggerMock({
    clock: "2026-01-01T00:00:00Z",
    notFoundRetry: false,
    scenarios: [
      {
        version: 1,
        description: "welcome emails stay queued until their TTL runs out",
        tasks: [{ id: "send-welcome-email", lifecycle: [{ status: "PENDING" }] }],
      },
    ],
  });
  configure({ baseURL: mock.env.TRIGGER_API_URL, accessToken: mock.env.TRIGGER_SECRET_KEY });
});

afterAll(async () => {
  await mock?.stop();
});

test("the binary comes from the platform package", () => {
  expect(resolveBinary().source).toBe("package");
});

test("a triggered run expires when the mock clock passes its TTL", async () => {
  const handle = await tasks.trigger("send-welcome-email", { to: "a@b.c" }, { ttl: "10m" });
  const runId = handle.id;
  expect(runId).toMatch(/^run_/);

  const queued = await runs.retrieve(runId);
  expect(queued.status).toBe("QUEUED");
  expect(queued.taskIdentifier).toBe("send-welcome-email");

  const clock = await mock.admin.advanceClock("10m");
  expect(clock.now).toBe("2026-01-01T00:10:00.000Z");

  const expired = await runs.retrieve(runId);
  expect(expired.status).toBe("EXPIRED");

  const records = await mock.admin.records({ runId, key: mock.env.TRIGGER_SECRET_KEY });
  expect(records.map((r) => [r.method, r.status, r.at])).toEqual([
    ["POST", 200, "2026-01-01T00:00:00.000Z"],
    ["GET", 200, "2026-01-01T00:00:00.000Z"],
    ["GET", 200, "2026-01-01T00:10:00.000Z"],
  ]);

  const { pid } = mock;
  await mock.stop();
  expect(() => process.kill(pid, 0)).toThrow();
});
