//! Hostile clients: slow-loris, oversized headers and bodies, floods of idle
//! connections, malformed HTTP, HTTP/2 abuse, pipelining, clients that vanish
//! in the middle of a large packet, the admin API's access control, and
//! responses that must not reveal local paths or panic text.
//!
//! Every test ends by checking that the server still serves a normal request.

use crate::support::{config, request, request_with_body, start};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trigger_mock::config::{AdminAccess, Config, Limits};
use trigger_mock::scenario::Source;

/// The request every test ends with; the answer is a 200 whose status is COMPLETED.
pub(crate) const NORMAL: &[u8] =
    b"GET /api/v3/runs/run_completed HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\
x-trigger-api-version: 2025-07-16\r\nconnection: close\r\n\r\n";

/// How long any single exchange may take before a test gives up.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 over sockets.

/// A response as read off the wire.
pub(crate) struct Raw {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Raw {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub(crate) fn text(&self) -> String {
        format!("{}\r\n\r\n{}", self.head, String::from_utf8_lossy(&self.body))
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A header of a response head, by case-insensitive name.
pub(crate) fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads the next response from `stream`. Bytes read past its end stay in
/// `pending` for the next call (pipelining). `None` when the connection ends
/// (orderly or reset) before a byte of a response arrived.
pub(crate) async fn read_response(stream: &mut (impl AsyncRead + Unpin), pending: &mut Vec<u8>) -> Option<Raw> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut buf = vec![0u8; 64 * 1024];
    let mut ended = false;
    for _ in 0..100_000 {
        if let Some(end) = find(pending, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let start = end + 4;
            let want = match header(&head, "content-length") {
                Some(len) => Some(start + len.parse::<usize>().unwrap_or_else(|e| panic!("{e}: {head}"))),
                None if ended => Some(pending.len()),
                None => None,
            };
            if let Some(want) = want.filter(|w| pending.len() >= *w) {
                let status = head
                    .strip_prefix("HTTP/1.1 ")
                    .and_then(|s| s.get(..3))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {head}"));
                let body = pending[start..want].to_vec();
                pending.drain(..want);
                return Some(Raw { status, head, body });
            }
        }
        if ended {
            assert!(
                pending.is_empty(),
                "the connection ended inside a response: {:?}",
                String::from_utf8_lossy(pending)
            );
            return None;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => ended = true,
            Ok(Ok(n)) => pending.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no complete response within {PATIENCE:?}; got {:?}", String::from_utf8_lossy(pending)),
        }
    }
    panic!("too many reads for one response")
}

/// Sends `request` on a fresh connection and reads one response.
pub(crate) async fn exchange(addr: SocketAddr, request: &[u8]) -> Option<Raw> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything; what it answered is what counts.
    let _ = stream.write_all(request).await;
    read_response(&mut stream, &mut Vec::new()).await
}

/// Reads until the peer closes (or resets) the connection: every byte that
/// came, and how long it took. Panics when the connection stays open.
pub(crate) async fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + patience;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..100_000 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (out, started.elapsed()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after {patience:?}; got {:?}", String::from_utf8_lossy(&out)),
        }
    }
    panic!("too many reads")
}

/// The normal request gets its 200 quickly; returns how long it took.
pub(crate) async fn assert_serves(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let reply = exchange(addr, NORMAL).await.expect("an answer to the normal request");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["status"], "COMPLETED");
    started.elapsed()
}

