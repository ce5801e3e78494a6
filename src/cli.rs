//! Command-line flags (their doc comments are the `--help` text) and their
//! conversion into one validated [`Config`].

use crate::auth::{AuthPolicy, Environment, KeyKind};
use crate::clock::Clock;
use crate::config::{AdminAccess, Config};
use crate::model::ApiVersion;
use crate::time::Millis;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;

/// A deterministic test double for the Trigger.dev runs API.
///
/// With no subcommand, `serve` runs.
#[derive(Debug, Parser)]
#[command(name = "trigger-mock", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// List the embedded catalogue of named runs.
    Catalogue(CatalogueArgs),
    /// Print exactly the body the server would send for a run.
    Render(RenderArgs),
    /// Check scenario files: exit 0 when all are valid, else print FILE:LINE:COLUMN: message and exit 2.
    Validate(ValidateArgs),
    /// List the built-in scenarios, or print one to start from.
    Scenarios(ScenariosArgs),
}

/// Flags of `validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Scenario files (or builtin:NAME).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

/// Flags of `scenarios`.
#[derive(Debug, Clone, Args)]
pub struct ScenariosArgs {
    /// Print this built-in scenario instead of the list.
    #[arg(value_name = "NAME")]
    pub show: Option<String>,
}

/// Flags that decide which runs exist and what they look like.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Seed of generated runs: the same seed, run id and clock give the same body.
    #[arg(long, env = "TRIGGER_MOCK_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Freeze "now" at this RFC 3339 instant (e.g. 2026-01-01T00:00:00Z); the real time otherwise.
    #[arg(long, env = "TRIGGER_MOCK_CLOCK", value_name = "RFC3339")]
    pub clock: Option<String>,
    /// Generate no runs: only catalogue and scenario runs exist and every other id is a 404.
    #[arg(long, env = "TRIGGER_MOCK_NO_GENERATE")]
    pub no_generate: bool,
    /// A scenario file, or builtin:NAME (repeatable; comma-separated in the variable).
    #[arg(long = "scenario", env = "TRIGGER_MOCK_SCENARIOS", value_delimiter = ',', value_name = "PATH")]
    pub scenarios: Vec<String>,
    /// The secret that signs presigned packet URLs. Random per process when absent; set it (with
    /// --seed and --clock) for byte-identical URLs.
    #[arg(long, env = "TRIGGER_MOCK_PRESIGN_SECRET", value_name = "SECRET")]
    pub presign_secret: Option<String>,
    /// Packets of this many bytes or more are offloaded behind presigned URLs (the server's 512 KiB).
    #[arg(long, env = "TRIGGER_MOCK_OFFLOAD_THRESHOLD", default_value_t = trigger_mock_threshold(), value_name = "BYTES")]
    pub offload_threshold: u64,
}

const fn trigger_mock_threshold() -> u64 {
    crate::world::DEFAULT_OFFLOAD_THRESHOLD
}

