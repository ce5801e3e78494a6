// Generated from schemas/scenario.schema.json by scripts/generate-types.mjs (npm run generate). Do not edit.

/**
 * A scenario for trigger-mock: runs that exist (optionally moving through a scripted lifecycle), faults injected into answers, and a rate limit. Pass it with --scenario FILE, or check it with `trigger-mock validate FILE`. The Rust types in src/scenario/format.rs and src/catalogue.rs define the format; this schema describes the same format for editors. Unknown keys are refused everywhere, so a misspelled key is reported rather than ignored. Some rules cannot be written as a schema (the order of lifecycle steps, which step is last, duplicate run ids, a parent that exists): `trigger-mock validate` checks those.
 */
export interface ScenarioFile {
  /**
   * Where editors find this schema, e.g. a relative path to schemas/scenario.schema.json. The server ignores it.
   */
  $schema?: string;
  /**
   * Version of the scenario format. Only version 1 exists.
   */
  version: 1;
  /**
   * What the scenario is for, in one line. It is shown next to the file's name when the server starts and by `trigger-mock scenarios`.
   */
  description?: string;
  /**
   * Runs this file defines. Each needs an `id`; any field left out is generated, exactly as for an unknown id. A run defined here replaces a catalogue run with the same id, and an id may be defined by only one scenario file.
   */
  runs?: Run[];
  /**
   * Faults to inject. For each request they are tried in the order written; the first one that matches and fires decides the answer.
   */
  faults?: Fault[];
  /**
   * How the runs of a task behave once the application triggers them (`tasks.trigger`, `batch.trigger`, replay). A task no file names is picked up at once, executes until the first retrieve has seen it, then completes with its payload as output. A task id may be defined by only one scenario file.
   */
  tasks?: Task[];
  rateLimit?: RateLimit;
}
/**
 * One run. Only `id` is required; every field that is left out is generated from the seed and the id. Give either `status` (the run stays in it) or `lifecycle` (the run moves through steps), not both; with neither, the status comes from the id convention (`run_<status>_…`) or the seed.
 */
export interface Run {
  /**
   * The run's id, used in GET /api/v3/runs/{runId}: `run_` followed by 1 to 124 lower-case letters, digits and underscores.
   */
  id: string;
  /**
   * A one-line note about the run, shown by `trigger-mock catalogue`. It is never sent to clients.
   */
  description?: string;
  /**
   * The engine status the run holds, unchanged for its whole life. Cannot be combined with `lifecycle`.
   */
  status?:
    | "DELAYED"
    | "PENDING_VERSION"
    | "WAITING_FOR_DEPLOY"
    | "PENDING"
    | "DEQUEUED"
    | "EXECUTING"
    | "RETRYING_AFTER_FAILURE"
    | "PAUSED"
    | "WAITING_TO_RESUME"
    | "COMPLETED_SUCCESSFULLY"
    | "CANCELED"
    | "COMPLETED_WITH_ERRORS"
    | "INTERRUPTED"
    | "CRASHED"
    | "SYSTEM_FAILURE"
    | "EXPIRED"
    | "TIMED_OUT";
  /**
   * The id of the task the run belongs to.
   */
  taskIdentifier?: string;
  /**
   * The idempotency key the run was triggered with.
   */
  idempotencyKey?: string;
  /**
   * The worker version the run is locked to, in the API's form YYYYMMDD.N.
   */
  version?: string;
  /**
   * True for a run started from the dashboard's test page.
   */
  isTest?: boolean;
  /**
   * How long the run may wait in the queue before it expires, e.g. `10m`. A queued scenario run becomes EXPIRED once this much mock-clock time has passed; a lifecycle whose first step is EXPIRED needs it.
   */
  ttl?: string;
  /**
   * The run's tags. They are sent sorted and without duplicates.
   */
  tags?: string[];
  /**
   * The run's metadata: any JSON object.
   */
  metadata?: {};
  /**
   * The payload the run was triggered with: any JSON value, stored as application/json. It is the same as a `payloadPacket` with this value as `data`, so a payload of 512 KiB or more is offloaded behind a presigned URL. Cannot be combined with `payloadPacket`. A scheduled run without either gets the schedule payload.
   */
  payload?: unknown;
  payloadPacket?: Packet;
  /**
   * What the task returned: any JSON value, stored as application/json (a packet with this value as `data`; 512 KiB or more is offloaded). Only a run that ends COMPLETED_SUCCESSFULLY may have one; it is sent once the run is completed. Cannot be combined with `outputPacket`.
   */
  output?: unknown;
  outputPacket?: Packet1;
  error?: Error;
  schedule?: Schedule;
  /**
   * The id of the batch the run belongs to. It goes together with a batch `triggerFunction`.
   */
  batchId?: string;
  /**
   * The region the run executes in.
   */
  region?: string;
  /**
   * The id of the run that triggered this one. That run must be defined too (in a scenario file or the catalogue); root, depth and the parent's children are worked out from it.
   */
  parent?: string;
  /**
   * How the run was triggered. The batch functions need a `batchId` and the others must not have one; `triggerAndWait` and `batchTriggerAndWait` need a `parent`. When left out it follows from `batchId` and from whether the parent is waiting.
   */
  triggerFunction?: "trigger" | "triggerAndWait" | "batchTrigger" | "batchTriggerAndWait";
  /**
   * How many attempts the run has made.
   */
  attemptCount?: number;
  /**
   * The compute cost so far, in cents; not negative. Development keys always see 0.
   */
  costInCents?: number;
  /**
   * The invocation cost, in cents; not negative. Development keys always see 0.
   */
  baseCostInCents?: number;
  /**
   * The compute time so far, in milliseconds.
   */
  durationMs?: number;
  /**
   * The statuses the run goes through, one step after another. Every step except the last needs `retrieves` or `for`; the last step lasts forever (unless it is DELAYED, which is then followed by PENDING). Steps must follow the run's real transitions: nothing comes after a final status and a status is not repeated in a row. Cannot be combined with `status`.
   *
   * @minItems 1
   */
  lifecycle?: [Step, ...Step[]];
}
/**
 * The payload as a packet, for what `payload` cannot say: a SuperJSON or text payload, one generated to a size, one read from a file next to the scenario, or control over offloading and the presigned URL. Cannot be combined with `payload`.
 */
