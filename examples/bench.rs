//! The benchmark harness (issue 5). Run with `scripts/bench` (release build).
//!
//! `bench`: for a catalogue run, a generated run, a scripted lifecycle run, a
//! 404, a trigger (`POST /api/v1/tasks/{id}/trigger`, the ledger at its cap
//! after the first thousand) and a run the bench key created, drives a
//! bounded load over loopback with wrk (one thread, 32 keep-alive HTTP/1.1
//! connections, a few seconds) against the release trigger-mock and against
//! `examples/ceiling.rs` serving the same bytes, in alternating rounds; prints
//! the median round's requests per second, p50/p99 latency, the ratios to the
//! ceiling and trigger-mock's RSS; and the time from process start to the
//! first 200.
//!
//! `soak`: a million requests mixing every route, faults and packet fetches;
//! asserts no unexpected answer and a flat RSS.
//!
//! `realtime [POLLS]`: opens POLLS (5 000 by default) concurrent idle live
//! long-polls on one scripted run (over 100 HTTP/2 connections), measures the
//! server's RSS before and with them open, then moves the mock clock so the
//! run changes, and prints the latency from the clock move to each poll's
//! answer (p50, p99, max).
//!
//! `trigger-soak [N]`: a million SDK-shaped triggers (by default) across 100
//! environments (100 secret keys) with the default caps; samples VmRSS every
//! 100 000 and asserts it under 64 MiB at the caps and flat after them.
//!
//! `packet [BYTES]`: a generated packet (1 GiB by default) fetched over
//! loopback; prints throughput and the server's RSS (issue 4: at least
//! 1 GB/s, growth under 32 MiB).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 32;
/// Alternating rounds of trigger-mock and the ceiling per case.
const ROUNDS: usize = 3;

/// The round with the median throughput (its latencies come with it).
fn median(mut rounds: Vec<Figures>) -> Figures {
    rounds.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
    rounds.swap_remove(rounds.len() / 2)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// The tokio worker threads of process `pid` (tokio names them), so the
/// figures say how many each server ran with.
fn worker_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "tokio-rt-worker")
                .count()
        })
        .unwrap_or(0)
}

/// A child server and its address.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn spawn(program: &str, args: &[&str]) -> Server {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("a URL on the first line");
        Server { addr: url.trim_start_matches("http://").to_owned(), child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one load run measured.
struct Figures {
    requests: u64,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
    /// Answers whose status was not the expected one (wrk counts non-2xx/3xx).
    unexpected: u64,
}

impl Figures {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// wrk's latency figures: "50%  312.00us", "99%    1.20ms".
fn wrk_micros(text: &str) -> Option<f64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.trim().parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 6e7,
        _ => return None,
    })
}