/// The path and query of the presigned URL of a run's payload.
pub(crate) async fn payload_path(addr: SocketAddr, run_id: &str) -> String {
    let request = format!(
        "GET /api/v3/runs/{run_id} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer tr_dev_x\r\n\
         x-trigger-api-version: 2025-07-16\r\nconnection: close\r\n\r\n"
    );
    let reply = exchange(addr, request.as_bytes()).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let url = reply.json()["payloadPresignedUrl"].as_str().unwrap_or_else(|| panic!("{}", reply.text())).to_owned();
    let rest = url.strip_prefix("http://").unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

// ---------------------------------------------------------------------------
// The real binary.

/// A folder of its own under the system's temporary folder, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("trigger-mock-hostile-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `trigger-mock` in its own process, killed on drop if a test fails first.
pub(crate) struct Mock {
    child: Child,
    /// 127.0.0.1 and the port it announced.
    pub(crate) addr: SocketAddr,
    /// The first line of its stdout.
    pub(crate) announced: String,
    stderr: BufReader<ChildStderr>,
}

impl Mock {
    /// The binary on an ephemeral port with a frozen clock and `scenario`.
    pub(crate) fn with_scenario(scenario: &std::path::Path) -> Mock {
        let scenario = scenario.to_str().unwrap();
        Mock::spawn(&["--addr", "127.0.0.1:0", "--clock", "2026-01-01T00:00:00Z", "--scenario", scenario])
    }

    pub(crate) fn spawn(args: &[&str]) -> Mock {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trigger-mock"));
        for (key, _) in std::env::vars() {
            if key.starts_with("TRIGGER_MOCK_") {
                cmd.env_remove(key);
            }
        }
        let mut child =
            cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let announced = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?}: no first line within 10 s");
            }
        };
        let port = announced
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .and_then(|hostport| hostport.rsplit(':').next()?.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            panic!("{args:?}: the first line names no URL: {announced:?}; stderr: {err}");
        };
        Mock { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), announced, stderr }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, checks the process exits 0 within 5 s, and returns
    /// everything it wrote on stderr.
    pub(crate) fn stop(mut self) -> String {
        let pid = self.pid().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let mut exited = None;
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = exited.expect("the server stops within 5 s of SIGTERM");
        let mut err = String::new();
        self.stderr.read_to_string(&mut err).unwrap();
        assert!(status.success(), "{status}: {err}");
        err
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident memory of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}"))
}

/// Open file descriptors of a process (its sockets among them).
pub(crate) fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

// ---------------------------------------------------------------------------
// 1. Slow-loris.

pub(crate) fn slow_config() -> Config {
    Config { limits: Limits { header_timeout: Duration::from_millis(300), ..Limits::default() }, ..config() }
}

/// Waits for the server to close `stream`: the bytes it sent first and when
/// it closed, or `None` when it is still open after `patience`.
pub(crate) async fn closed_within(mut stream: TcpStream, patience: Duration) -> Option<(Vec<u8>, Instant)> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    for _ in 0..10_000 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some((out, Instant::now())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
    None
}

