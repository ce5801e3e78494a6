// The package's generated types are up to date and compile, and its version
// moves with the crate's.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { PLATFORM_PACKAGES } from "../binary.js";
import { crateVersion, PKG_DIR, REPO_ROOT } from "./helpers.mjs";

const run = promisify(execFile);
const manifest = JSON.parse(readFileSync(path.join(PKG_DIR, "package.json"), "utf8"));

test("generated/*.d.ts are what the schemas generate", async () => {
  await run(process.execPath, [path.join(PKG_DIR, "scripts", "generate-types.mjs"), "--check"], { cwd: PKG_DIR });
});

test("the declarations compile, and a scenario in TypeScript is checked against the schema's types", async () => {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const result = await run(process.execPath, [tsc, "-p", path.join(PKG_DIR, "test", "types", "tsconfig.json")], {
    cwd: PKG_DIR,
  }).catch((e) => e);
  assert.equal(result.code ?? 0, 0, `${result.stdout}${result.stderr}`);
});

test("versions agree: crate, package, platform packages, OpenAPI document", () => {
  const version = crateVersion();
  assert.equal(manifest.version, version);
  assert.deepEqual(Object.keys(manifest.optionalDependencies).sort(), Object.values(PLATFORM_PACKAGES).sort());
  for (const [name, range] of Object.entries(manifest.optionalDependencies)) {
    assert.equal(range, version, `${name} is pinned to the crate's version`);
  }
  const doc = JSON.parse(readFileSync(path.join(REPO_ROOT, "schemas", "admin.openapi.json"), "utf8"));
  assert.equal(doc.info.version, version);
});

test("the package has no runtime dependencies and ships every module it imports", () => {
  assert.equal(manifest.dependencies, undefined);
  for (const entry of ["index.js", "admin.js", "binary.js", "bin/trigger-mock.js"]) {
    const source = readFileSync(path.join(PKG_DIR, entry), "utf8");
    for (const [, spec] of source.matchAll(/from "(\.{1,2}\/[^"]+)"/g)) {
      const file = path.relative(PKG_DIR, path.resolve(PKG_DIR, path.dirname(entry), spec));
      assert.ok(manifest.files.includes(file), `${entry} imports ${file}, which "files" leaves out`);
    }
  }
});

test("StartOptions in index.d.ts declares every option startTriggerMock takes", async () => {
  const { SERVE_FLAGS } = await import("../flags.js");
  const dts = readFileSync(path.join(PKG_DIR, "index.d.ts"), "utf8");
  const body = /export interface StartOptions \{([\s\S]*?)\n\}/.exec(dts)[1];
  const declared = [...body.matchAll(/^ {2}(\w+)\?:/gm)].map((m) => m[1]).sort();
  const own = ["binaryPath", "scenarios", "args", "env", "cwd", "startTimeoutMs", "stopTimeoutMs"];
  assert.deepEqual(declared, [...own, ...Object.keys(SERVE_FLAGS)].sort());
});
