// The options of startTriggerMock that become `serve` flags: one line each.
// A test checks every flag here is one `trigger-mock serve --help` lists.

/**
 * option name -> [flag, kind]. Kinds: `value` (--flag VALUE), `switch`
 * (--flag when true), `bool` (--flag true|false), `list` (--flag V per item),
 * `instant` (a Date or an RFC 3339 string).
 */
export const SERVE_FLAGS = Object.freeze({
  seed: ["--seed", "value"],
  clock: ["--clock", "instant"],
  noGenerate: ["--no-generate", "switch"],
  secretKeys: ["--secret-key", "list"],
  rejectPublicKeys: ["--reject-public-keys", "switch"],
  notFoundRetry: ["--not-found-retry", "bool"],
  rateLimit: ["--rate-limit", "switch"],
  journalSize: ["--journal-size", "value"],
  journalBytes: ["--journal-bytes", "value"],
  keyStateBytes: ["--key-state-bytes", "value"],
  watch: ["--watch", "switch"],
  adminToken: ["--admin-token", "value"],
  noAdmin: ["--no-admin", "switch"],
  presignSecret: ["--presign-secret", "value"],
  offloadThreshold: ["--offload-threshold", "value"],
  headerTimeout: ["--header-timeout", "value"],
  idleTimeout: ["--idle-timeout", "value"],
  bodyTimeout: ["--body-timeout", "value"],
  maxConnections: ["--max-connections", "value"],
  workers: ["--workers", "value"],
  quiet: ["--quiet", "switch"],
  verbose: ["--verbose", "switch"],
  logFormat: ["--log-format", "value"],
  maxRunsPerEnv: ["--max-runs-per-env", "value"],
  maxEnvs: ["--max-envs", "value"],
  maxBytesPerEnv: ["--max-bytes-per-env", "value"],
  realtimeHoldMs: ["--realtime-hold-ms", "value"],
});

/** The flags for `options` (unknown options are ignored here; the caller has checked them). */
export function serveFlags(options) {
  const args = [];
  for (const [name, [flag, kind]] of Object.entries(SERVE_FLAGS)) {
    const value = options[name];
    if (value === undefined || value === null) continue;
    switch (kind) {
      case "switch":
        if (value) args.push(flag);
        break;
      case "bool":
        args.push(flag, value ? "true" : "false");
        break;
      case "list":
        for (const item of value) args.push(flag, String(item));
        break;
      case "instant":
        args.push(flag, value instanceof Date ? value.toISOString() : String(value));
        break;
      default:
        args.push(flag, String(value));
    }
  }
  return args;
}