export interface Packet {
  /**
   * The packet's data type. `application/json` (the default): JSON. `application/super+json`: SuperJSON, an object with the value in `json` and notes in `meta` from which the SDK rebuilds Dates, BigInts, Maps and Sets; inline, the API shows only the `json` part. `text/plain`: text, shown inline as a string.
   */
  type?: "application/json" | "application/super+json" | "text/plain";
  /**
   * The content, written out: any JSON value for application/json (but not null, which counts as left out), an object with `json` (and optionally `meta`) for application/super+json, a string for text/plain. Give exactly one of `data`, `size` and `file`.
   */
  data?: unknown;
  /**
   * Generate valid content of exactly this size instead of writing it out: JSON records, a SuperJSON document holding a Date, or lines of text. Bytes as a whole number, or a string with a unit such as `512KiB`, `5 MiB` or `2GB`. At most 64 GiB; an application/json packet has at least 38 bytes and an application/super+json one at least 110. Give exactly one of `data`, `size` and `file`.
   */
  size?: number | string;
  /**
   * Read the content from this file: a path relative to the scenario file's folder and below it, with `/` between folders, no leading `/` or `./`, no `..` step, and no symbolic link that leads out. It is checked when the scenario loads, so only a scenario file on disk (not a built-in) can name one, and a packet sent inline must hold valid content for its type (JSON for the two JSON types). Give exactly one of `data`, `size` and `file`.
   */
  file?: string;
  /**
   * Whether the API sends the packet inline or offloads it behind a presigned URL. `auto` (the default): offloaded at 512 KiB or more (the server's --offload-threshold). `always`: offloaded whatever its size. `never`: always inline; the whole packet is then built in memory at start-up, so keep it small.
   */
  offload?: "auto" | "always" | "never";
  /**
   * What the presigned URL of an offloaded packet does; an inline packet has no URL. `valid` (the default): it serves the packet, byte ranges included, until it expires 300 s (mock-clock time) after it was signed. `expired`: it is signed already expired, so it gets S3's 403 AccessDenied. `notFound`: the object is missing, S3's 404 NoSuchKey. `truncated`: a complete 200 response holding only the first half of the packet.
   */
  url?: "valid" | "expired" | "notFound" | "truncated";
}
/**
 * What the task returned, as a packet (see `payloadPacket`). Cannot be combined with `output`. Only a run that ends COMPLETED_SUCCESSFULLY may have one; it is sent once the run is completed. Unlike `output`, it does not make a run without `status` or `lifecycle` a completed one, so give one of them (or an id such as `run_completed_…`).
 */
