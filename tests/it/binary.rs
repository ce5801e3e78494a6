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

/// Starts `serve` with its request log off (`-q`: stderr is the test's
/// own) and returns the child and the URL from its first line.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = bin().args(args).arg("-q").envs(env.iter().copied()).stdout(Stdio::piped()).spawn().unwrap();
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
        vec!["--bogus", "--addr", "127.0.0.1:0"],
        vec!["--seed", "minus-one", "--addr", "127.0.0.1:0"],
        vec!["render"],
        vec!["render", "run_x", "--key-kind", "root"],
        vec!["--admin-token", "a", "--no-admin", "--addr", "127.0.0.1:0"],
        vec!["--workers", "0", "--addr", "127.0.0.1:0"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed no URL");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"));
        // As the README says: one line, naming the program.
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("trigger-mock: "), "{args:?}: {stderr}");
    }
    // Help and the version are not errors.
    for flag in ["--help", "--version"] {
        let out = bin().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(!out.stdout.is_empty() && out.stderr.is_empty(), "{flag}");
    }
}

/// The runtime's worker threads of process `pid` (tokio names them; no
/// blocking thread exists before the first request that needs one).
#[cfg(target_os = "linux")]
fn worker_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|name| name.trim() == "tokio-rt-worker")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn workers_sets_the_serving_threads_and_the_default_is_half_the_processors() {
    let (mut child, url) = spawn(&["--addr", "127.0.0.1:0", "--workers", "3"], &[]);
    assert_eq!(worker_threads(child.id()), 3);
    let reply = get(&url, "/api/v3/runs/run_completed", "authorization: Bearer tr_dev_x\r\n");
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(terminate(&mut child).success());
    let (mut child, _) = spawn(&["--addr", "127.0.0.1:0"], &[("TRIGGER_MOCK_WORKERS", "2")]);
    assert_eq!(worker_threads(child.id()), 2, "the variable sets it too");
    assert!(terminate(&mut child).success());
    let processors = std::thread::available_parallelism().map_or(1, usize::from);
    let (mut child, _) = spawn(&["--addr", "127.0.0.1:0"], &[]);
    assert_eq!(worker_threads(child.id()), (processors / 2).max(1));
    assert!(terminate(&mut child).success());
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

#[test]
fn validate_exits_0_for_valid_files_and_2_with_locations_otherwise() {
    let dir = std::env::temp_dir().join(format!("trigger-mock-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, "{\"version\": 1, \"runs\": [{\"id\": \"run_a\", \"status\": \"PENDING\"}]}\n").unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\n  \"version\": 1,\n  \"runs\": [{\"id\": \"run_a\", \"stauts\": \"PENDING\"}]\n}\n")
        .unwrap();
    let ok = bin().args(["validate", good.to_str().unwrap(), "builtin:faults"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let out = bin().args(["validate", good.to_str().unwrap(), bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with(&format!("{}:3:28: runs[0].stauts: unknown field `stauts`", bad.display())), "{err}");
    let serve = bin().args(["--addr", "127.0.0.1:0", "--scenario", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(serve.status.code(), Some(2), "serve refuses the file before binding");
    assert!(serve.stdout.is_empty());
    assert_eq!(String::from_utf8(serve.stderr).unwrap(), err);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scenarios_lists_and_prints_the_built_ins() {
    let list = String::from_utf8(bin().arg("scenarios").output().unwrap().stdout).unwrap();
    for name in [
        "poll-to-completion",
        "poll-to-failure",
        "flaky-run",
        "rate-limited",
        "expired-ttl",
        "delayed-to-queued",
        "every-status",
        "faults",
    ] {
        assert!(list.contains(&format!("builtin:{name}")), "{name} in {list}");
    }
    let shown = bin().args(["scenarios", "poll-to-completion"]).output().unwrap();
    assert!(shown.status.success());
    assert_eq!(shown.stdout, trigger_mock::scenario::builtin("poll-to-completion").unwrap().as_bytes());
    assert_eq!(bin().args(["scenarios", "nope"]).output().unwrap().status.code(), Some(1));
}

#[test]
fn scenario_flag_and_variable_load_files() {
    let (mut child, url) =
        spawn(&["--addr", "127.0.0.1:0"], &[("TRIGGER_MOCK_SCENARIOS", "builtin:flaky-run,builtin:expired-ttl")]);
    let first = get(&url, "/api/v3/runs/run_flaky", "authorization: Bearer tr_dev_x\r\n");
    assert!(first.starts_with("HTTP/1.1 500"), "{first}");
    let ttl = get(&url, "/api/v3/runs/run_ttl", "authorization: Bearer tr_dev_x\r\n");
    assert!(ttl.contains("\"ttl\":\"10m\""), "{ttl}");
    assert!(terminate(&mut child).success());
}

#[test]
fn watch_reloads_valid_edits_and_keeps_serving_through_invalid_ones() {
    let dir = std::env::temp_dir().join(format!("trigger-mock-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("live.json");
    let write = |status: &str| {
        std::fs::write(
            &file,
            format!("{{\"version\": 1, \"runs\": [{{\"id\": \"run_live\", \"status\": \"{status}\"}}]}}\n"),
        )
        .unwrap();
    };
    write("EXECUTING");
    let mut child = bin()
        .args(["--addr", "127.0.0.1:0", "--watch", "--scenario", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    let status = || {
        let reply = get(
            &url,
            "/api/v3/runs/run_live",
            "authorization: Bearer tr_dev_w\r\nx-trigger-api-version: 2025-07-16\r\n",
        );
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"].as_str().unwrap().to_owned()
    };
    let wait_for = |want: &str| {
        for _ in 0..80 {
            if status() == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("never became {want}");
    };
    assert_eq!(status(), "EXECUTING");
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time on coarse file systems
    write("CANCELED");
    wait_for("CANCELED");
    std::thread::sleep(Duration::from_millis(1100));
    write("NOT_A_STATUS");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(status(), "CANCELED", "an invalid edit keeps the previous version");
    assert!(terminate(&mut child).success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("live.json:1:44: runs[0].status: unknown variant `NOT_A_STATUS`"), "{stderr}");
    assert!(stderr.contains("the previous version keeps serving"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_large_packet_streams_in_constant_memory_with_the_right_bytes() {
    use std::io::{Read, Write};
    const SIZE: u64 = 128 << 20;
    let dir = std::env::temp_dir().join(format!("trigger-mock-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("large.json");
    std::fs::write(
        &scenario,
        format!(r#"{{"version": 1, "runs": [{{"id": "run_huge", "status": "EXECUTING", "payloadPacket": {{"size": {SIZE}}}}}]}}"#),
    )
    .unwrap();
    let (mut child, url) = spawn(
        &["--addr", "127.0.0.1:0", "--clock", "2026-01-01T00:00:00Z", "--scenario", scenario.to_str().unwrap()],
        &[],
    );
    let reply = get(&url, "/api/v3/runs/run_huge", "authorization: Bearer tr_dev_x\r\n");
    let body: serde_json::Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let packet_url = body["payloadPresignedUrl"].as_str().unwrap();
    let path = &packet_url[packet_url.find("/packets/").unwrap()..];
    let pid = child.id();
    let before = rss_kib(pid);
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    let expected = trigger_mock::packet::Generated::new(trigger_mock::packet::PacketType::Json, SIZE, "").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let (mut total, mut peak, mut reads) = (0u64, before, 0u64);
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert_eq!(&buf[..n], expected.range(total, total + n as u64).as_ref(), "bytes at {total}");
        total += n as u64;
        reads += 1;
        if reads % 16 == 0 {
            peak = peak.max(rss_kib(pid));
        }
    }
    assert_eq!(total, SIZE);
    assert!(peak.saturating_sub(before) < 16 * 1024, "the server grew {} KiB while streaming 128 MiB", peak - before);
    assert!(terminate(&mut child).success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn render_shows_a_scripted_run_as_its_first_retrieve_does() {
    let clock = "2026-01-01T00:00:00Z";
    let args = ["--clock", clock, "--scenario", "builtin:poll-to-completion", "--presign-secret", "s"];
    let (mut child, url) = spawn(&[&["--addr", "127.0.0.1:0"][..], &args[..]].concat(), &[]);
    let served = get(
        &url,
        "/api/v3/runs/run_poll_ok",
        "authorization: Bearer tr_dev_first\r\nx-trigger-api-version: 2025-07-16\r\n",
    );
    let body = served.split("\r\n\r\n").nth(1).unwrap();
    let out = bin().args(["render", "run_poll_ok"]).args(args).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{body}\n"));
    assert!(body.contains("\"status\":\"QUEUED\""), "{body}");
    assert!(terminate(&mut child).success());
}

/// Starts `serve` with stderr piped, makes `requests`, stops it and returns
/// (first stdout line, stderr).
fn logged(args: &[&str], requests: &[(&str, &str)]) -> (String, String) {
    let mut child = bin()
        .args(["--addr", "127.0.0.1:0", "--clock", "2026-01-01T00:00:00Z", "--scenario", "builtin:flaky-run"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    for (path, headers) in requests {
        get(&url, path, headers);
    }
    // The log's writer thread runs beside the requests: give it a moment before the signal.
    std::thread::sleep(Duration::from_millis(200));
    assert!(terminate(&mut child).success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (line, stderr)
}

const KEYED: &str = "authorization: Bearer tr_dev_secret_abcdef\r\n";

#[test]
fn the_request_log_is_on_by_default_one_line_per_request() {
    let (first, stderr) = logged(
        &[],
        &[
            ("/api/v3/runs/run_completed", KEYED),
            ("/api/v3/runs/run_flaky", KEYED),
            ("/_mock/health", ""),
            ("/api/v3/runs/run_x", ""),
        ],
    );
    assert!(first.starts_with("trigger-mock listening on http://127.0.0.1:"), "{first}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "three API lines (not the admin one) and the shutdown: {stderr}");
    let (ok, rest) = lines[0].rsplit_once(' ').unwrap();
    assert_eq!(ok, "00:00:00.000 GET    200 /api/v3/runs/run_completed key=tr_dev_secr… run=COMPLETED_SUCCESSFULLY");
    assert!(rest.ends_with("ms") && rest.trim_end_matches("ms").parse::<f64>().is_ok(), "{rest}");
    assert!(
        lines[1].starts_with(
            "00:00:00.000 GET    500 /api/v3/runs/run_flaky key=tr_dev_secr… fault=\"builtin:flaky-run faults[0]: serverError\" "
        ),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("00:00:00.000 GET    401 /api/v3/runs/run_x "), "{}", lines[2]);
    assert!(!stderr.contains("secret_abcdef"), "never the whole key");
    assert_eq!(lines[3], "trigger-mock: shutting down");
}

#[test]
fn quiet_silences_the_request_log_and_verbose_adds_admin_requests() {
    let requests = [("/api/v3/runs/run_completed", KEYED), ("/_mock/health", "")];
    let (_, quiet) = logged(&["-q"], &requests);
    assert_eq!(quiet, "trigger-mock: shutting down\n");
    let (_, quiet) = logged(&["--quiet"], &requests);
    assert_eq!(quiet, "trigger-mock: shutting down\n");
    let (_, verbose) = logged(&["-v"], &requests);
    let lines: Vec<&str> = verbose.lines().collect();
    assert_eq!(lines.len(), 3, "{verbose}");
    assert!(lines[0].contains(" HTTP/1.1") && lines[0].contains(" wall=20"), "{}", lines[0]);
    assert!(lines[1].starts_with("00:00:00.000 GET    200 /_mock/health "), "{}", lines[1]);
}

#[test]
fn json_log_lines_parse() {
    let (_, stderr) = logged(
        &["--log-format", "json"],
        &[("/api/v3/runs/run_flaky", KEYED), ("/api/v3/runs/run_flaky", KEYED), ("/api/v3/runs/run_flaky", KEYED)],
    );
    let lines: Vec<serde_json::Value> = stderr.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.last().unwrap()["message"], "trigger-mock: shutting down", "every line is JSON: {stderr}");
    let records: Vec<&serde_json::Value> = lines.iter().filter(|l| l["target"] == "trigger_mock::request").collect();
    assert_eq!(records.len(), 3, "{stderr}");
    for (record, status) in records.iter().copied().zip([500, 500, 200]) {
        assert_eq!(record["target"], "trigger_mock::request");
        assert_eq!(record["method"], "GET");
        assert_eq!(record["path"], "/api/v3/runs/run_flaky");
        assert_eq!(record["key"], "tr_dev_secr…");
        assert_eq!(record["at"], "2026-01-01T00:00:00.000Z");
        assert_eq!(record["status"], status);
        assert!(record["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{record}");
    }
    assert_eq!(records[0]["fault"], "builtin:flaky-run faults[0]: serverError");
    assert_eq!(records[2]["run_status"], "COMPLETED_SUCCESSFULLY");
    assert!(records[2].get("fault").is_none());
}

/// A scenario file of `count` runs that set only an id and a status.
fn minimal_runs(count: usize) -> String {
    let runs: Vec<String> =
        (0..count).map(|i| format!("{{\"id\": \"run_big_{i}\", \"status\": \"EXECUTING\"}}")).collect();
    format!("{{\"version\": 1, \"runs\": [\n{}\n]}}\n", runs.join(",\n"))
}

/// A `/proc/PID/status` field, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn a_large_scenario_costs_a_small_multiple_of_its_size_to_serve_and_to_validate() {
    let dir = std::env::temp_dir().join(format!("trigger-mock-many-runs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("large.json");
    let text = minimal_runs(60_000);
    std::fs::write(&file, &text).unwrap();
    let size_kib = text.len() as u64 / 1024;
    // Each run used to cost about 6.5 KB, 160 times its share of the file.
    let budget_kib = 32 * size_kib;

    let (mut idle, _) = spawn(&["--addr", "127.0.0.1:0"], &[]);
    let baseline = rss_kib(idle.id());
    assert!(terminate(&mut idle).success());
    let (mut child, url) = spawn(&["--addr", "127.0.0.1:0", "--scenario", file.to_str().unwrap()], &[]);
    let loaded = rss_kib(child.id());
    let reply = get(&url, "/api/v3/runs/run_big_59999", "authorization: Bearer tr_dev_x\r\n");
    assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("\"status\":\"EXECUTING\""), "{reply}");
    assert!(terminate(&mut child).success());
    assert!(
        loaded.saturating_sub(baseline) < budget_kib,
        "serving a {size_kib} KiB file added {} KiB (budget {budget_kib} KiB)",
        loaded.saturating_sub(baseline)
    );

    // validate's peak, sampled while it runs (a sample never exceeds the peak).
    let mut validate =
        bin().args(["validate", file.to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(status_kib(validate.id(), "VmHWM:"));
        if let Some(status) = validate.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut validate.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(peak < baseline + budget_kib, "validate of a {size_kib} KiB file peaked at {peak} KiB");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scenario_files_over_the_size_limit_are_refused_with_a_location() {
    let dir = std::env::temp_dir().join(format!("trigger-mock-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("huge.json");
    // Valid JSON, one byte over the limit.
    let mut text = b"{\"version\": 1}".to_vec();
    text.resize((8 << 20) + 1, b' ');
    std::fs::write(&file, &text).unwrap();
    let out = bin().args(["validate", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "{}:1:1: the file has 8388609 bytes; a scenario file has at most 8388608 bytes (8 MiB)\n",
            file.display()
        )
    );
    let serve = bin().args(["--addr", "127.0.0.1:0", "--scenario", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(serve.status.code(), Some(2), "serve refuses it before binding");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_of_a_file_full_of_mistakes_reports_the_first_ones_quickly() {
    let dir = std::env::temp_dir().join(format!("trigger-mock-mistakes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mistakes.json");
    let runs: Vec<String> = (0..20_000).map(|i| format!("{{\"id\": \"run_m{i}\", \"ttl\": \"ten\"}}")).collect();
    std::fs::write(&file, format!("{{\"version\": 1, \"runs\": [\n{}\n]}}\n", runs.join(",\n"))).unwrap();
    let started = std::time::Instant::now();
    let out = bin().args(["validate", file.to_str().unwrap()]).output().unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 51, "{err}");
    assert!(lines[0].ends_with(":2:18: runs[0].ttl: `ten` is not a duration such as 10m or 1h30m"), "{}", lines[0]);
    assert!(lines[50].ends_with(":1:1: and 19950 more problem(s) in runs and faults; fix the ones above first"));
    // Locating each of 20 000 problems scanned the file from its start: minutes.
    assert!(took < Duration::from_secs(20), "{took:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flood_of_large_puts_holds_a_bounded_amount_of_memory() {
    let (mut child, url) = spawn(&["--addr", "127.0.0.1:0"], &[]);
    let addr = url.trim_start_matches("http://").to_owned();
    let baseline = status_kib(child.id(), "VmHWM:");
    // 48 clients each send an 8 MiB body at once (not JSON: refused as soon as it is parsed).
    let body = vec![b'x'; 8 << 20];
    let clients: Vec<_> = (0..48)
        .map(|i| {
            let (addr, body) = (addr.clone(), body.clone());
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut stream = std::net::TcpStream::connect(&addr).unwrap();
                let head = format!(
                    "PUT /_mock/scenarios/flood{i} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(&body).unwrap();
                let mut reply = String::new();
                stream.read_to_string(&mut reply).unwrap();
                reply
            })
        })
        .collect();
    for client in clients {
        let reply = client.join().unwrap();
        assert!(reply.starts_with("HTTP/1.1 422"), "{}", &reply[..reply.len().min(300)]);
    }
    let peak = status_kib(child.id(), "VmHWM:");
    assert!(terminate(&mut child).success());
    // 48 bodies held at once would be 384 MiB and more; four at a time, a twelfth of that.
    assert!(peak - baseline < 128 * 1024, "48 PUTs of 8 MiB raised the peak by {} KiB", peak - baseline);
}

/// Starts `serve` with a pipe on stdin; returns the child and its URL.
fn spawn_with_stdin(args: &[&str]) -> (Child, String) {
    let mut child = bin().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_default().to_owned();
    (child, url)
}

fn wait_for_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn exit_on_stdin_close_stops_the_server_when_its_parent_lets_go() {
    use std::io::Write;
    let (mut child, url) = spawn_with_stdin(&["serve", "--addr", "127.0.0.1:0", "--exit-on-stdin-close"]);
    // Whatever arrives on stdin is read and ignored.
    child.stdin.as_mut().unwrap().write_all(&[b'x'; 100_000]).unwrap();
    let reply = get(&url, "/_mock/health", "");
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    drop(child.stdin.take());
    let status = wait_for_exit(&mut child, Duration::from_secs(10));
    if status.is_none() {
        child.kill().unwrap();
    }
    assert!(status.is_some_and(|s| s.success()), "a closed stdin stops it gracefully: {status:?}");

    // Without the flag a closed stdin changes nothing.
    let (mut child, url) = spawn_with_stdin(&["serve", "--addr", "127.0.0.1:0"]);
    drop(child.stdin.take());
    std::thread::sleep(Duration::from_millis(300));
    assert!(get(&url, "/_mock/health", "").starts_with("HTTP/1.1 200 OK"));
    assert!(terminate(&mut child).success());
}

#[test]
fn a_stderr_nobody_reads_neither_stalls_requests_nor_holds_the_exit() {
    use std::io::{Read, Write};
    // stderr is a pipe this test never reads: a few thousand log lines fill it many times over.
    let mut child = bin()
        .args(["--addr", "127.0.0.1:0", "--clock", "2026-01-01T00:00:00Z"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr =
        line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.set_nodelay(true).unwrap();
    // Long paths make long lines: 700 requests write about 300 KiB, the pipe holds 64.
    let long = "x".repeat(300);
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..700 {
        write!(stream, "GET /api/v3/runs/run_{long}_{i} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\r\n")
            .unwrap();
        // One whole answer (its body is JSON ending in `}`) before the next request.
        let mut got = Vec::new();
        while !(got.starts_with(b"HTTP/1.1 ") && got.ends_with(b"}")) {
            let n = stream.read(&mut buf).unwrap_or_else(|e| panic!("request {i} stalled: {e}"));
            assert!(n > 0, "closed at request {i}");
            got.extend_from_slice(&buf[..n]);
        }
    }
    drop(stream);
    let started = std::time::Instant::now();
    assert!(terminate(&mut child).success());
    assert!(started.elapsed() < Duration::from_secs(4), "the exit waited {:?} on stderr", started.elapsed());
}
