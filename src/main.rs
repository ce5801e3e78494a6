//! The `trigger-mock` binary: parse flags, then serve, list, render or validate.

use clap::Parser;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;
use trigger_mock::cli::{CatalogueArgs, Cli, Command, RenderArgs, ScenariosArgs, ServeArgs, ValidateArgs};
use trigger_mock::scenario;
use trigger_mock::server::{Server, StartError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and exit 0.
        Err(e) if !e.use_stderr() || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            e.exit()
        }
        Err(e) => {
            eprintln!("trigger-mock: {}", trigger_mock::cli::one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Catalogue(args)) => catalogue(&args),
        Some(Command::Render(args)) => render(&args),
        Some(Command::Validate(args)) => validate(&args),
        Some(Command::Scenarios(args)) => scenarios(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(lines)) => {
            for line in lines {
                eprintln!("{line}");
            }
            ExitCode::from(2)
        }
        Err(Failure::Other(message)) => {
            eprintln!("trigger-mock: {message}");
            ExitCode::from(1)
        }
    }
}

/// Why a command failed: bad input (exit 2, one line per problem) or
/// anything else (exit 1).
enum Failure {
    Invalid(Vec<String>),
    Other(String),
}

fn invalid(message: String) -> Failure {
    Failure::Invalid(vec![format!("trigger-mock: {message}")])
}

impl From<StartError> for Failure {
    fn from(e: StartError) -> Failure {
        match e {
            StartError::Invalid(lines) => Failure::Invalid(lines),
            other => Failure::Other(other.to_string()),
        }
    }
}

fn serve(args: &ServeArgs) -> Result<(), Failure> {
    let config = args.config().map_err(invalid)?;
    if !config.addr.ip().is_loopback() {
        eprintln!(
            "trigger-mock: warning: listening on {}, which is not a loopback address: anyone who can reach it can use the mock{}",
            config.addr,
            if config.admin == trigger_mock::config::AdminAccess::Open {
                " and its admin API (see --admin-token)"
            } else {
                ""
            }
        );
    }
    // Kept until the server has stopped: dropping it flushes the last lines.
    let _log = trigger_mock::reqlog::install(args.verbosity(), args.log_format);
    let workers = args.worker_threads().map_err(invalid)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the runtime: {e}")))?;
    let served = runtime.block_on(async {
        let stop = shutdown_signal(args.exit_on_stdin_close);
        let app = config.build_app()?;
        let (listener, backlog) = trigger_mock::server::bind(config.addr)
            .map_err(|e| Failure::Other(StartError::Bind(config.addr, e).to_string()))?;
        app.state().set_listen_backlog(backlog);
        if args.watch {
            tokio::spawn(trigger_mock::watch::watch(app.clone()));
        }
        let server = Server::on(listener, app.clone())?;
        let url = server.url();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "trigger-mock listening on {url}");
        for summary in &app.world().summaries {
            let _ = writeln!(out, "  scenario {summary}");
        }
        let _ = writeln!(out, "  TRIGGER_API_URL={url} TRIGGER_SECRET_KEY=tr_dev_anything");
        let _ = writeln!(out, "  curl -H 'Authorization: Bearer tr_dev_x' {url}/api/v3/runs/run_completed");
        let _ = out.flush();
        drop(out);
        stop.await;
        trigger_mock::reqlog::notice("trigger-mock: shutting down");
        server.shutdown().await;
        Ok(())
    });
    // The drain above took at most the grace period; a blocking read left
    // on the runtime's threads (a file on a stuck mount) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    served
}

/// Resolves on SIGINT or SIGTERM, or with `stdin_eof` when standard input
/// ends (a watcher that could not start never fires). The handlers are installed when this is called, not when it is first
/// polled, so call it before announcing the URL: a signal sent as soon as the
/// URL is seen must not kill the process.
fn shutdown_signal(stdin_eof: bool) -> impl std::future::Future<Output = ()> {
    let signal = os_signal();
    let eof = stdin_eof.then(stdin_closed);
    async move {
        match eof {
            Some(eof) => {
                tokio::select! {
                    () = signal => {}
                    Ok(()) = eof => trigger_mock::reqlog::notice("trigger-mock: standard input closed"),
                }
            }
            None => signal.await,
        }
    }
}

/// Resolves when standard input reaches its end (or fails). A plain thread
/// reads and discards it: tokio's stdin would hold the runtime's shutdown
/// until the blocking read returned, and this thread never delays the exit.
fn stdin_closed() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("stdin-watch".into()).spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 512];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    if let Err(e) = spawned {
        eprintln!("trigger-mock: warning: cannot watch standard input: {e}");
    }
    rx
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere).
fn os_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn catalogue(args: &CatalogueArgs) -> Result<(), Failure> {
    let app = trigger_mock::config::Config::default().build_app()?;
    let world = app.world();
    let entries = world.store.entries();
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<_> = entries
            .iter()
            .map(|e| serde_json::json!({"id": e.id, "status": e.status, "description": e.description}))
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(list));
    } else {
        let width = entries.iter().map(|e| e.id.len()).max().unwrap_or(0);
        for e in entries {
            let _ = writeln!(out, "{:width$}  {:22}  {}", e.id, e.status.name(), e.description);
        }
    }
    Ok(())
}

fn render(args: &RenderArgs) -> Result<(), Failure> {
    let config = args.config().map_err(invalid)?;
    let app = config.build_app()?;
    let world = app.world();
    let now = config.clock.now();
    let missing = || {
        Failure::Other(format!(
            "no run {}: ids are run_ and then lower-case letters, digits and underscores",
            trigger_mock::excerpt::quote(&args.run_id)
        ))
    };
    // A scripted run is shown as a new key's first retrieve would see it.
    let run = match world.first_view(&args.run_id, now) {
        Some(run) => std::borrow::Cow::Owned(run),
        None => world.store.get(&args.run_id).ok_or_else(missing)?,
    };
    let body = app.render_run(&world, &run, args.key_kind.kind(), args.version(), &args.host, now);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&body);
    let _ = writeln!(out);
    Ok(())
}

fn validate(args: &ValidateArgs) -> Result<(), Failure> {
    // The same loading and checks as `serve`, without binding anything.
    let config = trigger_mock::config::Config { scenarios: args.files.clone(), ..Default::default() };
    config.build_app()?;
    println!("{} file(s) valid", args.files.len());
    Ok(())
}

fn scenarios(args: &ScenariosArgs) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match &args.show {
        Some(name) => {
            let text = scenario::builtin(name).ok_or_else(|| {
                Failure::Other(format!(
                    "no built-in scenario `{}`; there are: {}",
                    trigger_mock::excerpt::quote(name),
                    scenario::builtin_names().join(", ")
                ))
            })?;
            let _ = out.write_all(text.as_bytes());
        }
        None => {
            for name in scenario::builtin_names() {
                let description = scenario::builtin(name)
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                    .and_then(|v| v["description"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let _ = writeln!(out, "builtin:{name:24} {description}");
            }
        }
    }
    Ok(())
}