export interface Packet1 {
  /**
   * The packet's data type. `application/json` (the default): JSON. `application/super+json`: SuperJSON, an object with the value in `json` and notes in `meta` from which the SDK rebuilds Dates, BigInts, Maps and Sets; inline, the API shows only the `json` part. `text/plain`: text, shown inline as a string.
   */
  type?: "application/json" | "application/super+json" | "text/plain";
  /**
   * The content, written out: any JSON value for application/json (but not null, which counts as left out), an object with `json` (and optionally `meta`) for application/super+json, a string for text/plain. Give exactly one of `data`, `size` and `file`.
   */
  data?: unknown;
  /**
   * Generate valid content of exactly this size instead of writing it out: JSON records, a SuperJSON document holding a Date, or lines of text. Bytes as a whole number, or a string with a unit such as `512KiB`, `5 MiB` or `2GB`. At most 64 GiB; an application/json packet has at least 38 bytes and an application/super+json one at least 110. Give exactly one of `data`, `size` and `file`.
   */
  size?: number | string;
  /**
   * Read the content from this file: a path relative to the scenario file's folder and below it, with `/` between folders, no leading `/` or `./`, no `..` step, and no symbolic link that leads out. It is checked when the scenario loads, so only a scenario file on disk (not a built-in) can name one, and a packet sent inline must hold valid content for its type (JSON for the two JSON types). Give exactly one of `data`, `size` and `file`.
   */
  file?: string;
  /**
   * Whether the API sends the packet inline or offloads it behind a presigned URL. `auto` (the default): offloaded at 512 KiB or more (the server's --offload-threshold). `always`: offloaded whatever its size. `never`: always inline; the whole packet is then built in memory at start-up, so keep it small.
   */
  offload?: "auto" | "always" | "never";
  /**
   * What the presigned URL of an offloaded packet does; an inline packet has no URL. `valid` (the default): it serves the packet, byte ranges included, until it expires 300 s (mock-clock time) after it was signed. `expired`: it is signed already expired, so it gets S3's 403 AccessDenied. `notFound`: the object is missing, S3's 404 NoSuchKey. `truncated`: a complete 200 response holding only the first half of the packet.
   */
  url?: "valid" | "expired" | "notFound" | "truncated";
}
/**
 * The error the run failed with. Only a run that ends in a failed status (COMPLETED_WITH_ERRORS, INTERRUPTED, CRASHED, SYSTEM_FAILURE or TIMED_OUT) may have one; it is sent once the run has failed.
 */
export interface Error {
  /**
   * The error's message.
   */
  message: string;
  /**
   * The error's class name.
   */
  name?: string;
  /**
   * The stack trace, as one string with newlines.
   */
  stackTrace?: string;
}
/**
 * The schedule that triggered the run.
 */
export interface Schedule {
  /**
   * The schedule's id, by convention `sched_` followed by letters and digits.
   */
  id: string;
  /**
   * The id your own system gave the schedule, e.g. a user id.
   */
  externalId?: string;
  /**
   * The key that keeps the schedule from being created twice.
   */
  deduplicationKey?: string;
  /**
   * What produces the schedule's times. The API knows only CRON generators.
   */
  generator: {
    /**
     * The kind of generator; always `CRON`.
     */
    type: "CRON";
    /**
     * The cron expression.
     */
    expression: string;
    /**
     * The cron expression in words.
     */
    description: string;
  };
}
/**
 * One lifecycle step: a status and how long the run stays in it, counted in retrieves (`retrieves`) or in mock-clock time (`for`). Give at most one of the two; the last step gives neither.
 */
export interface Step {
  /**
   * The engine status during this step. A DELAYED step needs `for`, which sets the run's delayedUntil.
   */
  status:
    | "DELAYED"
    | "PENDING_VERSION"
    | "WAITING_FOR_DEPLOY"
    | "PENDING"
    | "DEQUEUED"
    | "EXECUTING"
    | "RETRYING_AFTER_FAILURE"
    | "PAUSED"
    | "WAITING_TO_RESUME"
    | "COMPLETED_SUCCESSFULLY"
    | "CANCELED"
    | "COMPLETED_WITH_ERRORS"
    | "INTERRUPTED"
    | "CRASHED"
    | "SYSTEM_FAILURE"
    | "EXPIRED"
    | "TIMED_OUT";
  /**
   * The step ends after the caller has retrieved the run this many times (at least 1). Each caller (API key) has its own count.
   */
  retrieves?: number;
  /**
   * The step ends once this much mock-clock time has passed since it began, e.g. `30s` or `10m`.
   */
  for?: string;
}
/**
 * A fault: which requests it matches (`runId`, `route`), when it fires (`nth`, or `after` and `times`, and `probability`) and what it does (`delayMs`, `action`, or both).
 */
