//! The request log on stderr: one line per request (the mock clock's time,
//! method, path, key prefix, status, the run's status, the fault, the
//! duration), as text for people or JSON lines for machines.
//!
//! Events go through `tracing` under the target [`TARGET`]; `main` installs
//! the subscriber (or none with `-q`). Nothing about a request is copied or
//! formatted unless [`enabled`] says a subscriber wants it, so a quiet
//! server pays one cached level check per request. Lines are written by a
//! background thread through a bounded queue that drops lines rather than
//! block a request when stderr is slow (see [`install`]).

use crate::time::Millis;
use std::fmt::Write as _;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The `tracing` target of request events.
pub const TARGET: &str = "trigger_mock::request";

/// The `tracing` target of the server's own messages while the log is on.
pub const NOTICE: &str = "trigger_mock::notice";

/// Writes one of the server's messages (`trigger-mock: shutting down`, a
/// refused reload) on stderr: through the log's queue while the log is on,
/// so that it keeps its place among the request lines and never waits on a
/// stderr nobody reads (which would hold a runtime thread, or the exit);
/// straight to stderr otherwise.
pub fn notice(text: &str) {
    if tracing::enabled!(target: NOTICE, tracing::Level::INFO) {
        tracing::info!(target: NOTICE, "{text}");
    } else {
        eprintln!("{text}");
    }
}

/// How many lines may wait for stderr before new ones are dropped.
pub const QUEUE_LINES: usize = 16_384;

/// How much the log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// No log at all (`-q`).
    Quiet,
    /// One line per API request (the default).
    Normal,
    /// Also the admin API's and the dashboard's requests, and per line the
    /// HTTP version, the `x-trigger-api-version` and the wall-clock time (`-v`).
    Verbose,
}

/// The log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One aligned line per request.
    Text,
    /// One JSON object per line.
    Json,
}

/// True when a subscriber wants request lines: check before copying anything.
#[inline]
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// True with `-v`.
#[inline]
pub fn verbose() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
}

/// What a response tells the log beyond its status, put in its extensions
/// by the app only while the log is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The caller's key (or a token's environment key).
    pub key: Option<String>,
    /// The status of the run answered, by its engine name.
    pub run_status: Option<&'static str>,
    /// The fault applied.
    pub fault: Option<String>,
}

/// The first characters of a key: enough to tell keys apart, too few to
/// reuse one seen in a shared terminal.
pub fn key_prefix(key: &str) -> String {
    const SHOWN: usize = 11;
    let mut chars = key.chars();
    let head: String = chars.by_ref().take(SHOWN).collect();
    if chars.next().is_some() { format!("{head}…") } else { head }
}

/// One request line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line {
    /// The mock clock when the request arrived.
    pub at: Millis,
    pub method: String,
    pub path: String,
    /// The key prefix ([`key_prefix`]).
    pub key: Option<String>,
    /// The status sent, 0 when the connection was reset instead.
    pub status: u16,
    pub run_status: Option<String>,
    pub fault: Option<String>,
    /// Time to the response head.
    pub duration: Duration,
    /// `-v`: the HTTP version.
    pub http: Option<String>,
    /// `-v`: the `x-trigger-api-version` sent.
    pub api_version: Option<String>,
    /// `-v`: the wall clock when the request arrived.
    pub wall: Option<Millis>,
}

impl Line {
    /// Emits the line as a `tracing` event (the subscriber formats it).
    pub fn emit(&self) {
        let ms = self.duration.as_secs_f64() * 1000.0;
        tracing::info!(
            target: TARGET,
            at = %self.at,
            method = %self.method,
            path = %self.path,
            key = self.key.as_deref(),
            status = self.status,
            run_status = self.run_status.as_deref(),
            fault = self.fault.as_deref(),
            duration_ms = (ms * 1000.0).round() / 1000.0,
            http = self.http.as_deref(),
            api_version = self.api_version.as_deref(),
            wall = self.wall.map(|w| w.to_string()).as_deref(),
        );
    }

    /// The text form: `HH:MM:SS.mmm METHOD STATUS PATH key=… run=… fault=… 1.2ms`,
    /// the time being the mock clock's (UTC), what the run's answer was computed at.
    pub fn text(&self) -> String {
        let at = self.at.to_string();
        let mut out = String::with_capacity(96);
        let _ = write!(out, "{} {:<6} ", at.get(11..23).unwrap_or(&at), self.method);
        match self.status {
            0 => out.push_str("RST"),
            s => {
                let _ = write!(out, "{s}");
            }
        }
        let _ = write!(out, " {}", self.path);
        if let Some(key) = &self.key {
            let _ = write!(out, " key={key}");
        }
        if let Some(status) = &self.run_status {
            let _ = write!(out, " run={status}");
        }
        if let Some(fault) = &self.fault {
            let _ = write!(out, " fault=\"{}\"", fault.replace('"', "'"));
        }
        let ms = self.duration.as_secs_f64() * 1000.0;
        if ms < 10.0 {
            let _ = write!(out, " {ms:.2}ms");
        } else {
            let _ = write!(out, " {ms:.0}ms");
        }
        if let Some(http) = &self.http {
            let _ = write!(out, " {http}");
        }
        if let Some(v) = &self.api_version {
            let _ = write!(out, " api={v}");
        }
        if let Some(wall) = &self.wall {
            let _ = write!(out, " wall={wall}");
        }
        out
    }
}

