// Shared by the package's tests: where the repository and the binary are,
// and whether a process is still alive.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const PKG_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = path.resolve(PKG_DIR, "..", "..");

/** The binary under test: $TRIGGER_MOCK_BIN or the debug build. */
export function binary() {
  const bin = process.env.TRIGGER_MOCK_BIN
    ? path.resolve(process.env.TRIGGER_MOCK_BIN)
    : path.join(REPO_ROOT, "target", "debug", "trigger-mock");
  if (!existsSync(bin)) throw new Error(`no binary at ${bin}: run cargo build or set TRIGGER_MOCK_BIN`);
  return bin;
}

/** True while `pid` is a live process (a zombie counts as gone). */
export function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\S+ \(.*\) Z/.test(stat);
  } catch {
    return existsSync(`/proc`) ? false : true;
  }
}

/** Waits until `pid` is gone; false when it is still there after `ms`. */
export async function gone(pid, ms = 10_000) {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !alive(pid);
}

/**
 * Runs an ES module in a fresh node process; `onLine` sees each stdout line
 * (and may act on the child). Resolves to { code, signal, stdout, stderr }.
 */
export function runNode(source, { cwd = PKG_DIR, env = process.env, onLine = () => {}, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "--eval", source], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let pending = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf("\n")) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        onLine(line, child);
      }
    });
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The crate's version, from Cargo.toml. */
export function crateVersion() {
  const toml = readFileSync(path.join(REPO_ROOT, "Cargo.toml"), "utf8");
  const m = /^\[package\][^[]*?^version\s*=\s*"([^"]+)"/ms.exec(toml);
  if (!m) throw new Error("no version in Cargo.toml");
  return m[1];
}
