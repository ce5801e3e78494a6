// Binary resolution in each of its modes, and its error.
import assert from "node:assert/strict";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { BinaryNotFoundError, PLATFORM_PACKAGES, resolveBinary } from "../binary.js";
import { binary, PKG_DIR, runNode } from "./helpers.mjs";

const scratch = mkdtempSync(path.join(os.tmpdir(), "trigger-mock-resolve-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

test("an explicit binaryPath wins over everything, and a wrong one is an error", () => {
  const bin = binary();
  assert.deepEqual(resolveBinary({ binaryPath: bin, env: { TRIGGER_MOCK_BIN: "/nope" } }), { path: bin, source: "option" });
  assert.throws(
    () => resolveBinary({ binaryPath: path.join(scratch, "missing"), env: { TRIGGER_MOCK_BIN: bin } }),
    (e) => e instanceof BinaryNotFoundError && /binaryPath option: .*missing is not an executable file/.test(e.message),
  );
});

test("TRIGGER_MOCK_BIN comes next, and a wrong one is an error rather than a fallback", () => {
  const bin = binary();
  assert.deepEqual(resolveBinary({ env: { TRIGGER_MOCK_BIN: bin, PATH: "" } }), { path: bin, source: "env" });
  const notExecutable = path.join(scratch, "plain-file");
  writeFileSync(notExecutable, "");
  chmodSync(notExecutable, 0o644);
  assert.throws(
    () => resolveBinary({ env: { TRIGGER_MOCK_BIN: notExecutable, PATH: path.dirname(bin) } }),
    /TRIGGER_MOCK_BIN: .*plain-file is not an executable file/,
  );
});

test("then trigger-mock on PATH", () => {
  const dir = path.join(scratch, "path-bin");
  mkdirSync(dir);
  symlinkSync(binary(), path.join(dir, "trigger-mock"));
  const found = resolveBinary({ env: { PATH: ["/nonexistent", dir].join(path.delimiter) } });
  assert.deepEqual(found, { path: path.join(dir, "trigger-mock"), source: "path" });
});

test("nothing found: the error lists every place it tried", () => {
  const err = (() => {
    try {
      resolveBinary({ env: { PATH: "/nonexistent" } });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof BinaryNotFoundError, String(err));
  const pkg = PLATFORM_PACKAGES[`${process.platform}-${process.arch}`];
  assert.deepEqual(err.tried, [
    "binaryPath option: not given",
    "TRIGGER_MOCK_BIN: not set",
    `platform package ${pkg}: not installed`,
    "PATH: no trigger-mock in 1 folder(s)",
  ]);
  assert.match(err.message, /TRIGGER_MOCK_BIN/);
  const other = (() => {
    try {
      resolveBinary({ env: { PATH: "" }, platform: "plan9", arch: "mips" });
    } catch (e) {
      return e;
    }
  })();
  assert.match(other.tried[2], /none is built for plan9-mips/);
});

test("the platform package installed beside the package is found (before PATH)", async () => {
  // A project laid out as npm installs it: node_modules/trigger-mock and
  // node_modules/@trigger-mock/<platform>/bin/trigger-mock.
  const project = path.join(scratch, "project");
  const pkgDir = path.join(project, "node_modules", "trigger-mock");
  for (const file of ["package.json", "index.js", "admin.js", "binary.js", "flags.js"]) {
    cpSync(path.join(PKG_DIR, file), path.join(pkgDir, file));
  }
  const name = PLATFORM_PACKAGES[`${process.platform}-${process.arch}`];
  const platformDir = path.join(project, "node_modules", ...name.split("/"));
  mkdirSync(path.join(platformDir, "bin"), { recursive: true });
  writeFileSync(path.join(platformDir, "package.json"), JSON.stringify({ name, version: "0.0.0" }));
  cpSync(binary(), path.join(platformDir, "bin", "trigger-mock"));
  const { code, stdout, stderr } = await runNode(
    `import { resolveBinary, startTriggerMock } from "trigger-mock";
     const found = resolveBinary({ env: { PATH: "${path.dirname(binary())}" } });
     const mock = await startTriggerMock({ env: { TRIGGER_MOCK_BIN: "" } });
     const health = await mock.admin.health();
     await mock.stop();
     console.log(JSON.stringify({ found, status: health.status }));`,
    { cwd: project, env: { ...process.env, TRIGGER_MOCK_BIN: "" } },
  );
  assert.equal(code, 0, stderr);
  const out = JSON.parse(stdout.trim());
  assert.deepEqual(out.found, { path: path.join(platformDir, "bin", "trigger-mock"), source: "package" });
  assert.equal(out.status, "ok");
});
