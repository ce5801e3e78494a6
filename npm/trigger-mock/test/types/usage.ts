// Type-checked by test/types.test.mjs (tsc --noEmit): the package's
// declarations compile under strict settings, and a scenario written in
// TypeScript is checked (and completed by an editor) against the generated types.
import {
  type AdminClient,
  type Clock,
  type JournalRecord,
  type ScenarioFile,
  startTriggerMock,
  TriggerMockAdminError,
} from "trigger-mock";

const scenario: ScenarioFile = {
  version: 1,
  description: "a run that finishes after two polls",
  runs: [
    {
      id: "run_typed",
      lifecycle: [{ status: "EXECUTING", retrieves: 2 }, { status: "COMPLETED_SUCCESSFULLY" }],
      output: { ok: true },
    },
  ],
};

// @ts-expect-error a misspelled key is refused
const misspelled: ScenarioFile = { version: 1, runz: [] };
// @ts-expect-error only version 1 exists
const wrongVersion: ScenarioFile = { version: 2 };
// @ts-expect-error statuses are the engine's
const wrongStatus: ScenarioFile = { version: 1, runs: [{ id: "run_x", status: "DONE" }] };

export async function use(): Promise<void> {
  const mock = await startTriggerMock({ seed: 7, clock: new Date(0), scenarios: [scenario, "builtin:every-status"] });
  const admin: AdminClient = mock.admin;
  const clock: Clock = await admin.advanceClock("10m");
  const frozen: boolean = clock.frozen;
  const records: JournalRecord[] = await admin.records({ runId: "run_typed", limit: 5 });
  const status: number | undefined = records[0]?.status;
  const page = await admin.journal({ after: 0, limit: 100 });
  const next: number | undefined = page.next;
  const cut: string[] | undefined = (await admin.allRecords({ limit: 100 }))[0]?.truncated;
  const { listenBacklog, memory } = await admin.health();
  const budget: number = memory.journalBudget;
  // @ts-expect-error the backlog may be null
  const backlog: number = listenBacklog;
  try {
    await admin.putScenario("bad", { version: 1 });
  } catch (e) {
    if (e instanceof TriggerMockAdminError) console.log(e.status, e.serverMessage, e.problems);
  }
  const env: Record<string, string> = { ...mock.env };
  // @ts-expect-error options are checked
  await startTriggerMock({ sead: 1 });
  await mock.stop();
  await startTriggerMock({ journalBytes: 1 << 20, keyStateBytes: 1 << 20, idleTimeout: 5, bodyTimeout: 5, maxConnections: 8, workers: 1 });
  void [frozen, status, next, cut, budget, backlog, env, misspelled, wrongVersion, wrongStatus];
}
