//! The `trigger-mock` binary: parse flags, then serve, list or render.

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
use trigger_mock::cli::{CatalogueArgs, Cli, Command, RenderArgs, ServeArgs};
use trigger_mock::model::{RenderOptions, render_json};
use trigger_mock::server::{Server, StartError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Catalogue(args)) => catalogue(&args),
        Some(Command::Render(args)) => render(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("trigger-mock: {message}");
            ExitCode::from(code)
        }
    }
}

/// An exit code and one line for people.
type Failure = (u8, String);

fn invalid(message: String) -> Failure {
    (2, message)
}

fn serve(args: &ServeArgs) -> Result<(), Failure> {
    let config = args.config().map_err(invalid)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| (1, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let stop = shutdown_signal();
        let server = Server::start(&config).await.map_err(|e| match e {
            StartError::Config(message) => invalid(message),
            bind @ StartError::Bind(..) => (1, bind.to_string()),
        })?;
        let url = server.url();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "trigger-mock listening on {url}");
        let _ = writeln!(out, "  TRIGGER_API_URL={url} TRIGGER_SECRET_KEY=tr_dev_anything");
        let _ = writeln!(out, "  curl -H 'Authorization: Bearer tr_dev_x' {url}/api/v3/runs/run_completed");
        let _ = out.flush();
        drop(out);
        stop.await;
        eprintln!("trigger-mock: shutting down");
        server.shutdown().await;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when it is first polled, so call it before announcing the URL:
/// a signal sent as soon as the URL is seen must not kill the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
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
    let app = trigger_mock::config::Config::default().build_app().map_err(invalid)?;
    let entries = app.state().store.entries();
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
    let app = args.config().and_then(|c| c.build_app()).map_err(invalid)?;
    let store = &app.state().store;
    let run = store.get(&args.run_id).ok_or_else(|| {
        (1, format!("no run {}: ids are run_ and then lower-case letters, digits and underscores", args.run_id))
    })?;
    let kind = args.key_kind.kind();
    let opts = RenderOptions {
        version: args.version(),
        zero_costs: kind.environment() == trigger_mock::auth::Environment::Development,
        hide_packets: matches!(kind, trigger_mock::auth::KeyKind::Public(_)),
    };
    let body = render_json(&run, opts, |id| store.related(id));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&body);
    let _ = writeln!(out);
    Ok(())
}