export interface Fault {
  /**
   * Only requests for runs whose id matches this glob: `*` stands for any characters, `?` for one. When left out, requests for any run (and requests with no run) match.
   */
  runId?: string;
  /**
   * Which route the fault applies to: `retrieve` (GET /api/v3/runs/{runId}), `trigger` (POST /api/v1/tasks/{taskId}/trigger), `batches` (the batch routes), `list` (GET /api/v1/runs), `cancel`, `replay`, `reschedule`, `realtime` (the realtime feeds GET /realtime/v1/runs/{runId}, /realtime/v1/runs?tags=… and /realtime/v1/batches/{batchId}; only the first has a run id, so a fault with `runId` matches only it) or `any` API route (the default).
   */
  route?:
    "retrieve" | "trigger" | "batches" | "list" | "cancel" | "replay" | "reschedule" | "realtime" | "any";
  /**
   * Fire on the nth matching request only, counting from 1 (each API key is counted separately). It says the same as `after: nth - 1, times: 1`, so it cannot be combined with `after` or `times`.
   */
  nth?: number;
  /**
   * Let this many matching requests through unchanged before the fault can fire (counted per API key).
   */
  after?: number;
  /**
   * Fire on at most this many matching requests (per API key); no limit when left out.
   */
  times?: number;
  /**
   * The chance, from 0 to 1, that the fault fires on a request that matches. Each matching request draws anew, from the seed, the API key and the request's position, so a run of the tests is repeatable.
   */
  probability?: number;
  /**
   * Wait this many milliseconds before answering (with the `action`, or with the normal answer when there is no action).
   */
  delayMs?: number;
  action?: Action;
}
/**
 * What to answer instead of the normal answer. With no action the fault only adds `delayMs`.
 */
export interface Action {
  /**
   * status: any status, body and headers. notFound: the API's 404. rateLimit: the API's 429. serverError: a 5xx with the API's body. reset: the connection is reset before any response. closeMidBody: the headers and half the body, then the connection closes. truncate: a complete response whose JSON is cut in half. malformed: a complete response whose body is not JSON. breakSchema: a 200 whose run has a status no SDK knows. dribble: the normal answer, sent a few bytes at a time.
   */
  type:
    | "status"
    | "notFound"
    | "rateLimit"
    | "serverError"
    | "reset"
    | "closeMidBody"
    | "truncate"
    | "malformed"
    | "breakSchema"
    | "dribble";
}
/**
 * One task: the lifecycle of its triggered runs and what they end with. Every field but `id` is optional.
 */
export interface Task {
  /**
   * The task identifier, as `tasks.trigger(id, …)` names it.
   */
  id: string;
  /**
   * What the task stands for, for people.
   */
  description?: string;
  /**
   * The statuses a triggered run goes through, with the same steps as a run's lifecycle. The run is created queued (PENDING); a first step that is running (e.g. EXECUTING) is entered the moment the run is triggered. The first step may be neither DELAYED (a trigger's `delay` puts one in front) nor a finished status. Default: EXECUTING for 1 retrieve, then COMPLETED_SUCCESSFULLY.
   *
   * @minItems 1
   */
  lifecycle?: [Step, ...Step[]];
  /**
   * A fixed output, shown once a run completes. Only for a lifecycle that ends COMPLETED_SUCCESSFULLY; not with `outputFrom`.
   */
  output?: unknown;
  /**
   * Where the output comes from when `output` is not given: `payload` (the run's own payload, the default), `generated` (from the seed and the run id) or `none`.
   */
  outputFrom?: "payload" | "generated" | "none";
  error?: Error1;
  /**
   * The worker version a started run shows.
   */
  version?: string;
  /**
   * The attempt count a finished run shows.
   */
  attemptCount?: number;
  /**
   * The compute duration, in milliseconds, a finished run shows.
   */
  durationMs?: number;
  /**
   * The compute cost a finished run shows, in cents; not negative. Development keys always see 0.
   */
  costInCents?: number;
  /**
   * The invocation cost a finished run shows, in cents; not negative. Development keys always see 0.
   */
  baseCostInCents?: number;
}
/**
 * The error a run that fails shows. Only for a lifecycle that ends in a failed status.
 */
export interface Error1 {
  /**
   * The error's message.
   */
  message: string;
  /**
   * The error's class name.
   */
  name?: string;
  /**
   * The stack trace, as one string with newlines.
   */
  stackTrace?: string;
}
/**
 * A token bucket per API key, as the real API applies. Keys left out take the real API's defaults. Only one scenario file may set a rate limit.
 */
export interface RateLimit {
  /**
   * The bucket's size, at least 1.
   */
  limit?: number;
  /**
   * Tokens added back every `interval`, at least 1.
   */
  refill?: number;
  /**
   * How often tokens are added back, e.g. `10s`.
   */
  interval?: string;
}
