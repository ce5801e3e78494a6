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
}
export interface Reset {
  /**
   * The key reset, or "all"
   */
  reset: string;
}
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
   * Move now to this RFC 3339 instant
   */
  set?: string;
  /**
   * Move now forward by a duration such as 10m, 1h30m, 500ms
   */
  advance?: string;
  /**
   * Move now by this many milliseconds (may be negative)
   */
  advanceMs?: number;
  /**
   * Stop (true) or restart (false) the clock
   */
  freeze?: boolean;
}
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
  method: string;
  path: string;
  runId?: string;
  /**
   * The secret key, or for a public access token the secret key of its environment
   */
  key?: string;
  token?: TokenSummary;
  /**
   * The status sent, or 0 when the connection was reset instead
   */
  status: number;
  /**
   * The fault applied (label: action)
   */
  fault?: string;
}
export interface Journal {
  enabled: boolean;
  records: JournalRecord[];
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
