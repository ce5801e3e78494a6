// A real browser: contract/browser/app.jsx (React + @trigger.dev/react-hooks,
// bundled here with esbuild) served from another origin than the mock, opened
// by headless Chromium (Debian's package at /usr/bin/chromium, which
// scripts/test installs when missing) through playwright-core. The page shows
// a run's status with useRealtimeRun and a public access token while the test
// moves the mock clock; the test then reads every status the page rendered.
//
// It proves the CORS side too: the page's origin differs from the mock's, so
// a missing preflight answer or Access-Control-Expose-Headers leaves the
// page with no status at all.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { auth, configure } from "@trigger.dev/sdk";
import {
  CHROMIUM,
  CHROMIUM_FLAGS,
  CONTRACT_DIR,
  moveClock,
  readJournal,
  startServer,
  writeScenarioFile,
} from "./helpers.mjs";

const RUN = "run_browser_timed";
const KEY = `tr_dev_browser_${process.pid}`;
const SCENARIO = {
  version: 1,
  description: "a run the browser page watches",
  runs: [
    {
      id: RUN,
      taskIdentifier: "browser-task",
      lifecycle: [{ status: "PENDING", for: "1m" }, { status: "EXECUTING", for: "1m" }, { status: "COMPLETED_SUCCESSFULLY" }],
    },
  ],
};

/** Serves the page and its bundle on 127.0.0.1:0 (another origin than the mock). */
async function startStatic(files) {
  const server = http.createServer((req, res) => {
    const file = files[new URL(req.url, "http://x").pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": file.type, "cache-control": "no-store" }).end(file.body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

describe("useRealtimeRun in headless Chromium", () => {
  let mock;
  let site;
  let scenario;
  let context;
  let profile;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/test installs Debian's chromium package`);
    const bundle = await build({
      entryPoints: [path.join(CONTRACT_DIR, "browser", "app.jsx")],
      bundle: true,
      write: false,
      format: "iife",
      platform: "browser",
      target: "es2020",
      jsx: "automatic",
      define: { "process.env.NODE_ENV": '"production"' },
      // A realtime-streams transport the page never uses imports node:http2 lazily.
      external: ["node:*"],
      logLevel: "silent",
    });
    site = await startStatic({
      "/": { type: "text/html", body: readFileSync(path.join(CONTRACT_DIR, "browser", "index.html")) },
      "/app.js": { type: "text/javascript", body: bundle.outputFiles[0].contents },
    });
    scenario = writeScenarioFile(SCENARIO, "browser.json");
    mock = await startServer(["--scenario", scenario.path, "--realtime-hold-ms", "2000"]);
    // The SDK signs the token with the wall clock.
    await moveClock(mock.url, { set: new Date().toISOString() });
    profile = mkdtempSync(path.join(os.tmpdir(), "trigger-mock-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      timeout: 30_000,
    });
  });

  after(async () => {
    await context?.close();
    await mock?.stop();
    await site?.close();
    scenario?.cleanup();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("renders QUEUED, EXECUTING, COMPLETED as the mock clock moves", { timeout: 60_000 }, async () => {
    configure({ baseURL: mock.url, accessToken: KEY });
    const token = await auth.createPublicToken({ scopes: { read: { runs: [RUN] } } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    const query = new URLSearchParams({ api: mock.url, token, run: RUN });
    await page.goto(`${site.url}/?${query}`);
    const items = page.locator("#statuses li");
    const expectStatuses = async (statuses) => {
      await page.waitForFunction(
        (n) => document.querySelectorAll("#statuses li").length >= n,
        statuses.length,
        { timeout: 15_000 },
      ).catch(async (e) => {
        const text = await page.locator("body").innerText();
        throw new Error(`${e.message}\npage: ${text}\nerrors: ${pageErrors.join("; ")}`);
      });
      assert.deepEqual(await items.allInnerTexts(), statuses);
    };
    await expectStatuses(["QUEUED"]);
    await moveClock(mock.url, { advance: "1m" });
    await expectStatuses(["QUEUED", "EXECUTING"]);
    await moveClock(mock.url, { advance: "1m" });
    await expectStatuses(["QUEUED", "EXECUTING", "COMPLETED"]);
    await page.waitForFunction(() => document.getElementById("finished")?.textContent === "finished", null, {
      timeout: 5_000,
    });
    assert.equal(await page.locator("#error").innerText(), "");
    assert.deepEqual(pageErrors, []);
    const records = await readJournal(mock.url, { key: KEY, runId: RUN });
    assert.ok(records.length >= 3, `snapshot and live polls: ${records.length}`);
    assert.ok(records.every((r) => r.status === 200 && r.token?.valid === true), JSON.stringify(records));
    await page.close();
  });
});