/// Drives `paths` (round robin) over `CONNECTIONS` keep-alive connections for
/// `duration` with wrk (one thread: on two cores the other belongs to the
/// server). wrk is written in C around epoll and saturates hyper itself, so the
/// ratio to the ceiling is not flattered by a slow client. `expect` is the
/// status every answer must have (200 or 404). With a `body`, each request
/// POSTs it as JSON.
fn load(addr: &str, paths: &[String], key: &str, post: Option<&str>, expect: u16, duration: Duration) -> Figures {
    let dir = std::env::temp_dir().join(format!("trigger-mock-bench-wrk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("paths.lua");
    let list: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    std::fs::write(
        &script,
        format!(
            "wrk.headers[\"authorization\"] = \"Bearer {key}\"\n\
             wrk.headers[\"x-trigger-api-version\"] = \"2025-07-16\"\n\
             wrk.headers[\"content-type\"] = \"application/json\"\n\
             local paths = {{{}}}\n\
             local requests = {{}}\n\
             for i, p in ipairs(paths) do requests[i] = wrk.format({}, p, nil, {}) end\n\
             local n = 0\n\
             request = function() n = n + 1; return requests[(n % #requests) + 1] end\n",
            list.join(","),
            if post.is_some() { "\"POST\"" } else { "\"GET\"" },
            post.map_or("nil".to_owned(), |b| format!("{b:?}")),
        ),
    )
    .unwrap();
    // A short warm-up, then the measured run.
    let run = |secs: f64| {
        Command::new("wrk")
            .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{secs}s"), "--latency", "-s"])
            .arg(&script)
            .arg(format!("http://{addr}"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run wrk (scripts/bench installs it): {e}"))
    };
    let _ = run(1.0);
    let out = run(duration.as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let field = |prefix: &str| {
        text.lines().find_map(|l| l.trim_start().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
    };
    // "  12345 requests in 5.00s, 10.00MB read"
    let (requests, seconds) = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| {
            let mut words = l.split_whitespace();
            let n = words.next()?.parse().ok()?;
            let secs = words.nth(2)?.trim_end_matches(',');
            Some((n, wrk_micros(secs)? / 1e6))
        })
        .unwrap_or_else(|| panic!("unreadable wrk output: {text}"));
    let non_2xx: u64 = field("Non-2xx or 3xx responses:").and_then(|v| v.parse().ok()).unwrap_or(0);
    let errors: u64 = field("Socket errors:")
        .map(|v| v.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    let unexpected = errors + if expect < 300 { non_2xx } else { requests - non_2xx };
    Figures {
        requests,
        seconds,
        p50_us: field("50%").and_then(|v| wrk_micros(&v)).unwrap_or(0.0),
        p99_us: field("99%").and_then(|v| wrk_micros(&v)).unwrap_or(0.0),
        unexpected,
    }
}

async fn fetch(addr: &str, path: &str, key: &str) -> (u16, Bytes) {
    fetch_with(addr, path, key, None).await
}

/// One request: a GET, or a POST of `body` (JSON).
async fn fetch_with(addr: &str, path: &str, key: &str, body: Option<&'static str>) -> (u16, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method(if body.is_some() { "POST" } else { "GET" })
        .uri(path)
        .header("host", addr)
        .header("authorization", format!("Bearer {key}"))
        .header("x-trigger-api-version", "2025-07-16")
        .header("content-type", "application/json")
        .header("content-length", body.map_or(0, str::len))
        .body(Full::new(Bytes::from_static(body.unwrap_or("").as_bytes())))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

/// The trigger the bench sends: what `tasks.trigger("bench-task", {n: 1})` sends.
const TRIGGER_PATH: &str = "/api/v1/tasks/bench-task/trigger";
const TRIGGER_BODY: &str =
    r#"{"payload":"{\"json\":{\"n\":1}}","options":{"payloadType":"application/super+json","payloadSize":16}}"#;

/// Milliseconds from spawning the binary to its first 200.
fn startup_ms(bin: &str) -> f64 {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["--addr", "127.0.0.1:0", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr =
        line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_start_matches("http://").to_owned();
    let ms = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::Read;
            write!(s, "GET /api/v3/runs/run_completed HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\nconnection: close\r\n\r\n").unwrap();
            let mut head = [0u8; 12];
            if s.read_exact(&mut head).is_ok() && &head == b"HTTP/1.1 200" {
                break started.elapsed().as_secs_f64() * 1000.0;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no 200 within 10 s");
    };
    let _ = child.kill();
    let _ = child.wait();
    ms
}

fn scenario_file() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("trigger-mock-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.json");
    std::fs::write(
        &path,
        r#"{"version": 1, "runs": [
            {"id": "run_bench_cycle", "taskIdentifier": "bench", "lifecycle": [
                {"status": "PENDING", "retrieves": 1000},
                {"status": "EXECUTING", "retrieves": 1000000000},
                {"status": "COMPLETED_SUCCESSFULLY"}]},
            {"id": "run_soak_big", "status": "COMPLETED_SUCCESSFULLY", "payloadPacket": {"size": "1MiB"}}
        ],
        "faults": [
            {"runId": "run_soak_flaky_*", "probability": 0.3, "action": {"type": "serverError"}},
            {"runId": "run_soak_slow", "delayMs": 1},
            {"runId": "run_soak_reset", "action": {"type": "reset"}}
        ]}"#,
    )
    .unwrap();
    path
}

async fn bench(bin: &str, ceiling: &str, seconds: u64) {
    let duration = Duration::from_secs(seconds);
    let scenario = scenario_file();
    let server = Server::spawn(bin, &["--addr", "127.0.0.1:0", "-q", "--scenario", scenario.to_str().unwrap()]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_kib = status_kib(server.pid(), "VmRSS:");
    let generated: Vec<String> = (0..1000).map(|i| format!("/api/v3/runs/run_bench{i:04}x")).collect();
    // A run the bench key created, retrieved (it completes on its second retrieve and stays so).
    let (_, made) = fetch_with(&server.addr, TRIGGER_PATH, "tr_dev_bench", Some(TRIGGER_BODY)).await;
    let made: serde_json::Value = serde_json::from_slice(&made).unwrap();
    let created = format!("/api/v3/runs/{}", made["id"].as_str().unwrap());
    let cases: Vec<(&str, Vec<String>, Option<&'static str>, u16)> = vec![
        ("catalogue run", vec!["/api/v3/runs/run_demo_completed".into()], None, 200),
        ("generated run", generated, None, 200),
        ("lifecycle run", vec!["/api/v3/runs/run_bench_cycle".into()], None, 200),
        ("404", vec!["/api/v3/runs/run_Missing".into()], None, 404),
        // Before the triggers, which evict it once the ledger is at its cap.
        ("created run", vec![created], None, 200),
        ("trigger", vec![TRIGGER_PATH.into()], Some(TRIGGER_BODY), 200),
    ];
    println!(
        "{:<15} {:>10} {:>8} {:>8} {:>9}   {:>10} {:>8} {:>8}   {:>6} {:>9}",
        "case", "req/s", "p50 us", "p99 us", "peak RSS", "ceiling/s", "p50 us", "p99 us", "ratio", "p99 ratio"
    );
    let dir = scenario.parent().unwrap().to_owned();
    let mut ceiling_workers = 0;
    for (name, paths, post, expect) in cases {
        let (_, body) = fetch_with(&server.addr, &paths[0], "tr_dev_bench", post).await;
        let body_file = dir.join("body.json");
        std::fs::write(&body_file, &body).unwrap();
        let top = Server::spawn(ceiling, &[body_file.to_str().unwrap()]);
        ceiling_workers = worker_threads(top.pid());
        // Alternate A/B so drift in the machine's speed (other tenants, thermal)
        // falls on both sides; report the median round of each.
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(load(&server.addr, &paths, "tr_dev_bench", post, expect, duration));
            theirs.push(load(&top.addr, &paths, "tr_dev_bench", post, 200, duration));
        }
        drop(top);
        let unexpected: u64 = ours.iter().map(|f| f.unexpected).sum();
        let (ours, theirs) = (median(ours), median(theirs));
        let peak_mib = status_kib(server.pid(), "VmHWM:") as f64 / 1024.0;
        println!(
            "{name:<15} {:>10.0} {:>8.0} {:>8.0} {:>5.1} MiB   {:>10.0} {:>8.0} {:>8.0}   {:>5.0}% {:>9.2}{}",
            ours.rps(),
            ours.p50_us,
            ours.p99_us,
            peak_mib,
            theirs.rps(),
            theirs.p50_us,
            theirs.p99_us,
            100.0 * ours.rps() / theirs.rps(),
            ours.p99_us / theirs.p99_us.max(1.0),
            if unexpected > 0 { format!("  ({unexpected} unexpected answers!)") } else { String::new() }
        );
    }
    let peak_kib = status_kib(server.pid(), "VmHWM:");
    println!(
        "worker threads: trigger-mock {} (its default: half the processors), ceiling {} (tokio's default: one per processor, or TOKIO_WORKER_THREADS)",
        worker_threads(server.pid()),
        ceiling_workers
    );
    drop(server);
    let mut starts: Vec<f64> = (0..7).map(|_| startup_ms(bin)).collect();
    starts.sort_by(f64::total_cmp);
    println!(
        "trigger-mock RSS: {:.1} MiB idle, {:.1} MiB peak (VmHWM) after all cases",
        idle_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    );
    println!(
        "start to first 200: median {:.1} ms (min {:.1}, max {:.1}) over 7 starts",
        starts[3], starts[0], starts[6]
    );
    let _ = std::fs::remove_dir_all(dir);
}

async fn soak(bin: &str, total: u64) {
    let scenario = scenario_file();
    let server = Server::spawn(bin, &["--addr", "127.0.0.1:0", "-q", "--scenario", scenario.to_str().unwrap()]);
    let addr = server.addr.clone();
    let (_, body) = fetch(&addr, "/api/v3/runs/run_soak_big", "tr_dev_soak").await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = json["payloadPresignedUrl"].as_str().unwrap();
    let packet_path = url[url.find("/packets/").unwrap()..].to_owned();
    // (path, statuses allowed)
    let mix: Vec<(String, Vec<u16>)> = vec![
        ("/api/v3/runs/run_demo_completed".into(), vec![200]),
        ("/api/v3/runs/run_soak_generated".into(), vec![200]),
        ("/api/v3/runs/run_bench_cycle".into(), vec![200]),
        ("/api/v3/runs/run_soak_flaky_1".into(), vec![200, 500]),
        ("/api/v3/runs/run_soak_slow".into(), vec![200]),
        ("/api/v3/runs/run_Missing".into(), vec![404]),
        ("/api/v3/runs/not_a_run".into(), vec![400]),
        ("/api/v9/nothing".into(), vec![404]),
        ("/_mock/health".into(), vec![200]),
        (packet_path.clone(), vec![200]),
    ];
    let mix = Arc::new(mix);
    let done = Arc::new(AtomicU64::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let pid = server.pid();
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut next = 100_000;
            while next <= total {
                if done.load(Ordering::Relaxed) >= next {
                    samples.push((next, status_kib(pid, "VmRSS:")));
                    next += 100_000;
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            samples
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS as u64 {
        let (addr, mix, done, unexpected) = (addr.clone(), mix.clone(), done.clone(), unexpected.clone());
        tasks.push(tokio::spawn(async move {
            let connect = || async {
                let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
                tokio::spawn(conn);
                sender
            };
            let mut sender = connect().await;
            let mut i = c;
            loop {
                let n = done.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                // One request in a hundred thousand meets a reset fault, on a connection of its own.
                if n % 100_000 == 99_999 {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                    let req = "GET /api/v3/runs/run_soak_reset HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_soak\r\n\r\n";
                    s.write_all(req.as_bytes()).await.unwrap();
                    let mut buf = [0u8; 64];
                    if !matches!(s.read(&mut buf).await, Err(_) | Ok(0)) {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                let (path, allowed) = &mix[(i % mix.len() as u64) as usize];
                i += 7;
                let req = Request::get(path.as_str())
                    .header("host", addr.as_str())
                    .header("authorization", format!("Bearer tr_dev_soak{c}"))
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                match sender.send_request(req).await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let ok = res.into_body().collect().await.is_ok();
                        if !ok || !allowed.contains(&status) {
                            unexpected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                        sender = connect().await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let samples = sampler.await.unwrap();
    let unexpected = unexpected.load(Ordering::Relaxed);
    println!(
        "soak: {total} requests in {seconds:.1} s ({:.0} req/s), {unexpected} unexpected answers",
        total as f64 / seconds
    );
    for (n, kib) in &samples {
        println!("  after {n:>9} requests: RSS {:.1} MiB", *kib as f64 / 1024.0);
    }
    let first = samples.first().map_or(0, |s| s.1);
    let last = samples.last().map_or(0, |s| s.1);
    let growth = last.saturating_sub(first) as f64 / 1024.0;
    println!("  growth from the first sample to the last: {growth:.1} MiB");
    drop(server);
    let _ = std::fs::remove_dir_all(scenario.parent().unwrap());
    assert_eq!(unexpected, 0, "no unexpected answers");
    assert!(growth < 8.0, "RSS is flat (grew {growth:.1} MiB)");
    println!("soak passed");
}

/// `trigger-soak`: `total` triggers spread over `ENVS` environments (one
/// secret key each), as the SDK sends them (SuperJSON payload, a fresh
/// request idempotency key each; one in ten with tags and an idempotency key),
/// sampling the server's RSS every 100 000 triggers. The default caps fill
/// after `ENVS` x 1000 triggers; from then on RSS must stay flat and, at the
/// caps, under 64 MiB.
async fn trigger_soak(bin: &str, total: u64) {
    const ENVS: u64 = 100;
    const EVERY: u64 = 100_000;
    let server = Server::spawn(bin, &["--addr", "127.0.0.1:0"]);
    let addr = server.addr.clone();
    let pid = server.pid();
    let idle_kib = status_kib(pid, "VmRSS:");
    let done = Arc::new(AtomicU64::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut next = EVERY.min(total);
            while next <= total {
                if done.load(Ordering::Relaxed) >= next {
                    samples.push((next, status_kib(pid, "VmRSS:")));
                    next += EVERY;
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            samples
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS as u64 {
        let (addr, done, unexpected) = (addr.clone(), done.clone(), unexpected.clone());
        tasks.push(tokio::spawn(async move {
            let connect = || async {
                let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
                tokio::spawn(conn);
                sender
            };
            let mut sender = connect().await;
            loop {
                // Counted once answered, so a sample after N has seen N triggers.
                let n = done.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let env = n % ENVS;
                let payload = format!("{{\"json\":{{\"n\":{n},\"user\":\"user_{env}\"}}}}");
                let extra = if n % 10 == 0 {
                    format!(r#","tags":["soak","env-{env}"],"idempotencyKey":"{:064x}","idempotencyKeyOptions":{{"key":"k{n}","scope":"global"}}"#, u128::from(n) * 0x9e37_79b9_7f4a_7c15)
                } else {
                    String::new()
                };
                let body = serde_json::json!({"payload": payload}).to_string();
                let body = format!(
                    r#"{},"options":{{"payloadType":"application/super+json","payloadSize":{}{extra}}}}}"#,
                    &body[..body.len() - 1],
                    payload.len()
                );
                let req = Request::post("/api/v1/tasks/soak-task/trigger")
                    .header("host", addr.as_str())
                    .header("authorization", format!("Bearer tr_dev_trigger_soak_{env:03}"))
                    .header("x-trigger-api-version", "2025-07-16")
                    .header("content-type", "application/json")
                    .header("x-trigger-request-idempotency-key", format!("{:08x}-{c:04x}-4000-8000-{n:012x}", n ^ c))
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                match sender.send_request(req).await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let body = res.into_body().collect().await.map(|b| b.to_bytes());
                        let ok = matches!(&body, Ok(b) if b.starts_with(b"{\"id\":\"run_"));
                        if status != 200 || !ok {
                            unexpected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                        sender = connect().await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let samples = sampler.await.unwrap();
    let unexpected = unexpected.load(Ordering::Relaxed);
    let hwm_kib = status_kib(pid, "VmHWM:");
    drop(server);
    println!(
        "trigger soak: {total} triggers across {ENVS} environments in {seconds:.1} s ({:.0} req/s), {unexpected} unexpected answers",
        total as f64 / seconds
    );
    println!("  idle:                   RSS {:.1} MiB", idle_kib as f64 / 1024.0);
    for (n, kib) in &samples {
        println!("  after {n:>9} triggers: RSS {:.1} MiB", *kib as f64 / 1024.0);
    }
    println!("  peak (VmHWM):           {:.1} MiB", hwm_kib as f64 / 1024.0);
    assert_eq!(unexpected, 0, "no unexpected answers");
    // The caps (1000 runs x 100 environments) are full from the sample at
    // ENVS x 1000 triggers on; after as many again every run of the first
    // fill has been evicted and replaced, so the allocator's free lists hold
    // what churn needs: from there RSS must stay flat, and under 64 MiB.
    let cap = ENVS * 1000;
    let full: Vec<u64> = samples.iter().filter(|(n, _)| *n >= cap).map(|s| s.1).collect();
    let turned: Vec<u64> = samples.iter().filter(|(n, _)| *n >= 2 * cap).map(|s| s.1).collect();
    if let (Some(first), Some(max)) = (full.first(), full.iter().max()) {
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "  at the caps: {:.1} MiB when they filled, at most {:.1} MiB after (goal < 64 MiB)",
            mib(*first),
            mib(*max)
        );
        assert!(mib(*max) < 64.0, "RSS at the caps is under 64 MiB ({:.1} MiB)", mib(*max));
    }
    if let (Some(first), Some(max)) = (turned.first(), turned.iter().max()) {
        let growth = max.saturating_sub(*first) as f64 / 1024.0;
        println!("  growth after the first turnover ({} triggers on): {growth:.1} MiB", 2 * cap);
        assert!(growth < 4.0, "RSS is flat once the caps are reached (grew {growth:.1} MiB)");
    }
    println!("trigger soak passed");
}

fn packet(bin: &str, size: u64) {
    use std::io::Read;
    let dir = std::env::temp_dir().join(format!("trigger-mock-bench-packet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("packet.json");
    std::fs::write(
        &scenario,
        format!(r#"{{"version": 1, "runs": [{{"id": "run_bench", "status": "EXECUTING", "payloadPacket": {{"size": {size}}}}}]}}"#),
    )
    .unwrap();
    let server = Server::spawn(
        bin,
        &["--addr", "127.0.0.1:0", "-q", "--clock", "2026-01-01T00:00:00Z", "--scenario", scenario.to_str().unwrap()],
    );
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer tr_dev_bench\r\nconnection: close\r\n\r\n",
            server.addr
        )
        .unwrap();
        s
    };
    let mut body = String::new();
    get("/api/v3/runs/run_bench").read_to_string(&mut body).unwrap();
    let start = body.find("/packets/").expect("a presigned URL");
    let path = &body[start..start + body[start..].find('"').unwrap()];
    let pid = server.pid();
    let idle = status_kib(pid, "VmRSS:");
    let mut stream = get(path);
    let mut buf = vec![0u8; 1 << 20];
    let (mut total, mut peak, mut reads) = (0u64, idle, 0u64);
    let started = Instant::now();
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        reads += 1;
        if reads % 64 == 0 {
            peak = peak.max(status_kib(pid, "VmRSS:"));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    peak = peak.max(status_kib(pid, "VmRSS:"));
    let hwm = status_kib(pid, "VmHWM:");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    println!("packet bench: {total} bytes (with headers) in {secs:.3} s");
    println!("  throughput       {:.2} GB/s   (goal >= 1 GB/s)", total as f64 / secs / 1e9);
    println!("  server RSS idle  {:.1} MiB", idle as f64 / 1024.0);
    println!(
        "  server RSS peak  {:.1} MiB   growth {:.1} MiB (goal < 32 MiB)",
        peak as f64 / 1024.0,
        peak.saturating_sub(idle) as f64 / 1024.0
    );
    println!("  server VmHWM     {:.1} MiB", hwm as f64 / 1024.0);
}

/// `realtime [POLLS]`: idle live polls, their memory, and the wake-up latency.
async fn realtime(bin: &str, polls: usize) {
    const CONNS: usize = 100;
    let dir = std::env::temp_dir().join(format!("trigger-mock-bench-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("realtime.json");
    std::fs::write(
        &scenario,
        r#"{"version":1,"runs":[{"id":"run_bench_rt","taskIdentifier":"bench",
            "lifecycle":[{"status":"PENDING","for":"1m"},{"status":"EXECUTING"}]}]}"#,
    )
    .unwrap();
    let server = Server::spawn(
        bin,
        &[
            "--addr",
            "127.0.0.1:0",
            "--clock",
            "2026-01-01T00:00:00Z",
            "--realtime-hold-ms",
            "300000",
            "--journal-size",
            "0",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    );
    let addr = server.addr.clone();
    let key = "tr_dev_bench_rt";
    let path = "/realtime/v1/runs/run_bench_rt";
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut one, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("{path}?offset=-1"))
        .header("host", &addr)
        .header("authorization", format!("Bearer {key}"))
        .header("x-trigger-electric-version", "1.0.0-beta.1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = one.send_request(req).await.unwrap();
    let offset = res.headers()["electric-offset"].to_str().unwrap().to_owned();
    let _ = res.into_body().collect().await;
    let idle_kib = status_kib(server.pid(), "VmRSS:");

    let mut senders = Vec::new();
    for _ in 0..CONNS {
        let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        senders.push(sender);
    }
    let moved_at: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    let live = format!("http://{addr}{path}?cursor=&handle=run-run_bench_rt&live=true&log=full&offset={offset}");
    let tasks: Vec<_> = (0..polls)
        .map(|i| {
            let mut sender = senders[i % CONNS].clone();
            let req = Request::get(&live)
                .header("authorization", format!("Bearer {key}"))
                .header("x-trigger-electric-version", "1.0.0-beta.1")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let moved_at = moved_at.clone();
            tokio::spawn(async move {
                let res = sender.send_request(req).await.expect("the poll is answered");
                let ok = res.status() == 200;
                let body = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let at = Instant::now();
                let changed = ok && body.windows(9).any(|w| w == b"EXECUTING");
                (moved_at.get().map(|m| at.saturating_duration_since(*m)), changed)
            })
        })
        .collect();
    // Let every poll reach the server and park, then measure the server's CPU while they wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let open_kib = status_kib(server.pid(), "VmRSS:");
    let cpu_before = cpu_ticks(server.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_ticks = cpu_ticks(server.pid()).saturating_sub(cpu_before);
    let finished_early = tasks.iter().filter(|t| t.is_finished()).count();
    moved_at.set(Instant::now()).unwrap();
    let (status, _) = fetch_post(&addr, "/_mock/clock", r#"{"advance":"1m"}"#).await;
    assert_eq!(status, 200);
    let mut latencies = Vec::with_capacity(polls);
    let mut unchanged = 0;
    for t in tasks {
        let (latency, changed) = t.await.unwrap();
        if !changed {
            unchanged += 1;
        }
        latencies.push(latency.unwrap_or_default());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!("realtime: {polls} idle live polls over {CONNS} HTTP/2 connections");
    println!(
        "  RSS: {:.1} MiB before, {:.1} MiB with the polls open ({:.2} KiB per poll)",
        idle_kib as f64 / 1024.0,
        open_kib as f64 / 1024.0,
        (open_kib.saturating_sub(idle_kib)) as f64 / polls as f64
    );
    println!("  server CPU while the polls waited 2 s: {idle_ticks} clock ticks (1 tick = 10 ms)");
    println!(
        "  clock move → answer: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {finished_early} answered before the move, {unchanged} without the change",
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// A POST over a fresh HTTP/1.1 connection; its status and body.
async fn fetch_post(addr: &str, path: &str, body: &str) -> (u16, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::post(path)
        .header("host", addr)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin = std::env::var("TRIGGER_MOCK_BIN").unwrap_or_else(|_| "target/release/trigger-mock".into());
    let ceiling = std::env::var("CEILING_BIN").unwrap_or_else(|_| "target/release/examples/ceiling".into());
    if args.first().map(String::as_str) == Some("packet") {
        // Plain blocking reads: no runtime threads beside the client.
        return packet(&bin, args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1 << 30));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match args.first().map(String::as_str) {
        Some("realtime") => {
            let polls = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5_000);
            runtime.block_on(realtime(&bin, polls));
        }
        Some("trigger-soak") => {
            let total = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
            runtime.block_on(trigger_soak(&bin, total));
        }
        Some("soak") => {
            let total = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
            runtime.block_on(soak(&bin, total));
        }
        _ => {
            let seconds = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5);
            runtime.block_on(bench(&bin, &ceiling, seconds));
        }
    }
}