#[tokio::test]
async fn slow_loris_is_disconnected_after_the_header_timeout_while_others_are_served() {
    let server = start(&slow_config()).await;
    let addr = server.addr();
    let mut loris = TcpStream::connect(addr).await.unwrap();
    loris.write_all(b"GET /api/v3/runs/run_completed HT").await.unwrap();
    let sent = Instant::now();
    let closed = tokio::spawn(closed_within(loris, Duration::from_secs(2)));
    // Meanwhile: a normal client, and a slow but honest one that finishes within the timeout.
    assert!(assert_serves(addr).await < Duration::from_secs(1));
    let mut honest = TcpStream::connect(addr).await.unwrap();
    honest.write_all(&NORMAL[..20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    honest.write_all(&NORMAL[20..]).await.unwrap();
    let reply = read_response(&mut honest, &mut Vec::new()).await.expect("the honest slow client is answered");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let served = Instant::now();
    let (bytes, closed_at) = closed.await.unwrap().expect("the slow-loris is disconnected within 2 s");
    let after = closed_at - sent;
    assert!(served < closed_at, "the other clients were served while the slow-loris was connected");
    assert!(bytes.is_empty(), "no answer to half a request line: {:?}", String::from_utf8_lossy(&bytes));
    assert!(after >= Duration::from_millis(280), "closed after {after:?}, before the 300 ms timeout");
    assert!(after < Duration::from_secs(1), "closed only after {after:?}");
    assert_serves(addr).await;
    server.shutdown().await;
}

#[tokio::test]
async fn slow_loris_after_a_first_request_is_disconnected_after_the_header_timeout() {
    // The same attack on a kept-alive connection, after an honest request:
    // the server's loop, not a per-request timer, enforces the timeout.
    let server = start(&slow_config()).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let kept_alive = String::from_utf8_lossy(NORMAL).replace("connection: close\r\n", "");
    stream.write_all(kept_alive.as_bytes()).await.unwrap();
    let reply = read_response(&mut stream, &mut Vec::new()).await.expect("the first request is answered");
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Well past the header timeout, idle between requests: still open (the idle timeout is 60 s).
    tokio::time::sleep(Duration::from_millis(700)).await;
    stream.write_all(b"GET /api/v3/runs/run_completed HT").await.unwrap();
    let sent = Instant::now();
    let (bytes, closed_at) =
        closed_within(stream, Duration::from_secs(3)).await.expect("the slow-loris is disconnected within 3 s");
    let after = closed_at - sent;
    assert!(bytes.is_empty(), "no answer to half a request line: {:?}", String::from_utf8_lossy(&bytes));
    assert!(after >= Duration::from_millis(280), "closed after {after:?}, before the 300 ms timeout");
    assert!(after < Duration::from_secs(1), "closed only after {after:?}");
    assert_serves(server.addr()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn silent_clients_are_disconnected_after_the_header_timeout() {
    // A connection that sends nothing, or only the start of the HTTP/2 preface,
    // holds a socket and a task as surely as half a request line does.
    let server = start(&slow_config()).await;
    let addr = server.addr();
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut half_preface = TcpStream::connect(addr).await.unwrap();
    half_preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let started = Instant::now();
    let silent = tokio::spawn(closed_within(silent, Duration::from_secs(2)));
    let half = tokio::spawn(closed_within(half_preface, Duration::from_secs(2)));
    assert_serves(addr).await;
    let (silent, half) = (silent.await.unwrap(), half.await.unwrap());
    assert_serves(addr).await;
    let silent = silent.expect("a client that sends nothing is disconnected (still open 2 s after a 300 ms timeout)");
    let half = half.expect("a client that sends half the HTTP/2 preface is disconnected (still open after 2 s)");
    for (name, closed_at) in [("silent", silent.1), ("half preface", half.1)] {
        assert!(closed_at - started < Duration::from_secs(1), "{name}: closed after {:?}", closed_at - started);
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 2. Header size.

/// The normal request with `count` extra headers of `each` bytes.
fn padded(count: usize, each: usize) -> Vec<u8> {
    let mut out = NORMAL[..NORMAL.len() - 2].to_vec();
    for i in 0..count {
        out.extend_from_slice(format!("x-pad-{i}: ").as_bytes());
        out.extend(std::iter::repeat_n(b'a', each));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[tokio::test]
async fn oversized_headers_get_431_and_headers_under_the_limit_are_served() {
    let server = start(&config()).await;
    let addr = server.addr();
    for (count, each) in [(10, 4 * 1024), (15, 4 * 1024)] {
        let reply = exchange(addr, &padded(count, each)).await.expect("an answer");
        assert_eq!(reply.status, 200, "{} KiB of headers: {}", count * each / 1024, reply.head);
    }
    for (count, each) in [(10, 10 * 1024), (1, 100 * 1024), (20, 4 * 1024)] {
        let reply = exchange(addr, &padded(count, each)).await.expect("an answer, not a bare close");
        assert_eq!(reply.status, 431, "{} KiB of headers: {}", count * each / 1024, reply.head);
    }
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 3. Body size.

#[tokio::test]
async fn a_nine_mib_scenario_body_gets_413_and_the_previous_scenarios_keep_serving() {
    let keep = r#"{"version":1,"runs":[{"id":"run_kept","status":"CANCELED"}]}"#;
    let cfg = Config {
        inline_scenarios: vec![Source { name: "keep.json".into(), text: keep.into(), path: None }],
        ..config()
    };
    let server = start(&cfg).await;
    let addr = server.addr();
    // A valid scenario, padded to 9 MiB by its description: were it loaded, it would show.
    let mut body = br#"{"version":1,"description":""#.to_vec();
    let tail = br#"","runs":[{"id":"run_from_big","status":"CANCELED"}]}"#;
    body.resize((9 << 20) - tail.len(), b'a');
    body.extend_from_slice(tail);
    let head = format!(
        "PUT /_mock/scenarios/big HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for chunk in body.chunks(64 * 1024) {
            if wr.write_all(chunk).await.is_err() {
                return;
            }
        }
    });
    let reply = read_response(&mut rd, &mut Vec::new()).await.expect("an answer");
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(header(&reply.head, "content-type").unwrap_or_default().starts_with("application/json"), "{}", reply.head);
    let error = reply.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("at most 8 MiB"), "the limit is named: {}", reply.text());
    drop(rd);
    tokio::time::timeout(PATIENCE, writer).await.expect("the writer finishes").unwrap();

    let scenarios = request(&server, "GET", "/_mock/scenarios", &[]).await;
    assert_eq!(scenarios.status, StatusCode::OK);
    let scenarios = scenarios.json();
    assert_eq!(scenarios["sources"], serde_json::json!(["keep.json"]), "{scenarios}");
    let runs = scenarios["runs"].as_array().unwrap();
    assert!(runs.contains(&"run_kept".into()) && !runs.contains(&"run_from_big".into()), "{scenarios}");
    let kept = request(
        &server,
        "GET",
        "/api/v3/runs/run_kept",
        &[("authorization", "Bearer tr_dev_x"), ("x-trigger-api-version", "2025-07-16")],
    )
    .await;
    assert_eq!((kept.status, &kept.json()["status"]), (StatusCode::OK, &serde_json::json!("CANCELED")));
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 4. Many idle connections.

#[tokio::test]
async fn six_hundred_idle_connections_do_not_slow_normal_requests() {
    let server = start(&config()).await;
    let addr = server.addr();
    let started = Instant::now();
    let mut silent = Vec::with_capacity(500);
    for _ in 0..500 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut kept_alive = Vec::with_capacity(100);
    for _ in 0..100 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /api/v3/runs/run_queued HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\r\n")
            .await
            .unwrap();
        let reply = read_response(&mut stream, &mut Vec::new()).await.expect("an answer");
        assert_eq!(reply.status, 200, "{}", reply.head);
        assert!(header(&reply.head, "connection").is_none_or(|c| !c.eq_ignore_ascii_case("close")), "kept alive");
        kept_alive.push(stream);
    }
    let opened = started.elapsed();
    for i in 0..10 {
        let took = assert_serves(addr).await;
        assert!(took < Duration::from_secs(1), "request {i} took {took:?} with 600 idle connections open");
    }
    // The idle keep-alive connections still work.
    for stream in kept_alive.iter_mut().step_by(10) {
        stream.write_all(NORMAL).await.unwrap();
        let reply = read_response(stream, &mut Vec::new()).await.expect("an answer on an idle connection");
        assert_eq!(reply.status, 200, "{}", reply.head);
    }
    drop(silent);
    drop(kept_alive);
    assert!(assert_serves(addr).await < Duration::from_secs(1));
    let stopping = Instant::now();
    tokio::time::timeout(PATIENCE, server.shutdown()).await.expect("shutdown is not held up");
    assert!(opened < Duration::from_secs(5), "opening 600 connections took {opened:?}");
    assert!(stopping.elapsed() < Duration::from_secs(2), "{:?}", stopping.elapsed());
}

// ---------------------------------------------------------------------------
// 5. Malformed HTTP.

#[tokio::test]
async fn malformed_requests_get_400_or_a_closed_connection() {
    let server = start(&config()).await;
    let addr = server.addr();
    let mut huge_line = b"GET /api/v3/runs/run_".to_vec();
    huge_line.extend(std::iter::repeat_n(b'a', 100 * 1024));
    huge_line.extend_from_slice(b" HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\r\n");
    // Deterministic noise (a linear congruential generator), but not starting like "PRI".
    let mut noise = vec![0xffu8];
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        noise.push((x >> 16) as u8);
    }
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("garbage", b"\x00\x01GARBAGE\r\n\r\n".to_vec(), &[400]),
        ("invalid method", b"G@T /api/v3/runs/run_completed HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(), &[400]),
        (
            "header without colon",
            b"GET /api/v3/runs/run_completed HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "header name with space",
            b"GET /api/v3/runs/run_completed HTTP/1.1\r\nhost: x\r\nbad name: v\r\n\r\n".to_vec(),
            &[400],
        ),
        ("unknown version", b"GET /api/v3/runs/run_completed HTTP/7.0\r\nhost: x\r\n\r\n".to_vec(), &[400, 505]),
        (
            "bad content-length",
            b"PUT /_mock/scenarios/x HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "two content-lengths",
            b"PUT /_mock/scenarios/x HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n{}".to_vec(),
            &[400],
        ),
        ("huge request line", huge_line, &[400, 414, 431]),
        ("noise", noise, &[400]),
    ];
    for (name, bytes, allowed) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(&bytes).await;
        let (answer, _) = read_until_closed(&mut stream, PATIENCE).await;
        if !answer.is_empty() {
            let text = String::from_utf8_lossy(&answer);
            let status: u16 = text.strip_prefix("HTTP/1.1 ").and_then(|s| s.get(..3)?.parse().ok()).unwrap_or(0);
            assert!(allowed.contains(&status), "{name}: {text}");
        }
        assert_serves(addr).await;
    }
    // The HTTP/2 preface followed by frames that are not frames: the connection ends.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0xff; 64]);
    let _ = stream.write_all(&bytes).await;
    read_until_closed(&mut stream, PATIENCE).await;
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 6. HTTP/2.

pub(crate) fn h2_get(addr: SocketAddr, id: &str) -> hyper::http::request::Builder {
    Request::get(format!("http://{addr}/api/v3/runs/{id}"))
        .header("authorization", "Bearer tr_dev_x")
        .header("x-trigger-api-version", "2025-07-16")
}

pub(crate) async fn h2_connect(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// One HTTP/2 request: its status and the body's `status`, or the error.
async fn h2_status(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    req: Request<Empty<Bytes>>,
) -> Result<(StatusCode, serde_json::Value), String> {
    let res =
        tokio::time::timeout(PATIENCE, sender.send_request(req)).await.expect("answered").map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok((status, json["status"].clone()))
}

#[tokio::test]
async fn fifty_concurrent_http2_streams_and_an_oversized_h2_header() {
    let server = start(&config()).await;
    let addr = server.addr();
    let sender = h2_connect(addr).await;
    let mut streams = tokio::task::JoinSet::new();
    let ids = [("run_completed", "COMPLETED"), ("run_failed", "FAILED"), ("run_queued", "QUEUED")];
    for i in 0..50 {
        let mut sender = sender.clone();
        let (id, want) = ids[i % ids.len()];
        streams.spawn(async move {
            let got = h2_status(&mut sender, h2_get(addr, id).body(Empty::new()).unwrap()).await;
            (i, want, got)
        });
    }
    let mut done = 0;
    while let Some(joined) = streams.join_next().await {
        let (i, want, got) = joined.unwrap();
        assert_eq!(got, Ok((StatusCode::OK, want.into())), "stream {i}");
        done += 1;
    }
    assert_eq!(done, 50);

    let mut same = sender.clone();
    let big = "a".repeat(100 * 1024);
    let refused =
        h2_status(&mut same, h2_get(addr, "run_completed").header("x-pad", big).body(Empty::new()).unwrap()).await;
    assert!(
        matches!(refused, Err(_) | Ok((StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, _))),
        "a 100 KiB header list is refused (a stream error or 431): {refused:?}"
    );
    let mut fresh = h2_connect(addr).await;
    let again = h2_status(&mut fresh, h2_get(addr, "run_failed").body(Empty::new()).unwrap()).await;
    assert_eq!(again, Ok((StatusCode::OK, "FAILED".into())), "a new HTTP/2 connection works");
    let same_again = h2_status(&mut same, h2_get(addr, "run_queued").body(Empty::new()).unwrap()).await;
    assert_eq!(same_again, Ok((StatusCode::OK, "QUEUED".into())), "the connection outlives the refused stream");
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 7. Pipelining.

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = start(&config()).await;
    let addr = server.addr();
    let mut all = Vec::new();
    let ids = ["run_completed", "run_failed", "run_queued", "run_NOPE"];
    for (i, id) in ids.iter().enumerate() {
        let close = if i == ids.len() - 1 { "connection: close\r\n" } else { "" };
        all.extend_from_slice(
            format!(
                "GET /api/v3/runs/{id} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\
                 x-trigger-api-version: 2025-07-16\r\n{close}\r\n"
            )
            .as_bytes(),
        );
    }
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&all).await.unwrap();
    let mut pending = Vec::new();
    let mut got = Vec::new();
    for _ in &ids {
        let reply = read_response(&mut stream, &mut pending).await.expect("one response per request");
        let json = reply.json();
        got.push((reply.status, json.get("status").or(json.get("error")).cloned().unwrap_or_default()));
    }
    assert_eq!(
        got,
        [
            (200, "COMPLETED".into()),
            (200, "FAILED".into()),
            (200, "QUEUED".into()),
            (404, serde_json::Value::from("Not found"))
        ]
    );
    let (rest, _) = read_until_closed(&mut stream, PATIENCE).await;
    assert!(pending.is_empty() && rest.is_empty(), "nothing after the last response");
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 8. Clients that vanish in the middle of a large packet.

/// Requests `path`, reads about 1 MiB of it, and goes away: with a reset
/// (zero linger) when `reset`, else with a plain close of a socket that has
/// unread data (which also ends in a reset).
async fn vanish(addr: SocketAddr, path: &str, reset: bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    for _ in 0..10_000 {
        if got >= 1 << 20 {
            break;
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await.expect("1 MiB within 5 s").unwrap();
        assert!(n > 0, "closed after {got} bytes");
        if got == 0 {
            assert!(buf.starts_with(b"HTTP/1.1 200 OK"), "{:?}", String::from_utf8_lossy(&buf[..n.min(200)]));
        }
        got += n;
    }
    assert!(got >= 1 << 20);
    if reset {
        stream.set_zero_linger().unwrap();
    }
}

#[tokio::test]
async fn clients_that_vanish_mid_packet_leave_no_connections_or_memory_behind() {
    let dir = TempDir::new("vanish");
    let scenario = dir.path().join("big.json");
    std::fs::write(
        &scenario,
        r#"{"version":1,"runs":[
            {"id":"run_big","status":"EXECUTING","payloadPacket":{"size":"256MiB"}},
            {"id":"run_small","status":"EXECUTING","payloadPacket":{"data":{"hello":"world"},"offload":"always"}}
        ]}"#,
    )
    .unwrap();
    let mock = Mock::with_scenario(&scenario);
    let (addr, pid) = (mock.addr, mock.pid());
    let big = payload_path(addr, "run_big").await;
    let small = payload_path(addr, "run_small").await;
    assert_serves(addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fds_before = open_fds(pid);
    vanish(addr, &big, false).await; // warms the allocator up
    let rss_before = rss_kib(pid);
    let mut peak = rss_before;
    for i in 0..20 {
        vanish(addr, &big, i % 2 == 1).await;
        peak = peak.max(rss_kib(pid));
    }
    let mut fds_after = open_fds(pid);
    for _ in 0..40 {
        if fds_after <= fds_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fds_after = open_fds(pid);
    }
    assert!(
        fds_after <= fds_before,
        "{fds_before} descriptors before, {fds_after} two seconds after 21 vanished clients"
    );
    let growth = peak.saturating_sub(rss_before);
    assert!(growth < 32 * 1024, "RSS grew {growth} KiB across 20 vanished clients ({rss_before} KiB before)");

    assert_serves(addr).await;
    let packet =
        exchange(addr, format!("GET {small} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes()).await;
    let packet = packet.expect("the small packet");
    assert_eq!((packet.status, packet.json()), (200, serde_json::json!({"hello": "world"})), "{}", packet.text());
    let ranged = exchange(
        addr,
        format!("GET {big} HTTP/1.1\r\nhost: {addr}\r\nrange: bytes=0-99\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("a range of the big packet");
    assert_eq!((ranged.status, ranged.body.len()), (206, 100), "{}", ranged.head);
    let stderr = mock.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---------------------------------------------------------------------------
// 9. The admin API's access control, and a warning off loopback.

#[tokio::test]
async fn the_admin_token_is_required_and_checked() {
    let server = start(&Config { admin: AdminAccess::Token("t0ken".into()), ..config() }).await;
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Bearer tr_dev_x"),
        Some("Bearer t0ke"),
        Some("Bearer t0ken2"),
        Some("t0ken"),
        Some("Basic t0ken"),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let reply = request(&server, "GET", "/_mock/health", &headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(reply.json()["error"].is_string(), "{auth:?}: {:?}", reply.body);
        assert!(reply.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    }
    let scenario = r#"{"version":1,"runs":[{"id":"run_sneaky","status":"CANCELED"}]}"#;
    let sneaky =
        request_with_body(&server, "PUT", "/_mock/scenarios/sneaky", &[("authorization", "Bearer nope")], scenario)
            .await;
    assert_eq!(sneaky.status, StatusCode::UNAUTHORIZED);
    let health = request(&server, "GET", "/_mock/health", &[("authorization", "Bearer t0ken")]).await;
    assert_eq!((health.status, &health.json()["status"]), (StatusCode::OK, &serde_json::json!("ok")));
    let listed = request(&server, "GET", "/_mock/scenarios", &[("authorization", "Bearer t0ken")]).await.json();
    assert!(!listed["sources"].as_array().unwrap().contains(&"sneaky".into()), "{listed}");
    assert_serves(server.addr()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn without_the_admin_api_mock_routes_are_404_and_runs_still_work() {
    let server = start(&Config { admin: AdminAccess::Off, ..config() }).await;
    for path in ["/_mock/health", "/_mock", "/_mock/scenarios", "/_mock/journal"] {
        let reply = request(&server, "GET", path, &[("authorization", "Bearer anything")]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let scenario = r#"{"version":1,"runs":[{"id":"run_sneaky","status":"CANCELED"}]}"#;
    let put = request_with_body(&server, "PUT", "/_mock/scenarios/sneaky", &[], scenario).await;
    assert_eq!(put.status, StatusCode::NOT_FOUND);
    let reset = request(&server, "POST", "/_mock/reset", &[]).await;
    assert_eq!(reset.status, StatusCode::NOT_FOUND);
    assert_serves(server.addr()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_binary_warns_off_loopback_and_its_admin_flags_work() {
    let wide = Mock::spawn(&["--addr", "0.0.0.0:0"]);
    assert!(wide.announced.contains("http://0.0.0.0:"), "{}", wide.announced);
    assert_serves(wide.addr).await; // over 127.0.0.1, never 0.0.0.0
    // The warning comes before the URL; reading stderr once the process is gone cannot hang.
    let err = wide.stop();
    let warning = err.lines().next().unwrap_or_default();
    assert!(warning.contains("not a loopback address"), "{err}");
    assert!(warning.contains("admin API"), "the open admin API is mentioned: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let health = |addr, auth: &str| {
        let request = format!("GET /_mock/health HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n");
        async move { exchange(addr, request.as_bytes()).await.expect("an answer").status }
    };
    let token = Mock::spawn(&["--addr", "127.0.0.1:0", "--admin-token", "t0ken"]);
    assert_eq!(health(token.addr, "").await, 401);
    assert_eq!(health(token.addr, "authorization: Bearer wrong\r\n").await, 401);
    assert_eq!(health(token.addr, "authorization: Bearer t0ken\r\n").await, 200);
    assert_serves(token.addr).await;
    let err = token.stop();
    assert!(!err.contains("not a loopback") && !err.contains("panicked"), "{err}");

    let off = Mock::spawn(&["--addr", "127.0.0.1:0", "--no-admin"]);
    assert_eq!(health(off.addr, "").await, 404);
    assert_serves(off.addr).await;
    assert!(!off.stop().contains("panicked"));
}

// ---------------------------------------------------------------------------
// 10. No local paths, no panic text.

#[tokio::test]
async fn no_response_reveals_a_local_path_or_panic_text() {
    let dir = TempDir::new("paths");
    let scenario = dir.path().join("paths.json");
    std::fs::write(dir.path().join("payload.json"), r#"{"from":"a file"}"#).unwrap();
    std::fs::write(
        &scenario,
        r#"{"version":1,"runs":[
            {"id":"run_on_disk","status":"EXECUTING","payloadPacket":{"file":"payload.json","offload":"always"}}
        ]}"#,
    )
    .unwrap();
    let mock = Mock::spawn(&["--addr", "127.0.0.1:0", "--scenario", scenario.to_str().unwrap()]);
    let addr = mock.addr;
    let secrets = {
        let mut s = vec![dir.path().to_string_lossy().into_owned()];
        s.push(dir.path().canonicalize().unwrap().to_string_lossy().into_owned());
        s.push(dir.path().file_name().unwrap().to_string_lossy().into_owned());
        s
    };
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    let send = |method: &str, path: &str, body: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer tr_dev_x\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let ask = |label: &str, request: String| {
        let label = label.to_owned();
        async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let _ = stream.write_all(request.as_bytes()).await;
            let (bytes, _) = read_until_closed(&mut stream, PATIENCE).await;
            (label, bytes)
        }
    };
    seen.push(ask("health", send("GET", "/_mock/health", "")).await);
    seen.push(ask("scenarios", send("GET", "/_mock/scenarios", "")).await);
    let packet = payload_path(addr, "run_on_disk").await;
    seen.push(ask("file packet", send("GET", &packet, "")).await);
    let invalid = [
        ("not JSON", "this is not JSON {"),
        ("unknown field", r#"{"version":1,"runs":[{"id":"run_x","stauts":"FAILED"}]}"#),
        ("duplicate of the file's run", r#"{"version":1,"runs":[{"id":"run_on_disk","status":"CANCELED"}]}"#),
        (
            "a file outside",
            r#"{"version":1,"runs":[{"id":"run_x","status":"EXECUTING","payloadPacket":{"file":"../../etc/passwd"}}]}"#,
        ),
        (
            "a file without a folder",
            r#"{"version":1,"runs":[{"id":"run_x","status":"EXECUTING","payloadPacket":{"file":"payload.json"}}]}"#,
        ),
    ];
    for (label, body) in invalid {
        seen.push(ask(label, send("PUT", "/_mock/scenarios/x", body)).await);
    }
    // The file goes away under the running server: reloading and serving it both fail.
    std::fs::remove_file(dir.path().join("payload.json")).unwrap();
    seen.push(ask("reload without the file", send("PUT", "/_mock/scenarios/x", r#"{"version":1,"runs":[]}"#)).await);
    seen.push(ask("file packet gone", send("GET", &packet, "")).await);
    seen.push(ask("journal", send("GET", "/_mock/journal", "")).await);
    seen.push(ask("delete", send("DELETE", "/_mock/scenarios/paths.json", "")).await);

    let status = |label: &str| {
        let (_, bytes) = seen.iter().find(|(l, _)| l == label).unwrap();
        String::from_utf8_lossy(bytes).get(9..12).unwrap_or_default().to_owned()
    };
    assert_eq!(status("health"), "200");
    assert_eq!(status("scenarios"), "200");
    assert_eq!(status("file packet"), "200");
    for (label, _) in invalid {
        assert_eq!(status(label), "422", "{label}");
    }
    assert_eq!(status("reload without the file"), "422");
    let duplicate = &seen.iter().find(|(l, _)| l == "duplicate of the file's run").unwrap().1;
    assert!(
        String::from_utf8_lossy(duplicate).contains("paths.json"),
        "the file is named, without its folder: {}",
        String::from_utf8_lossy(duplicate)
    );
    for (label, bytes) in &seen {
        let text = String::from_utf8_lossy(bytes);
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{label}: the response names {secret}: {text}");
        }
        assert!(!text.contains("panicked"), "{label}: {text}");
    }
    assert_serves(addr).await;
    let stderr = mock.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
