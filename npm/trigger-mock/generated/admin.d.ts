// Generated from schemas/admin.openapi.json by scripts/generate-types.mjs (npm run generate). Do not edit.

/**
 * An RFC 3339 instant in UTC with milliseconds, e.g. 2026-01-01T00:00:00.000Z
 */
export type Instant = string;

/**
 * Every schema of the admin API's OpenAPI document, by name.
 */
export interface AdminSchemas {
  Error: ErrorAnswer;
  Instant: Instant;
  Health: Health;
  Memory: Memory;
  Reset: Reset;
  Clock: Clock;
  ClockChange: ClockChange;
  TokenSummary: TokenSummary;
  JournalRecord: JournalRecord;
  Journal: Journal;
  JournalCleared: JournalCleared;
  Scenarios: Scenarios;
  ScenariosLoaded: ScenariosLoaded;
  ScenarioInvalid: ScenarioInvalid;
  RunChange: RunChange;
  DrivenRun: DrivenRun;
  Environment: Environment;
  Environments: Environments;
  Timeline: Timeline;
  DashboardRunRow: DashboardRunRow;
  DashboardRuns: DashboardRuns;
  DashboardRun: DashboardRun;
}
/**
 * The body of every error answer
 */
export interface ErrorAnswer {
  /**
   * What went wrong, in one sentence
   */
  error: string;
}
export interface Health {
  status: "ok";
  /**
   * The server's version (the crate's)
   */
  version: string;
  now: Instant;
  /**
   * One summary line per loaded scenario
   */
  scenarios: string[];
  /**
   * The listen backlog the server asked for (the system's maximum, /proc/sys/net/core/somaxconn, or 4096 when it cannot be read); null when the server was embedded on a listener it did not bind
   */
  listenBacklog: number | null;
  memory: Memory;
}
/**
 * The memory of the server's bounded stores, in accounted bytes
 */
export interface Memory {
  /**
   * Records the journal holds
   */
  journalRecords: number;
  /**
   * Bytes the journal's records take, as accounted against journalBudget
   */
  journalBytes: number;
  /**
   * --journal-bytes: the most bytes the journal's records may take; the oldest go first
   */
  journalBudget: number;
  /**
   * Keys with scenario state
   */
  keys: number;
  /**
   * Bytes the per-key scenario state takes, as accounted against keyStateBudget
   */
  keyStateBytes: number;
  /**
   * --key-state-bytes: the most bytes of per-key scenario state; the least recently used keys are forgotten first
   */
  keyStateBudget: number;
}
export interface Reset {
  /**
   * The key reset, or "all"
   */
  reset: string;
}
/**
 * The mock clock; now stays between 0001-01-01T00:00:00.000Z and 9998-12-31T23:59:59.999Z
 */
export interface Clock {
  now: Instant;
  /**
   * now in epoch milliseconds
   */
  nowMs: number;
  frozen: boolean;
}
export interface ClockChange {
  /**
   * Move now to this RFC 3339 instant, between 0001-01-01T00:00:00.000Z and 9998-12-31T23:59:59.999Z
   */
  set?: string;
  /**
   * Move now forward by a duration such as 10m, 1h30m, 500ms (a negative one is refused)
   */
  advance?: string;
  /**
   * Move now forward by this many milliseconds (a negative number is refused)
   */
  advanceMs?: number;
  /**
   * Stop (true) or restart (false) the clock
   */
  freeze?: boolean;
}
/**
 * A public access token's environment and scopes (never the token)
 */
