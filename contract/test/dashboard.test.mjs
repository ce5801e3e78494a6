// The dashboard (/_mock/ui) in headless Chromium: the app triggers a run and
// the real SDK retrieves scripted runs, the page shows their statuses and timelines, the clock is
// advanced from the page and the page follows on its own (no reload), the
// journal marks faults and errors and grows live, a run shows both bodies
// and its requests, and a refused --watch reload shows its problems. Every
// request the page makes goes to the mock. A screenshot per view is saved
// in contract/artifacts/ (git-ignored).
//
// Chromium is Debian's package (./scripts/test installs it when missing),
// driven by playwright-core, which downloads no browser of its own.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { configure, runs } from "@trigger.dev/sdk";
import { CHROMIUM, CHROMIUM_FLAGS, CONTRACT_DIR, CURRENT_API_VERSION, startServer } from "./helpers.mjs";

const ARTIFACTS = path.join(CONTRACT_DIR, "artifacts", "dashboard");
const KEY = "tr_dev_dashboard_browser";
const ONE_TRY = { retry: { maxAttempts: 1 } };

describe("the dashboard in a browser", () => {
  let server;
  let browser;
  let page;
  let profile;
  let scenarioDir;
  let scenarioFile;
  const outside = [];
  let created;
  const failures = [];

  const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  const get = (id) =>
    fetch(`${server.url}/api/v3/runs/${id}`, {
      headers: { authorization: `Bearer ${KEY}`, "x-trigger-api-version": CURRENT_API_VERSION },
    });
  /** The text of the runs table's row for `id`. */
  const rowOf = (id) => page.locator("#view tbody tr", { has: page.locator(`a[href^="#run/${id}?"]`) });

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run ./scripts/test (it installs Debian's chromium) or set CHROMIUM_PATH`);
    mkdirSync(ARTIFACTS, { recursive: true });
    scenarioDir = mkdtempSync(path.join(os.tmpdir(), "trigger-mock-dashboard-"));
    scenarioFile = path.join(scenarioDir, "live.json");
    writeFileSync(scenarioFile, JSON.stringify({ version: 1, runs: [{ id: "run_live", status: "EXECUTING" }] }));
    server = await startServer([
      "-q",
      "--watch",
      "--scenario",
      "builtin:poll-to-completion",
      "--scenario",
      "builtin:flaky-run",
      "--scenario",
      "builtin:delayed-to-queued",
      "--scenario",
      scenarioFile,
    ]);
    profile = mkdtempSync(path.join(os.tmpdir(), "trigger-mock-chromium-"));
    // A persistent context is how playwright passes a fresh --user-data-dir.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1366, height: 768 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on("request", (req) => {
      if (!req.url().startsWith(`${server.url}/`)) outside.push(req.url());
    });
    page.on("pageerror", (err) => failures.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") failures.push(msg.text());
    });

    // The application's requests, through the real SDK (and one raw 500 from the flaky run's fault).
    configure({ baseURL: server.url, accessToken: KEY });
    assert.equal((await runs.retrieve("run_poll_ok", ONE_TRY)).status, "QUEUED");
    assert.equal((await runs.retrieve("run_poll_ok", ONE_TRY)).status, "EXECUTING");
    assert.equal((await runs.retrieve("run_delayed_start", ONE_TRY)).status, "DELAYED");
    assert.equal((await get("run_flaky")).status, 500);
    // A run the app creates (issue 9's run flow).
    const made = await fetch(`${server.url}/api/v1/tasks/send-report/trigger`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ payload: "{}", options: { payloadType: "application/json" } }),
    });
    assert.equal(made.status, 200);
    created = (await made.json()).id;
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    for (const dir of [profile, scenarioDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lists the environment with its requests, errors and faults", async () => {
    await page.goto(`${server.url}/_mock/ui`);
    await page.locator("#live", { hasText: "live" }).waitFor();
    const row = page.locator("#view tbody tr").first();
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /tr_dev_dashboard/);
    assert.match(text, /development/);
    assert.match(text, /\b5\b/, "five requests");
    assert.equal(await page.locator("nav a[aria-current=page]").innerText(), "Environments");
    await shot("environments");
  });

  it("shows runs with statuses and timelines, and follows a clock moved from the page", async () => {
    await page.locator("#view tbody tr a").first().click();
    await page.locator('#view[data-view="runs"]').waitFor();
    const poll = await rowOf("run_poll_ok").innerText();
    assert.match(poll, /EXECUTING/);
    assert.match(poll, /PENDING[\s\S]*EXECUTING/, "the timeline's steps");
    assert.match(poll, /next: EXECUTING after 1 more retrieve|next: COMPLETED_SUCCESSFULLY after 1 more retrieve/);
    const delayed = await rowOf("run_delayed_start").innerText();
    assert.match(delayed, /DELAYED/);
    assert.match(delayed, /next: PENDING at 2026-01-01 00:01:00\.000/);
    const mine = rowOf(created);
    assert.match(await mine.innerText(), /send-report[\s\S]*created/);
    await shot("runs");

    // Driving the created run through the admin API moves its row without a reload.
    const driven = await fetch(`${server.url}/_mock/runs/${created}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status: "COMPLETED_SUCCESSFULLY", output: { ok: true } }),
    });
    assert.equal(driven.status, 200);
    await mine.locator("td .tag", { hasText: "COMPLETED_SUCCESSFULLY" }).first().waitFor();

    // Advance by a minute from the page: the row changes without a reload, through the event stream.
    await page.selectOption("#clock-step", "1m");
    await page.click("#clock-advance");
    await page.locator("#clock-now", { hasText: "2026-01-01 00:01:00.000" }).waitFor();
    await rowOf("run_delayed_start").locator(".tag", { hasText: "PENDING" }).first().waitFor();
    assert.match(await rowOf("run_delayed_start").innerText(), /DELAYED[\s\S]*PENDING 2026-01-01 00:01:00\.000/);

    // A retrieve made by the app moves the run on the page too.
    assert.equal((await runs.retrieve("run_poll_ok", ONE_TRY)).status, "EXECUTING");
    assert.equal((await runs.retrieve("run_poll_ok", ONE_TRY)).status, "COMPLETED");
    await rowOf("run_poll_ok").locator("td .tag", { hasText: "COMPLETED_SUCCESSFULLY" }).first().waitFor();

    // Filters.
    await page.selectOption('select[name="status"]', "COMPLETED_SUCCESSFULLY");
    await page.locator("#view caption", { hasText: /^\d+ runs? at/ }).waitFor();
    const statuses = await page.locator("#view tbody tr td:nth-child(3)").allInnerTexts();
    assert.ok(statuses.length > 0 && statuses.every((s) => s === "COMPLETED_SUCCESSFULLY"), statuses.join(","));
    await page.selectOption('select[name="status"]', "");
    await shot("runs-after-advance");
  });

  it("shows one run: both bodies, its packets and its requests", async () => {
    await rowOf("run_poll_ok").locator("a").first().click();
    await page.locator('#view[data-view="run"]').waitFor();
    const pres = page.locator("#view pre");
    assert.equal(await pres.count(), 2);
    assert.match(await pres.nth(0).innerText(), /"status": "COMPLETED"/);
    assert.match(await pres.nth(1).innerText(), /"status": "COMPLETED"/);
    assert.match(await page.locator("#view dl").innerText(), /Packets/);
    const requests = page.locator("#view table.journal tbody tr");
    assert.equal(await requests.count(), 4, "the four retrieves of run_poll_ok by this key");
    await shot("run");
  });

  it("shows the journal live, with the fault and the error marked", async () => {
    await page.click('nav a[href="#journal"]');
    await page.locator('#view[data-view="journal"]').waitFor();
    const faulted = page.locator("#view tr.faulted");
    assert.equal(await faulted.count(), 1);
    assert.match(await faulted.innerText(), /fault: builtin:flaky-run faults\[0\]: serverError/);
    assert.match(await faulted.innerText(), /500 \(error\)/);
    const before = await page.locator("#view tbody tr").count();
    assert.equal((await get("not_a_run_id")).status, 400);
    await page.locator("#view tbody tr").nth(before).waitFor();
    assert.match(await page.locator("#view tbody tr").first().innerText(), /not_a_run_id[\s\S]*400 \(error\)/);
    await page.locator("#view tr.failed").first().waitFor();
    await shot("journal");
  });

  it("shows the scenarios and the problems of a refused --watch reload", async () => {
    await page.click('nav a[href="#scenarios"]');
    await page.locator('#view[data-view="scenarios"]').waitFor();
    assert.match(await page.locator("#view").innerText(), /run_poll_ok/);
    writeFileSync(scenarioFile, '{"version": 1, "runs": [{"id": "run_live", "status": "NOT_A_STATUS"}]}');
    const alert = page.locator("#view .alert");
    await alert.waitFor({ timeout: 10_000 });
    assert.match(await alert.innerText(), /live\.json:1:\d+: runs\[0\]\.status: unknown variant `NOT_A_STATUS`/);
    await shot("scenarios");
  });

  it("resets an environment from the page", async () => {
    await page.click('nav a[href="#runs"]');
    await rowOf("run_poll_ok").waitFor();
    await page.selectOption("#reset-key", { label: "tr_dev_dashboard" });
    await page.click('#reset-form button[type="submit"]');
    await rowOf("run_poll_ok").filter({ hasText: "not retrieved by this key yet" }).waitFor();
    assert.match(await rowOf("run_poll_ok").innerText(), /PENDING for 1 retrieve, EXECUTING for 2 retrieves/);
  });

  it("is keyboard navigable and made no request outside the mock", async () => {
    await page.goto(`${server.url}/_mock/ui#environments`);
    await page.reload();
    await page.locator("#view tbody tr").first().waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to the view");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement.id), "main");
    assert.deepEqual(outside, [], "requests outside the mock");
    assert.deepEqual(failures, [], "errors in the page");
  });
});