/// Flags of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TRIGGER_MOCK_ADDR", default_value = "127.0.0.1:3033", value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub runs: RunArgs,
    /// How long a realtime live long-poll waits for a change before it answers "no change"
    /// (the server's 20 s). Shorten it in tests that must see idle polls end.
    #[arg(long, env = "TRIGGER_MOCK_REALTIME_HOLD_MS", default_value_t = 20_000, value_name = "MS")]
    pub realtime_hold_ms: u64,
    /// Accept only these exact secret keys (repeatable; comma-separated in the variable).
    /// Without it, any key starting with tr_dev_, tr_prod_, tr_stg_ or tr_preview_ is accepted.
    #[arg(long = "secret-key", env = "TRIGGER_MOCK_SECRET_KEYS", value_delimiter = ',', value_name = "KEY")]
    pub secret_keys: Vec<String>,
    /// Refuse public keys (pk_…) with 401, as today's server does. By default they get the
    /// documented behaviour: 200 without payload and output.
    #[arg(long, env = "TRIGGER_MOCK_REJECT_PUBLIC_KEYS")]
    pub reject_public_keys: bool,
    /// The x-should-retry header on the 404 of an unknown run. `true` is what production sends
    /// (the SDK then retries for about 9 s); `false` keeps test suites fast.
    #[arg(long, env = "TRIGGER_MOCK_NOT_FOUND_RETRY", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub not_found_retry: bool,
    /// Rate-limit every key with the real server's token bucket (750, refilled by 250 every 10 s),
    /// unless a scenario sets its own. Off by default.
    #[arg(long, env = "TRIGGER_MOCK_RATE_LIMIT")]
    pub rate_limit: bool,
    /// How many requests the journal keeps (GET /_mock/journal); 0 switches it off.
    #[arg(long, env = "TRIGGER_MOCK_JOURNAL_SIZE", default_value_t = crate::config::DEFAULT_JOURNAL_SIZE, value_name = "N")]
    pub journal_size: usize,
    /// The most bytes the journal's records may take; the oldest go first.
    #[arg(long, env = "TRIGGER_MOCK_JOURNAL_BYTES", default_value_t = crate::journal::DEFAULT_JOURNAL_BYTES, value_name = "BYTES")]
    pub journal_bytes: usize,
    /// The most bytes the per-key scenario state may take; the least recently used keys are
    /// forgotten first (a forgotten key starts afresh, as a new key).
    #[arg(long, env = "TRIGGER_MOCK_KEY_STATE_BYTES", default_value_t = crate::keys::DEFAULT_KEY_STATE_BYTES, value_name = "BYTES")]
    pub key_state_bytes: usize,
    /// Reload scenario files when they change; an invalid edit is reported and the previous version keeps serving.
    #[arg(long, env = "TRIGGER_MOCK_WATCH")]
    pub watch: bool,
    /// Require `Authorization: Bearer TOKEN` on the admin API (/_mock/).
    #[arg(long, env = "TRIGGER_MOCK_ADMIN_TOKEN", value_name = "TOKEN", conflicts_with = "no_admin")]
    pub admin_token: Option<String>,
    /// Switch the admin API (/_mock/) off.
    #[arg(long, env = "TRIGGER_MOCK_NO_ADMIN")]
    pub no_admin: bool,
    /// Close connections whose request headers take longer than this many seconds (slow clients).
    #[arg(long, env = "TRIGGER_MOCK_HEADER_TIMEOUT", default_value_t = 30.0, value_name = "SECONDS")]
    pub header_timeout: f64,
    /// Close connections (HTTP/1.1 and HTTP/2) that have had no request in flight, or whose client has
    /// taken nothing of its response, for this many seconds.
    #[arg(long, env = "TRIGGER_MOCK_IDLE_TIMEOUT", default_value_t = 60.0, value_name = "SECONDS")]
    pub idle_timeout: f64,
    /// Answer 408 when a request body has not arrived whole within this many seconds.
    #[arg(long, env = "TRIGGER_MOCK_BODY_TIMEOUT", default_value_t = 30.0, value_name = "SECONDS")]
    pub body_timeout: f64,
    /// Serve at most this many connections at once; further clients wait in the listen backlog
    /// until one closes.
    #[arg(long, env = "TRIGGER_MOCK_MAX_CONNECTIONS", default_value_t = crate::config::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// Threads that serve requests. The default is half the processors (at least one): the
    /// mock listens on loopback, so its clients share the machine, and on a shared machine
    /// fewer workers answer sooner and spend less CPU per request.
    #[arg(long, env = "TRIGGER_MOCK_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Print no request log on stderr (it is on by default: one line per API request).
    #[arg(short, long, env = "TRIGGER_MOCK_QUIET", conflicts_with = "verbose")]
    pub quiet: bool,
    /// A more detailed request log: admin and dashboard requests too, the HTTP version, the
    /// x-trigger-api-version and the wall-clock time.
    #[arg(short, long, env = "TRIGGER_MOCK_VERBOSE")]
    pub verbose: bool,
    /// The request log's format: `text` for people, `json` for one JSON object per line.
    #[arg(long, env = "TRIGGER_MOCK_LOG_FORMAT", value_enum, default_value_t = crate::reqlog::Format::Text, value_name = "FORMAT")]
    pub log_format: crate::reqlog::Format,
    /// Stop, as on SIGTERM, when standard input reaches its end: a parent that spawns the server with a
    /// pipe on stdin takes it down when it exits, even when it is killed.
    #[arg(long, env = "TRIGGER_MOCK_EXIT_ON_STDIN_CLOSE")]
    pub exit_on_stdin_close: bool,
    /// Runs (and batches) kept per environment (secret key) that created them; the oldest finished run goes first.
    #[arg(long, env = "TRIGGER_MOCK_MAX_RUNS_PER_ENV", default_value_t = crate::ledger::DEFAULT_RUNS_PER_ENV, value_name = "N")]
    pub max_runs_per_env: usize,
    /// Environments (secret keys that created runs) kept; the least recently used goes first.
    #[arg(long, env = "TRIGGER_MOCK_MAX_ENVS", default_value_t = crate::ledger::DEFAULT_ENVS, value_name = "N")]
    pub max_envs: usize,
    /// Bytes of payloads, outputs and metadata kept per environment; the oldest finished run goes first.
    #[arg(long, env = "TRIGGER_MOCK_MAX_BYTES_PER_ENV", default_value_t = crate::ledger::DEFAULT_BYTES_PER_ENV, value_name = "BYTES")]
    pub max_bytes_per_env: u64,
}

