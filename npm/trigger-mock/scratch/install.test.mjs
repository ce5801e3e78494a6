// Packaging, proven as a user would see it: pack both packages (the debug
// binary, to spare a release build), install the tarballs into a fresh
// project with npm, and run a vitest suite there that drives the real SDK
// against the mock. Only vitest and the SDK come from the registry (from the
// committed lockfile, usually out of npm's cache); the tarballs install with
// --offline.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..", "..");

/** Pids of live processes whose executable lies under `dir`. */
function serversFrom(dir) {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/exe`).startsWith(dir);
      } catch {
        return false;
      }
    });
}

test("the packed tarballs install into a fresh project and its vitest suite passes", { timeout: 600_000 }, async () => {
  const project = mkdtempSync(path.join(os.tmpdir(), "trigger-mock-scratch-"));
  try {
    const out = path.join(project, "dist");
    const bin = process.env.TRIGGER_MOCK_BIN || path.join(repo, "target", "debug", "trigger-mock");
    const packed = await run(path.join(repo, "scripts", "npm-pack"), ["--bin", bin, "--out", out], { cwd: repo });
    const tarballs = packed.stdout.trim().split("\n");
    assert.equal(tarballs.length, 2, packed.stdout);
    for (const file of ["package.json", "package-lock.json", "vitest.config.ts", "global-setup.ts", "app.test.ts", "global.test.ts", "per-test.test.ts"]) {
      cpSync(path.join(here, file), path.join(project, file));
    }
    // The user's environment, without our own overrides: the binary must come from the platform package.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TRIGGER_") && !k.startsWith("NODE_TEST")));
    const npm = (args) => run("npm", args, { cwd: project, env, maxBuffer: 16 * 1024 * 1024 });
    await npm(["ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]);
    await npm(["install", "--no-save", "--offline", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs]);
    const result = await run(path.join(project, "node_modules", ".bin", "vitest"), ["run", "--reporter=verbose"], {
      cwd: project,
      env: { ...env, CI: "1", NO_COLOR: "1", FORCE_COLOR: "0" },
    }).catch((e) => e);
    assert.equal(result.code ?? 0, 0, `vitest failed:\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /Tests +5 passed \(5\)/, result.stdout);
    // Every server the suite started (global, per test, per file) has ended.
    assert.deepEqual(serversFrom(project), [], "servers left running by the vitest run");
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
});
