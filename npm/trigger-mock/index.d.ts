// Types of the trigger-mock package. The admin API's shapes and the scenario
// file are generated from the repository's schemas (generated/*.d.ts).
import type {
  Clock,
  ClockChange,
  DashboardRun,
  DashboardRuns,
  Environments,
  DrivenRun,
  Health,
  Journal,
  JournalCleared,
  JournalRecord,
  Reset,
  RunChange,
  Scenarios,
  ScenariosLoaded,
} from "./generated/admin.js";
import type { ScenarioFile } from "./generated/scenario.js";

export type * from "./generated/admin.js";
export type * from "./generated/scenario.js";

/** Options of {@link startTriggerMock}. Each server option maps to one `serve` flag. */
export interface StartOptions {
  /** The binary to run; else $TRIGGER_MOCK_BIN, the platform package, then PATH. */
  binaryPath?: string;
  /** --seed: the same seed, run id and clock give the same body. */
  seed?: number | bigint;
  /** --clock: freeze "now" at this instant (the real time otherwise). */
  clock?: Date | string;
  /** --scenario: paths, `builtin:NAME`, or scenario objects (written to a temp file, removed on stop). */
  scenarios?: Array<string | ScenarioFile>;
  /** --no-generate: only catalogue and scenario runs exist. */
  noGenerate?: boolean;
  /** --secret-key: accept only these keys; the first goes into `env`. */
  secretKeys?: string[];
  /** --reject-public-keys */
  rejectPublicKeys?: boolean;
  /** --not-found-retry: x-should-retry on an unknown run (server default true; false keeps suites fast). */
  notFoundRetry?: boolean;
  /** --rate-limit: the real token bucket per key. */
  rateLimit?: boolean;
  /** --journal-size: requests the journal keeps (0 switches it off). */
  journalSize?: number;
  /** --journal-bytes: the most bytes the journal's records take (8 MiB); the oldest go first. */
  journalBytes?: number;
  /** --key-state-bytes: the most bytes of per-key scenario state (32 MiB); least recently used keys are forgotten first. */
  keyStateBytes?: number;
  /** --watch: reload scenario files when they change. */
  watch?: boolean;
  /** --admin-token: require it on the admin API (the returned `admin` client sends it). */
  adminToken?: string;
  /** --no-admin: switch the admin API off (the `admin` client then gets 404s). */
  noAdmin?: boolean;
  /** --presign-secret */
  presignSecret?: string;
  /** --offload-threshold, in bytes. */
  offloadThreshold?: number;
  /** --header-timeout, in seconds. */
  headerTimeout?: number;
  /** --idle-timeout, in seconds: close connections idle (or not reading their response) this long (60). */
  idleTimeout?: number;
  /** --body-timeout, in seconds: a request body not whole by then gets 408 (30). */
  bodyTimeout?: number;
  /** --max-connections: connections served at once (1000); more wait in the listen backlog. */
  maxConnections?: number;
  /** --workers: threads that serve requests (half the processors, at least 1). */
  workers?: number;
  /** --quiet: no request log on stderr (it is on by default; `output()` keeps its last 64 KiB). */
  quiet?: boolean;
  /** --verbose: a more detailed request log. */
  verbose?: boolean;
  /** --log-format: `text` or `json` (one object per line). */
  logFormat?: "text" | "json";
  /** --max-runs-per-env: runs (and batches) each secret key's environment keeps (1000). */
  maxRunsPerEnv?: number;
  /** --max-envs: environments (keys that created runs) kept (100). */
  maxEnvs?: number;
  /** --max-bytes-per-env: payload, output and metadata bytes kept per environment (64 MiB). */
  maxBytesPerEnv?: number;
  /** --realtime-hold-ms: how long a realtime live poll waits for a change (20 000); shorten it in tests. */
  realtimeHoldMs?: number;
  /** Any other flags, appended last. */
  args?: string[];
  /** Extra environment for the server (merged over process.env). */
  env?: Record<string, string | undefined>;
  /** The server's working directory (relative scenario paths resolve from it). */
  cwd?: string;
  /** How long to wait for the URL line (15 000 ms). */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (5 000 ms). */
  stopTimeoutMs?: number;
}

/** What the SDK reads: spread into process.env, or pass to configure({ baseURL, accessToken }). */
export interface TriggerEnv {
  TRIGGER_API_URL: string;
  TRIGGER_SECRET_KEY: string;
}

/** A running server. */
export interface TriggerMock {
  /** http://127.0.0.1:PORT */
  url: string;
  /** The server process's id. */
  pid: number;
  env: TriggerEnv;
  admin: AdminClient;
  /** Ends this server (SIGTERM, SIGKILL after stopTimeoutMs) and only it; resolves once it has exited. */
  stop(): Promise<{ code: number | null; signal: string | null }>;
  /** What the server printed (the last 64 KiB of each stream). */
  output(): { stdout: string; stderr: string };
  [Symbol.asyncDispose](): Promise<unknown>;
}