impl ServeArgs {
    /// How much the request log says.
    pub fn verbosity(&self) -> crate::reqlog::Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => crate::reqlog::Verbosity::Quiet,
            (false, true) => crate::reqlog::Verbosity::Verbose,
            (false, false) => crate::reqlog::Verbosity::Normal,
        }
    }
}

/// Seconds from a flag, between 0 (excluded) and an hour.
fn seconds(flag: &str, value: f64) -> Result<std::time::Duration, String> {
    if !(value.is_finite() && value > 0.0 && value <= 3600.0) {
        return Err(format!("{flag}: {value} is not a number of seconds between 0 and 3600"));
    }
    Ok(std::time::Duration::from_secs_f64(value))
}

/// Flags of `catalogue`.
#[derive(Debug, Clone, Args)]
pub struct CatalogueArgs {
    /// Print a JSON array of {id, status, description} instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `render`.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The run to render, e.g. run_completed or run_demo_failed.
    pub run_id: String,
    /// The x-trigger-api-version the client sends: `2025-07-16` (the v4 SDK) or `none`.
    #[arg(long, default_value = "2025-07-16", value_parser = ["2025-07-16", "none"])]
    pub api_version: String,
    /// The kind of key the client authenticates with.
    #[arg(long, value_enum, default_value_t = KeyKindArg::Dev)]
    pub key_kind: KeyKindArg,
    /// The host the client uses, for presigned URLs.
    #[arg(long, default_value = "127.0.0.1:3033", value_name = "HOST:PORT")]
    pub host: String,
    #[command(flatten)]
    pub runs: RunArgs,
}

/// Key kinds for `render --key-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyKindArg {
    /// tr_dev_…: costs are 0.
    Dev,
    /// tr_stg_…
    Staging,
    /// tr_preview_…
    Preview,
    /// tr_prod_…
    Prod,
    /// pk_dev_…: no payload or output (documented behaviour).
    Public,
}

impl KeyKindArg {
    /// The key kind it stands for.
    pub fn kind(self) -> KeyKind {
        match self {
            KeyKindArg::Dev => KeyKind::Secret(Environment::Development),
            KeyKindArg::Staging => KeyKind::Secret(Environment::Staging),
            KeyKindArg::Preview => KeyKind::Secret(Environment::Preview),
            KeyKindArg::Prod => KeyKind::Secret(Environment::Production),
            KeyKindArg::Public => KeyKind::Public(Environment::Development),
        }
    }
}

impl RenderArgs {
    /// The API version asked for.
    pub fn version(&self) -> ApiVersion {
        ApiVersion::from_header((self.api_version != "none").then_some(self.api_version.as_bytes()))
    }
}

/// A command-line error as one line, without the `error: ` prefix: clap's
/// message with its details (`[possible values: …]`, the missing arguments,
/// a `tip:`) folded in, and its usage block dropped, since `--help` has it.
pub fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let parts: Vec<String> = text
        .split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty() && !p.starts_with("Usage:") && !p.starts_with("For more information"))
        .collect();
    let message = parts.join("; ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("{message} (see --help)")
}

