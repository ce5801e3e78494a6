// Finding the trigger-mock binary: an explicit path, then $TRIGGER_MOCK_BIN,
// then the platform package installed through optionalDependencies, then
// `trigger-mock` on PATH. The error lists what was tried.
import { accessSync, constants, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);

/** The platform packages, by `${process.platform}-${process.arch}`. */
export const PLATFORM_PACKAGES = Object.freeze({
  "darwin-arm64": "@trigger-mock/darwin-arm64",
  "darwin-x64": "@trigger-mock/darwin-x64",
  "linux-arm64": "@trigger-mock/linux-arm64",
  "linux-x64": "@trigger-mock/linux-x64",
  "win32-x64": "@trigger-mock/win32-x64",
});

/** The binary's file name on this platform. */
export function binaryName(platform = process.platform) {
  return platform === "win32" ? "trigger-mock.exe" : "trigger-mock";
}

function executable(file) {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, process.platform === "win32" ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Thrown when no binary is found; `tried` lists each place, in order, and why it did not do. */
export class BinaryNotFoundError extends Error {
  constructor(tried) {
    super(
      `trigger-mock: no server binary found. Tried:\n${tried.map((t) => `  - ${t}`).join("\n")}\n` +
        "Install the package with its optional dependencies (npm install -D trigger-mock, without --omit=optional), " +
        "set TRIGGER_MOCK_BIN to a binary, or pass { binaryPath }.",
    );
    this.name = "BinaryNotFoundError";
    this.tried = tried;
  }
}

/**
 * Where the binary is, and which rule found it.
 * @param {{ binaryPath?: string, env?: Record<string, string | undefined>, platform?: string, arch?: string }} [options]
 * @returns {{ path: string, source: "option" | "env" | "package" | "path" }}
 */
export function resolveBinary(options = {}) {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const tried = [];
  // An explicit choice that does not work is an error, never a reason to look elsewhere.
  if (options.binaryPath) {
    const file = path.resolve(options.binaryPath);
    if (executable(file)) return { path: file, source: "option" };
    throw new BinaryNotFoundError([`binaryPath option: ${file} is not an executable file`]);
  }
  if (env.TRIGGER_MOCK_BIN) {
    const file = path.resolve(env.TRIGGER_MOCK_BIN);
    if (executable(file)) return { path: file, source: "env" };
    throw new BinaryNotFoundError([`TRIGGER_MOCK_BIN: ${file} is not an executable file`]);
  }
  tried.push("binaryPath option: not given", "TRIGGER_MOCK_BIN: not set");
  const pkg = PLATFORM_PACKAGES[`${platform}-${arch}`];
  if (!pkg) {
    tried.push(`platform package: none is built for ${platform}-${arch}`);
  } else {
    let manifest;
    try {
      manifest = require.resolve(`${pkg}/package.json`);
    } catch {
      tried.push(`platform package ${pkg}: not installed`);
    }
    if (manifest) {
      const file = path.join(path.dirname(manifest), "bin", binaryName(platform));
      if (executable(file)) return { path: file, source: "package" };
      tried.push(`platform package ${pkg}: ${file} is not an executable file`);
    }
  }
  const dirs = (env.PATH ?? env.Path ?? "").split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    const file = path.join(dir, binaryName(platform));
    if (executable(file)) return { path: file, source: "path" };
  }
  tried.push(`PATH: no ${binaryName(platform)} in ${dirs.length} folder(s)`);
  throw new BinaryNotFoundError(tried);
}