/** Spawns `trigger-mock serve` on 127.0.0.1:0 and resolves once it serves. */
export function startTriggerMock(options?: StartOptions): Promise<TriggerMock>;

/** Filters of the journal. */
export interface JournalFilter {
  key?: string;
  runId?: string;
  /** At most this many records: the newest, or with `after`, the first after the cursor (1000 then by default). */
  limit?: number;
  /** Only records with a larger `seq`, oldest first: 0, then the `next` of the previous page. */
  after?: number;
}

/** One operation of the admin API's OpenAPI document. */
export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  query?: readonly string[];
  body?: boolean;
}

/** operationId -> route, as in schemas/admin.openapi.json. */
export const ROUTES: Readonly<Record<string, Route>>;

/** The admin API of one server. Every method rejects with a {@link TriggerMockAdminError} on an error answer. */
export interface AdminClient {
  /** The server's URL. */
  url: string;
  /** Any operation by its operationId (for routes newer than this client). */
  call(
    operationId: string,
    request?: { params?: Record<string, string>; query?: Record<string, unknown>; body?: unknown },
  ): Promise<unknown>;
  /** GET /_mock/health */
  health(): Promise<Health>;
  /** GET /_mock/openapi.json */
  openApi(): Promise<Record<string, unknown>>;
  /** POST /_mock/reset[?key=]: forget one key's scenario state, or every key's. */
  reset(key?: string): Promise<Reset>;
  /** GET /_mock/clock */
  clock(): Promise<Clock>;
  /** POST /_mock/clock with any change. */
  changeClock(change: ClockChange): Promise<Clock>;
  /** Move the clock to an instant. */
  setClock(at: Date | string): Promise<Clock>;
  /** Move the clock on by milliseconds (a number) or a duration such as "10m". */
  advanceClock(by: number | string): Promise<Clock>;
  /** Stop (default) or restart the clock. */
  freezeClock(frozen?: boolean): Promise<Clock>;
  /** GET /_mock/journal: one page; with `after`, `next` is the cursor of the following one while more match. */
  journal(filter?: JournalFilter): Promise<Journal>;
  /** The journal's records alone, oldest first. */
  records(filter?: JournalFilter): Promise<JournalRecord[]>;
  /** Every matching record, oldest first, fetched page by page with the server's cursor (`limit` is the page size). */
  allRecords(filter?: JournalFilter): Promise<JournalRecord[]>;
  /** DELETE /_mock/journal */
  clearJournal(): Promise<JournalCleared>;
  /** GET /_mock/scenarios */
  scenarios(): Promise<Scenarios>;
  /** PUT /_mock/scenarios/NAME: load or replace; an invalid one rejects with `problems`. */
  putScenario(name: string, scenario: ScenarioFile | string): Promise<ScenariosLoaded>;
  /** DELETE /_mock/scenarios/NAME */
  deleteScenario(name: string): Promise<ScenariosLoaded>;
  /** GET /_mock/environments: every key the journal has seen, each with its `env` handle. */
  environments(): Promise<Environments>;
  /** GET /_mock/runs?env=: one environment's runs with their timelines. */
  runs(env: string, filter?: { status?: string; task?: string }): Promise<DashboardRuns>;
  /** GET /_mock/runs/ID[?env=]: one run as that environment sees it, both bodies, its requests. */
  run(id: string, env?: string): Promise<DashboardRun>;
  /** POST /_mock/runs/RUN_ID: move a run created through the API to a status for good (409 once finished). */
  driveRun(runId: string, change: RunChange): Promise<DrivenRun>;
}

export function createAdminClient(baseUrl: string, options?: { token?: string; fetch?: typeof fetch }): AdminClient;

/** An error answer of the admin API. */
export class TriggerMockAdminError extends Error {
  operationId: string;
  /** The HTTP status. */
  status: number;
  /** The answer's JSON, if it was JSON. */
  body: unknown;
  /** The server's message alone. */
  serverMessage: string;
  /** For an invalid scenario: one `NAME:LINE:COLUMN: message` per problem. */
  problems?: string[];
}

/** No binary was found; `tried` says where it was looked for. */
export class BinaryNotFoundError extends Error {
  tried: string[];
}

/** Where the binary is and which rule found it. */
export function resolveBinary(options?: {
  binaryPath?: string;
  env?: Record<string, string | undefined>;
  platform?: string;
  arch?: string;
}): { path: string; source: "option" | "env" | "package" | "path" };

/** `${platform}-${arch}` -> the package carrying the binary. */
export const PLATFORM_PACKAGES: Readonly<Record<string, string>>;

/** StartOptions name -> [flag, kind]. */
export const SERVE_FLAGS: Readonly<Record<string, readonly [string, "value" | "switch" | "bool" | "list" | "instant"]>>;

/** The key `env` carries unless secretKeys is given: tr_dev_trigger_mock. */
export const DEFAULT_SECRET_KEY: string;