impl RunArgs {
    fn apply(&self, config: &mut Config) -> Result<(), String> {
        config.seed = self.seed;
        config.generate = !self.no_generate;
        config.scenarios.clone_from(&self.scenarios);
        config.presign_secret.clone_from(&self.presign_secret);
        config.offload_threshold = self.offload_threshold;
        if let Some(clock) = &self.clock {
            let at = Millis::parse_rfc3339(clock).map_err(|e| format!("--clock: {e}"))?;
            if !(crate::clock::EARLIEST..=crate::clock::LATEST).contains(&at) {
                return Err(format!(
                    "--clock: `{}` is out of range: {}",
                    crate::excerpt::quote(clock),
                    crate::clock::OUT_OF_RANGE
                ));
            }
            config.clock = Clock::frozen(at);
        }
        Ok(())
    }
}

/// The most worker threads `--workers` accepts.
pub const MAX_WORKERS: usize = 1024;

/// The default of `--workers`: half of `processors`, at least one.
pub fn default_workers(processors: usize) -> usize {
    (processors / 2).max(1)
}

impl ServeArgs {
    /// The threads that serve requests: `--workers`, or [`default_workers`]
    /// of the processors this process may use.
    pub fn worker_threads(&self) -> Result<usize, String> {
        match self.workers {
            Some(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
            Some(n) => Err(format!("--workers: {n} is not between 1 and {MAX_WORKERS}")),
            None => Ok(default_workers(std::thread::available_parallelism().map_or(1, usize::from))),
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = Config {
            addr: self.addr,
            not_found_retry: self.not_found_retry,
            rate_limit: self.rate_limit,
            journal_size: self.journal_size,
            journal_bytes: self.journal_bytes,
            key_state_bytes: self.key_state_bytes,
            ..Config::default()
        };
        self.runs.apply(&mut config)?;
        for key in &self.secret_keys {
            if !matches!(KeyKind::of(key), Some(KeyKind::Secret(_))) {
                return Err(format!(
                    "--secret-key: `{}` is not a secret key (tr_dev_…, tr_prod_…, tr_stg_… or tr_preview_…)",
                    crate::excerpt::quote(key)
                ));
            }
        }
        config.auth = AuthPolicy { secret_keys: self.secret_keys.clone(), reject_public_keys: self.reject_public_keys };
        config.limits.header_timeout = seconds("--header-timeout", self.header_timeout)?;
        config.limits.idle_timeout = seconds("--idle-timeout", self.idle_timeout)?;
        config.limits.body_timeout = seconds("--body-timeout", self.body_timeout)?;
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(format!("--max-connections: {} is not between 1 and 1000000", self.max_connections));
        }
        self.worker_threads()?;
        if self.max_runs_per_env == 0 || self.max_envs == 0 {
            return Err("--max-runs-per-env and --max-envs are at least 1".into());
        }
        config.ledger.runs_per_env = self.max_runs_per_env;
        config.ledger.envs = self.max_envs;
        config.ledger.bytes_per_env = self.max_bytes_per_env;
        config.limits.max_connections = self.max_connections;
        if !(1..=crate::config::MAX_REALTIME_HOLD_MS).contains(&self.realtime_hold_ms) {
            return Err(format!(
                "--realtime-hold-ms: {} is not between 1 and {}",
                self.realtime_hold_ms,
                crate::config::MAX_REALTIME_HOLD_MS
            ));
        }
        config.realtime_hold = std::time::Duration::from_millis(self.realtime_hold_ms);
        config.admin = match (&self.admin_token, self.no_admin) {
            (_, true) => AdminAccess::Off,
            (Some(token), false) if !token.is_empty() => AdminAccess::Token(token.clone()),
            (Some(_), false) => return Err("--admin-token: the token is empty".into()),
            (None, false) => AdminAccess::Open,
        };
        Ok(config)
    }
}

impl RenderArgs {
    /// The configuration whose runs `render` shows.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = Config::default();
        self.runs.apply(&mut config)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("trigger-mock").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn serve_is_the_default() {
        let cli = parse(&["--addr", "127.0.0.1:0", "--seed", "9"]);
        assert!(cli.command.is_none());
        let config = cli.serve.config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.seed, 9);
        assert_eq!(config.addr.port(), 0);
    }

