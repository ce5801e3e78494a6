//! The `trigger-mock` binary: serve (first line, signals, env fallbacks),
//! render, catalogue and start-up errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trigger-mock"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TRIGGER_MOCK_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Starts `serve` and returns the child and the URL from its first line.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = bin().args(args).envs(env.iter().copied()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_default().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "first line names the URL: {line:?}");
    (child, url)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("did not stop on SIGTERM");
}

/// A blocking GET over a raw socket; returns the whole response text.
fn get(url: &str, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{headers}\r\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_prints_the_url_first_and_stops_on_sigterm() {
    let (mut child, url) = spawn(&["serve", "--addr", "127.0.0.1:0"], &[]);
    let reply = get(&url, "/api/v3/runs/run_completed", "authorization: Bearer tr_dev_x\r\n");
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(terminate(&mut child).success());
}

#[test]
fn no_subcommand_means_serve_and_flags_fall_back_to_the_environment() {
    let (mut child, url) = spawn(
        &[],
        &[
            ("TRIGGER_MOCK_ADDR", "127.0.0.1:0"),
            ("TRIGGER_MOCK_NO_GENERATE", "true"),
            ("TRIGGER_MOCK_NOT_FOUND_RETRY", "false"),
            ("TRIGGER_MOCK_SECRET_KEYS", "tr_dev_a,tr_dev_b"),
        ],
    );
    let missing = get(&url, "/api/v3/runs/run_completed", "authorization: Bearer tr_dev_b\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("x-should-retry: false"), "{missing}");
    let refused = get(&url, "/api/v3/runs/run_demo_completed", "authorization: Bearer tr_dev_c\r\n");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(terminate(&mut child).success());
}

#[test]
fn render_prints_exactly_what_the_server_sends() {
    let clock = "2026-01-01T00:00:00Z";
    let (mut child, url) = spawn(&["--addr", "127.0.0.1:0", "--clock", clock, "--seed", "5"], &[]);
    for (id, version_args, header, key_args, key) in [
        ("run_demo_child", vec![], "x-trigger-api-version: 2025-07-16\r\n", vec![], "tr_dev_x"),
        ("run_paused", vec!["--api-version", "none"], "", vec!["--key-kind", "prod"], "tr_prod_x"),
        ("run_completed_7", vec![], "x-trigger-api-version: 2025-07-16\r\n", vec!["--key-kind", "public"], "pk_dev_x"),
    ] {
        let served = get(&url, &format!("/api/v3/runs/{id}"), &format!("authorization: Bearer {key}\r\n{header}"));
        let body = served.split("\r\n\r\n").nth(1).unwrap();
        let out = bin()
            .args(["render", id, "--clock", clock, "--seed", "5"])
            .args(version_args)
            .args(key_args)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{body}\n"), "{id}");
    }
    assert!(terminate(&mut child).success());
}

#[test]
fn catalogue_lists_ids_statuses_and_descriptions() {
    let out = bin().args(["catalogue", "--json"]).output().unwrap();
    assert!(out.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.iter().any(|e| e["id"] == "run_demo_scheduled" && e["status"] == "COMPLETED_SUCCESSFULLY"));
    let text = bin().arg("catalogue").output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(text.lines().count(), list.len());
    assert!(text.lines().any(|l| l.starts_with("run_demo_expired") && l.contains("EXPIRED") && l.contains("TTL")));
}

#[test]
fn bad_flags_exit_2_with_one_line_before_binding() {
    for args in [
        vec!["--clock", "tomorrow", "--addr", "127.0.0.1:0"],
        vec!["--secret-key", "pk_dev_x", "--addr", "127.0.0.1:0"],
        vec!["--addr", "nowhere"],
        vec!["render", "run_x", "--api-version", "2020-01-01"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed no URL");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let out = bin().args(["--addr", &addr]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with(&format!("trigger-mock: cannot listen on {addr}")), "{err}");
}
