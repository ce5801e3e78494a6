// One server for the whole vitest run (the README's globalSetup example).
import { startTriggerMock } from "trigger-mock";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    triggerMockUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const mock = await startTriggerMock({ clock: "2026-01-01T00:00:00Z", notFoundRetry: false });
  // The SDK in every test file reads these.
  Object.assign(process.env, mock.env);
  project.provide("triggerMockUrl", mock.url);
  return () => mock.stop();
}