    #[test]
    fn flags_reach_the_config() {
        let Some(Command::Serve(args)) = parse(&[
            "serve",
            "--clock",
            "2026-01-01T00:00:00Z",
            "--no-generate",
            "--secret-key",
            "tr_dev_a",
            "--secret-key",
            "tr_prod_b",
            "--reject-public-keys",
            "--not-found-retry",
            "false",
        ])
        .command
        else {
            panic!("not serve")
        };
        let config = args.config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.clock, Clock::frozen(Millis(1_767_225_600_000)));
        assert!(!config.generate && !config.not_found_retry && config.auth.reject_public_keys);
        assert_eq!(config.auth.secret_keys, ["tr_dev_a", "tr_prod_b"]);
    }

    #[test]
    fn command_line_errors_are_one_line() {
        for (args, says) in [
            (&["--bogus"][..], "unexpected argument '--bogus' found (see --help)"),
            (&["--seed", "x"], "invalid value 'x' for '--seed <SEED>': invalid digit found in string (see --help)"),
            (&["render"], "the following required arguments were not provided: <RUN_ID> (see --help)"),
            (
                &["render", "run_x", "--key-kind", "nope"],
                "invalid value 'nope' for '--key-kind <KEY_KIND>' [possible values: dev, staging, preview, prod, public]",
            ),
            (&["--sed", "1"], "tip: a similar argument exists: '--seed'"),
            (&["--admin-token", "a", "--no-admin"], "cannot be used with '--no-admin'"),
        ] {
            let e = Cli::try_parse_from(std::iter::once("trigger-mock").chain(args.iter().copied())).unwrap_err();
            let line = one_line(&e);
            assert!(!line.contains('\n') && !line.starts_with("error"), "{args:?}: {line}");
            assert!(line.contains(says), "{args:?}: {line}");
            assert!(!line.contains("Usage"), "{args:?}: {line}");
        }
    }

    #[test]
    fn bad_values_are_one_clear_line() {
        let cli = parse(&["--clock", "yesterday"]);
        assert!(cli.serve.config().unwrap_err().starts_with("--clock: `yesterday` is not an RFC 3339"));
        for edge in ["0000-06-01T00:00:00Z", "0001-01-01T00:00:00+00:01", "9999-01-01T00:00:00Z"] {
            let cli = parse(&["--clock", edge]);
            let e = cli.serve.config().unwrap_err();
            assert!(e.starts_with(&format!("--clock: `{edge}` is out of range: the clock stays within")), "{e}");
        }
        for edge in ["0001-01-01T00:00:00Z", "9998-12-31T23:59:59.999Z"] {
            assert!(parse(&["--clock", edge]).serve.config().is_ok(), "{edge}");
        }
        let cli = parse(&["--secret-key", "pk_dev_x"]);
        assert!(cli.serve.config().unwrap_err().contains("not a secret key"));
        for (flag, value) in [("--idle-timeout", "0"), ("--body-timeout", "4000"), ("--idle-timeout", "NaN")] {
            let error = parse(&[flag, value]).serve.config().unwrap_err();
            assert!(error.starts_with(&format!("{flag}: ")) && error.contains("between 0 and 3600"), "{error}");
        }
        assert_eq!(
            parse(&["--max-connections", "0"]).serve.config().unwrap_err(),
            "--max-connections: 0 is not between 1 and 1000000"
        );
    }

    #[test]
    fn workers_default_to_half_the_processors_and_stay_in_range() {
        assert_eq!([1, 2, 3, 8, 64].map(default_workers), [1, 1, 1, 4, 32]);
        assert_eq!(parse(&["--workers", "3"]).serve.worker_threads(), Ok(3));
        let default = parse(&[]).serve.worker_threads().unwrap_or_else(|e| panic!("{e}"));
        assert!((1..=MAX_WORKERS).contains(&default));
        for n in ["0", "1025"] {
            let e = parse(&["--workers", n]).serve.config().unwrap_err();
            assert_eq!(e, format!("--workers: {n} is not between 1 and 1024"));
        }
    }

    #[test]
    fn connection_limits_reach_the_config() {
        let cli = parse(&["--idle-timeout", "2.5", "--body-timeout", "7", "--max-connections", "12"]);
        let limits = cli.serve.config().unwrap_or_else(|e| panic!("{e}")).limits;
        assert_eq!(limits.idle_timeout, std::time::Duration::from_millis(2500));
        assert_eq!(limits.body_timeout, std::time::Duration::from_secs(7));
        assert_eq!(limits.max_connections, 12);
        let defaults = parse(&[]).serve.config().unwrap_or_else(|e| panic!("{e}")).limits;
        assert_eq!(defaults, crate::config::Limits::default());
    }
}