export interface TokenSummary {
  /**
   * The token's sub claim
   */
  environment?: string;
  /**
   * @maxItems 32
   */
  scopes: string[];
  /**
   * False when the token was refused
   */
  valid: boolean;
}
export interface JournalRecord {
  /**
   * 1, 2, 3... in arrival order; never reused, even after a clear
   */
  seq: number;
  at: Instant;
  /**
   * The wall clock when the request arrived, in epoch milliseconds: use it for the spacing of retries
   */
  wallMs: number;
  /**
   * Cut to 256 characters
   */
  method: string;
  /**
   * The path, without the query, cut to 256 characters
   */
  path: string;
  /**
   * The run the request named, cut to 256 characters
   */
  runId?: string;
  /**
   * The first 16 characters of the key the request carried (for a public access token, of its environment's secret key): a journal never holds a whole key
   */
  key?: string;
  token?: TokenSummary;
  /**
   * The status sent, or 0 when the connection was reset instead
   */
  status: number;
  /**
   * The fault applied (label: action), cut to 256 characters
   */
  fault?: string;
  /**
   * Runs the request created or changed besides runId (a batch's first 64, a replay's new run); absent when none
   *
   * @minItems 1
   * @maxItems 64
   */
  runIds?: [string, ...string[]];
  /**
   * The SDK version the client sent (trigger-version), cut to 64 characters
   */
  triggerVersion?: string;
  /**
   * The fields that were cut to their limit; absent when none was
   *
   * @minItems 1
   */
  truncated?: [
    "method" | "path" | "runId" | "key" | "fault" | "triggerVersion",
    ...("method" | "path" | "runId" | "key" | "fault" | "triggerVersion")[]
  ];
}
export interface Journal {
  enabled: boolean;
  records: JournalRecord[];
  /**
   * Only with after, while more records match: the cursor of the following page (pass it as after)
   */
  next?: number;
}
export interface JournalCleared {
  cleared: true;
}
export interface Scenarios {
  /**
   * The scenario sources by name (never a local path)
   */
  sources: string[];
  summaries: string[];
  /**
   * The scripted runs' ids, sorted
   */
  runs: string[];
  /**
   * While the last --watch reload was refused: when (mock clock) and its FILE:LINE:COLUMN problems; else null
   */
  reloadRefused: null | {
    at: Instant;
    problems: string[];
  };
}
export interface ScenariosLoaded {
  loaded: string[];
}
export interface ScenarioInvalid {
  error: string;
  /**
   * NAME:LINE:COLUMN: message
   *
   * @minItems 1
   */
  problems: [string, ...string[]];
}
export interface RunChange {
  /**
   * An engine status, e.g. EXECUTING, COMPLETED_SUCCESSFULLY, COMPLETED_WITH_ERRORS, CRASHED, CANCELED
   */
  status: string;
  /**
   * Only with COMPLETED_SUCCESSFULLY: the run's output
   */
  output?: {
    [k: string]: unknown | undefined;
  };
  /**
   * Only with a failed status: the run's error
   */
  error?: {
    message: string;
    name?: string;
    stackTrace?: string;
  };
}
/**
 * A run body, as retrieve renders it
 */
export interface DrivenRun {
  id: string;
  status: string;
  taskIdentifier: string;
}
export interface Environment {
  /**
   * The environment's handle: 16 hex digits of a hash of its whole key
   */
  env: string;
  /**
   * The key's first 16 characters
   */
  key: string;
  environment: "development" | "staging" | "preview" | "production";
  requests: number;
  /**
   * Answers with a status of 400 or more, or a reset
   */
  errors: number;
  faults: number;
  lastAt: Instant;
  /**
   * Distinct runs it asked for
   */
  runs: number;
  state: null | {
    since: Instant;
  };
  rateLimit: null | {
    limit: number;
    available: number;
    reset: Instant;
  };
}
export interface Environments {
  now: Instant;
  rateLimit: null | {
    limit: number;
    refill: number;
    intervalMs: number;
  };
  /**
   * Every key the journal has seen
   */
  environments: Environment[];
}
export interface Timeline {
  steps: {
    /**
     * An engine status (for a run no scenario drives: CREATED, STARTED, then its status)
     */
    status: string;
    at: Instant;
  }[];
  next:
    | null
    | {
        /**
         * An engine status, e.g. COMPLETED_SUCCESSFULLY
         */
        status: string;
        at: Instant;
      }
    | {
        /**
         * An engine status, e.g. COMPLETED_SUCCESSFULLY
         */
        status: string;
        afterRetrieves: number;
      };
  upcoming: string[];
  expiresAt: null | Instant;
}
export interface DashboardRunRow {
  id: string;
  /**
   * An engine status, e.g. COMPLETED_SUCCESSFULLY
   */
  status: string;
  task: string;
  createdAt: Instant;
  updatedAt: Instant;
  tags: string[];
  /**
   * created: through the API (trigger, batch, replay); scenario: scripted; catalogue: embedded; generated: from its id
   */
  source: "created" | "scenario" | "catalogue" | "generated";
  plan:
    | null
    | {
        /**
         * An engine status, e.g. COMPLETED_SUCCESSFULLY
         */
        status: string;
        until:
          | "forever"
          | {
              retrieves: number;
            }
          | {
              ms: number;
            };
      }[];
  ttlMs: null | number;
  timeline: Timeline;
  /**
   * True when this key has retrieved this scripted run (its timeline is its own)
   */
  seen: boolean;
}
export interface DashboardRuns {
  env: string;
  key: string;
  now: Instant;
  tasks: string[];
  statuses: string[];
  runs: DashboardRunRow[];
  /**
   * True when runs were left out (2000 looked at, 500 listed)
   */
  more: boolean;
}
export interface DashboardRun {
  run: DashboardRunRow;
  bodies: {
    /**
     * The retrieve body for x-trigger-api-version 2025-07-16
     */
    "2025-07-16": {};
    /**
     * The retrieve body without an API version
     */
    none: {};
  };
  packets: {
    payload: null | {
      type: string;
      bytes: number;
    };
    output: null | {
      type: string;
      bytes: number;
    };
  };
  /**
   * This environment's journaled requests for the run
   */
  requests: JournalRecord[];
}