/// Reads a request event's fields back into a [`Line`].
#[derive(Default)]
struct Collect(Line);

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        let line = &mut self.0;
        match field.name() {
            "method" => line.method = value.to_owned(),
            "path" => line.path = value.to_owned(),
            "key" => line.key = Some(value.to_owned()),
            "run_status" => line.run_status = Some(value.to_owned()),
            "fault" => line.fault = Some(value.to_owned()),
            "http" => line.http = Some(value.to_owned()),
            "api_version" => line.api_version = Some(value.to_owned()),
            "at" => line.at = Millis::parse_rfc3339(value).unwrap_or_default(),
            "wall" => line.wall = Millis::parse_rfc3339(value).ok(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.0.status = u16::try_from(value).unwrap_or(0);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "duration_ms" && value.is_finite() && value >= 0.0 {
            self.0.duration = Duration::from_secs_f64(value / 1000.0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields arrive here.
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Reads a notice's message.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// The text format: request events as [`Line::text`], anything else as
/// `trigger-mock: LEVEL message`.
struct Text;

impl<S, N> FormatEvent<S, N> for Text
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if event.metadata().target() == TARGET {
            let mut collect = Collect::default();
            event.record(&mut collect);
            return writeln!(w, "{}", collect.0.text());
        }
        if event.metadata().target() == NOTICE {
            let mut message = Message::default();
            event.record(&mut message);
            return writeln!(w, "{}", message.0);
        }
        write!(w, "trigger-mock: {} ", event.metadata().level())?;
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Keeps the log's writer thread; dropping it flushes what is queued.
pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Installs the process-wide subscriber for `verbosity` and `format`
/// (none when quiet). Lines go to stderr from a background thread; when
/// [`QUEUE_LINES`] are waiting, further ones are dropped, so a request never
/// waits for a slow terminal or an unread pipe.
pub fn install(verbosity: Verbosity, format: Format) -> Guard {
    let level = match verbosity {
        Verbosity::Quiet => return Guard(None),
        Verbosity::Normal => tracing::Level::INFO,
        Verbosity::Verbose => tracing::Level::DEBUG,
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUE_LINES)
        .thread_name("trigger-mock-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_max_level(level).with_writer(writer).with_ansi(false);
    let installed = match format {
        Format::Text => builder.event_format(Text).try_init(),
        Format::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
    };
    // Already installed (a second server in one process): keep the first.
    let _ = installed;
    Guard(Some(guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Line {
        Line {
            at: Millis(1_767_225_600_123),
            method: "GET".into(),
            path: "/api/v3/runs/run_demo".into(),
            key: Some(key_prefix("tr_dev_secret_abcdef")),
            status: 200,
            run_status: Some("EXECUTING".into()),
            fault: None,
            duration: Duration::from_micros(1234),
            ..Line::default()
        }
    }

    #[test]
    fn keys_are_cut_to_a_prefix() {
        assert_eq!(key_prefix("tr_dev_secret_abcdef"), "tr_dev_secr…");
        assert_eq!(key_prefix("tr_dev_x"), "tr_dev_x");
        assert_eq!(key_prefix("tr_dev_ééééééééé"), "tr_dev_éééé…");
    }

    #[test]
    fn text_lines() {
        let faulted = Line {
            status: 500,
            run_status: None,
            fault: Some("flaky \"first\": status 500".into()),
            duration: Duration::from_millis(250),
            ..line()
        };
        let reset = Line { status: 0, key: None, run_status: None, ..line() };
        let verbose = Line {
            http: Some("HTTP/2.0".into()),
            api_version: Some("2025-07-16".into()),
            wall: Some(Millis(1_800_000_000_000)),
            ..line()
        };
        insta::assert_snapshot!(
            "reqlog_text_lines",
            [line(), faulted, reset, verbose].iter().map(Line::text).collect::<Vec<_>>().join("\n")
        );
    }

    #[test]
    fn fields_read_back_into_the_same_line() {
        // The subscriber sees the event's fields, not the Line: both must say the same.
        use tracing_subscriber::layer::SubscriberExt;
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().event_format(Text).with_writer(move || writer.clone()));
        let expected = Line { fault: Some("f: reset".into()), wall: Some(Millis(5)), ..line() };
        tracing::subscriber::with_default(subscriber, || expected.emit());
        let written = String::from_utf8(sink.0.lock().unwrap_or_else(|p| p.into_inner()).clone()).unwrap_or_default();
        assert_eq!(written, format!("{}\n", expected.text()));
    }
}
