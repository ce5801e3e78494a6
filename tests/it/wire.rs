//! The wire under hostile or careless clients: HEAD in both protocols,
//! clients that half-close, idle and stalled connections of both protocols,
//! the connection cap, memory held by clients that never read (measured in
//! bytes), request bodies that never finish or are malformed, the listen
//! backlog, and a packet file replaced by a FIFO.
//!
//! Every test ends by checking that the server still serves a normal request.

use crate::hostile::{
    Mock, NORMAL, PATIENCE, TempDir, assert_serves, exchange, h2_connect, header, payload_path, read_response,
    read_until_closed,
};
use crate::support::{config, request, start};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trigger_mock::config::{Config, Limits};
use trigger_mock::scenario::Source;

/// A scenario with an offloaded inline payload and a large generated one.
const PACKETS: &str = r#"{"version":1,"runs":[
    {"id":"run_small","status":"EXECUTING","payloadPacket":{"data":{"hello":"world"},"offload":"always"}},
    {"id":"run_big","status":"EXECUTING","payloadPacket":{"size":"256MiB"}}
]}"#;

fn with_scenario(config: Config, name: &str, text: &str) -> Config {
    Config { inline_scenarios: vec![Source { name: name.into(), text: text.into(), path: None }], ..config }
}

fn with_limits(limits: Limits) -> Config {
    with_scenario(Config { limits, ..config() }, "packets.json", PACKETS)
}

/// A connection whose receive buffer is as small as the system allows, so
/// that what a client does not read stays with the server, not the kernel.
async fn connect_small(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Waits until a process stops using the CPU (two quiet 200 ms samples in
/// a row), at most `patience`.
async fn settle(pid: u32, patience: Duration) {
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let deadline = Instant::now() + patience;
    let (mut last, mut quiet) = (ticks(), 0);
    while quiet < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = ticks();
        quiet = if now <= last + 1 { quiet + 1 } else { 0 };
        last = now;
    }
}

/// Memory figures of a process, in KiB: (VmRSS, VmHWM).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} for {pid}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---------------------------------------------------------------------------
// 1. HEAD.

#[tokio::test]
async fn head_answers_carry_headers_only_on_every_route_in_both_protocols() {
    let server = start(&with_limits(Limits::default())).await;
    let addr = server.addr();
    let packet = payload_path(addr, "run_small").await;
    let auth = [("authorization", "Bearer tr_dev_x")];
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let routes: Vec<(String, Headers, u16)> = vec![
        ("/api/v3/runs/run_completed".into(), &auth, 200),
        ("/api/v3/runs/run_NOPE".into(), &auth, 404),
        ("/api/v3/runs/nope".into(), &auth, 400),
        ("/api/v3/runs/run_completed".into(), &[], 401),
        ("/api/v3/elsewhere".into(), &auth, 404),
        ("/elsewhere".into(), &[], 404),
        ("/_mock/health".into(), &[], 200),
        ("/_mock/scenarios".into(), &[], 200),
        ("/_mock/clock".into(), &[], 200),
        ("/_mock/nothing".into(), &[], 404),
        (packet.clone(), &[], 200),
        (format!("{}x", &packet), &[], 403),
    ];
    for (path, headers, status) in &routes {
        let get = request(&server, "GET", path, headers).await;
        assert_eq!(get.status.as_u16(), *status, "GET {path}");
        let length = get.body.len().to_string();
        assert!(!get.body.is_empty(), "GET {path} has a body");

        // HTTP/1.1: the HEAD answer, then the next response on the same connection.
        let mut raw = format!("HEAD {path} HTTP/1.1\r\nhost: {addr}\r\n");
        for (k, v) in *headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(raw.as_bytes()).await.unwrap();
        stream.write_all(NORMAL).await.unwrap();
        let (bytes, _) = read_until_closed(&mut stream, PATIENCE).await;
        let text = String::from_utf8_lossy(&bytes);
        let end = text.find("\r\n\r\n").unwrap_or_else(|| panic!("HEAD {path}: {text}"));
        let head = &text[..end];
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "HEAD {path}: {head}");
        assert_eq!(header(head, "content-length"), Some(length.as_str()), "HEAD {path}: {head}");
        assert!(text[end + 4..].starts_with("HTTP/1.1 200"), "HEAD {path}: no body, then the next answer: {text}");

        // HTTP/2: a body on a HEAD answer is a protocol error for the client.
        let mut sender = h2_connect(addr).await;
        let mut req = Request::builder().method(Method::HEAD).uri(format!("http://{addr}{path}"));
        for (k, v) in *headers {
            req = req.header(*k, *v);
        }
        let res = tokio::time::timeout(PATIENCE, sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()))
            .await
            .expect("answered")
            .unwrap_or_else(|e| panic!("HTTP/2 HEAD {path}: {e}"));
        assert_eq!(res.status().as_u16(), *status, "HTTP/2 HEAD {path}");
        let h2_length = res.headers().get("content-length").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(h2_length.as_deref(), Some(length.as_str()), "HTTP/2 HEAD {path}");
        let body = res.into_body().collect().await.unwrap_or_else(|e| panic!("HTTP/2 HEAD {path}: {e:?}"));
        assert!(body.to_bytes().is_empty(), "HTTP/2 HEAD {path}");
    }
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 2. Half-closing clients.

#[tokio::test]
async fn clients_that_half_close_after_their_request_get_every_answer() {
    // Answers that take a while make the race certain: the end of the
    // client's stream is read long before the answer is ready.
    let slow = r#"{"version":1,"faults":[{"runId":"run_slow_*","delayMs":60}]}"#;
    let server = start(&with_scenario(config(), "slow.json", slow)).await;
    let addr = server.addr();
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..90 {
        let id = if i % 2 == 0 { "run_completed".to_owned() } else { format!("run_slow_{i}") };
        let (version, close) = match i % 3 {
            0 => ("HTTP/1.1", ""),
            1 => ("HTTP/1.1", "connection: close\r\n"),
            _ => ("HTTP/1.0", ""),
        };
        let request =
            format!("GET /api/v3/runs/{id} {version}\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n{close}\r\n");
        clients.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
            let (bytes, _) = read_until_closed(&mut stream, PATIENCE).await;
            (request, String::from_utf8_lossy(&bytes).into_owned())
        });
    }
    let mut unanswered = Vec::new();
    while let Some(joined) = clients.join_next().await {
        let (request, answer) = joined.unwrap();
        if !(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")) {
            unanswered.push((request, answer));
        }
    }
    assert!(unanswered.is_empty(), "{} of 90 half-closed requests unanswered: {unanswered:?}", unanswered.len());
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 3. Idle connections and the connection cap.

fn quick(idle_ms: u64) -> Limits {
    Limits { idle_timeout: Duration::from_millis(idle_ms), ..Limits::default() }
}

#[tokio::test]
async fn idle_connections_of_both_protocols_close_after_the_idle_timeout() {
    let slow = r#"{"version":1,"faults":[{"runId":"run_slow_*","delayMs":900}]}"#;
    let server = start(&with_scenario(Config { limits: quick(300), ..config() }, "slow.json", slow)).await;
    let addr = server.addr();

    // HTTP/2: one request, then nothing; the server says GOAWAY and closes.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = Request::get(format!("http://{addr}/api/v3/runs/run_completed"))
        .header("authorization", "Bearer tr_dev_x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    let idle_from = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), conn)
        .await
        .expect("the idle HTTP/2 connection is closed")
        .unwrap()
        .ok();
    let after = idle_from.elapsed();
    assert!(after >= Duration::from_millis(250), "closed after {after:?}, before the 300 ms idle timeout");

    // HTTP/1.1 keep-alive (its header timeout is 30 s): the same.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /api/v3/runs/run_queued HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\r\n")
        .await
        .unwrap();
    let reply = read_response(&mut stream, &mut Vec::new()).await.expect("an answer");
    assert_eq!(reply.status, 200);
    let idle_from = Instant::now();
    let (rest, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(rest.is_empty());
    assert!(idle_from.elapsed() >= Duration::from_millis(250), "{:?}", idle_from.elapsed());

    // A request the server takes longer than the idle timeout to answer is
    // not idleness, in either protocol.
    let reply =
        exchange(addr, b"GET /api/v3/runs/run_slow_1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\r\n")
            .await
            .expect("the slow answer");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut sender = h2_connect(addr).await;
    let req = Request::get(format!("http://{addr}/api/v3/runs/run_slow_2"))
        .header("authorization", "Bearer tr_dev_x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.expect("the slow HTTP/2 answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert_serves(addr).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_takes_nothing_of_its_response_is_dropped_after_the_idle_timeout() {
    let server = start(&with_limits(quick(300))).await;
    let addr = server.addr();
    let big = payload_path(addr, "run_big").await;
    let mut stalled = connect_small(addr).await;
    stalled.write_all(format!("GET {big} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    // Idle timeout, 1 s to say goodbye, and room for a loaded machine.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Had it been kept, reading now would go on through the 256 MiB.
    let (bytes, _) = read_until_closed(&mut stalled, PATIENCE).await;
    assert!(bytes.len() < 32 << 20, "{} bytes: the stalled connection was kept", bytes.len());
    assert_serves(addr).await;
    server.shutdown().await;
}

#[tokio::test]
async fn beyond_the_connection_cap_newcomers_wait_until_a_connection_closes() {
    let server = start(&Config { limits: Limits { max_connections: 2, ..Limits::default() }, ..config() }).await;
    let addr = server.addr();
    let ask = b"GET /api/v3/runs/run_queued HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(ask).await.unwrap();
        assert_eq!(read_response(&mut stream, &mut Vec::new()).await.expect("an answer").status, 200);
        held.push(stream);
    }
    // The third connects (the backlog holds it) but is not served yet.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(NORMAL).await.unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the cap of 2: {early:?}");
    drop(held.pop());
    let reply = read_response(&mut third, &mut Vec::new()).await.expect("served once a connection closed");
    assert_eq!(reply.status, 200);
    drop(held);
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 4. Memory held by clients that never read.

/// An HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with a 7-bit prefix.
fn hpack_len(mut n: usize, out: &mut Vec<u8>) {
    if n < 127 {
        out.push(n as u8);
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
}

/// A header block of literals without indexing (no Huffman, no table).
fn hpack(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(0);
        hpack_len(name.len(), &mut out);
        out.extend_from_slice(name.as_bytes());
        hpack_len(value.len(), &mut out);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// An HTTP/2 connection that opens the largest flow-control windows, asks
/// for `path` on `streams` streams, and never reads a byte.
async fn h2_never_reads(addr: SocketAddr, path: &str, streams: u32) -> TcpStream {
    h2_streams(addr, path, streams, 0x7fff_ffff).await
}

/// An HTTP/2 connection whose streams get `window` bytes each, asking for
/// `path` on `streams` streams at once.
async fn h2_streams(addr: SocketAddr, path: &str, streams: u32, window: u32) -> TcpStream {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let mut settings = vec![0, 4];
    settings.extend_from_slice(&window.to_be_bytes());
    out.extend(h2_frame(4, 0, 0, &settings));
    out.extend(h2_frame(4, 1, 0, &[]));
    out.extend(h2_frame(8, 0, 0, &(0x7fff_ffffu32 - 65_535).to_be_bytes()));
    for i in 0..streams {
        let block = hpack(&[(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", path)]);
        out.extend(h2_frame(1, 0x5, 1 + 2 * i, &block));
    }
    let mut stream = connect_small(addr).await;
    stream.write_all(&out).await.unwrap();
    stream
}

#[tokio::test]
async fn clients_that_never_read_hold_bounded_memory_released_when_they_go() {
    let dir = TempDir::new("never-read");
    let scenario = dir.path().join("packets.json");
    std::fs::write(&scenario, PACKETS).unwrap();
    let mock = Mock::with_scenario(&scenario);
    let (addr, pid) = (mock.addr, mock.pid());
    let big = payload_path(addr, "run_big").await;
    assert_serves(addr).await;
    // Warm up: one full 8 MiB download.
    let warm = exchange(
        addr,
        format!("GET {big} HTTP/1.1\r\nhost: x\r\nrange: bytes=0-8388607\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(warm.expect("a range").body.len(), 8 << 20);
    let (rss_before, hwm_before) = memory_kib(pid);

    let mut h1 = Vec::new();
    for _ in 0..100 {
        let mut stream = connect_small(addr).await;
        stream.write_all(format!("GET {big} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).await.unwrap();
        h1.push(stream);
    }
    let mut h2 = Vec::new();
    for _ in 0..3 {
        h2.push(h2_never_reads(addr, &big, 100).await);
    }
    // Until the server has filled every buffer it is allowed to fill.
    settle(pid, Duration::from_secs(30)).await;
    let (rss_flood, hwm_flood) = memory_kib(pid);
    // The API keeps answering while the budget is spent.
    assert!(assert_serves(addr).await < Duration::from_secs(1));
    drop(h1);
    drop(h2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The budget came back: a download goes through at once.
    let started = Instant::now();
    let after = exchange(
        addr,
        format!("GET {big} HTTP/1.1\r\nhost: x\r\nrange: bytes=0-8388607\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(after.expect("a range").body.len(), 8 << 20);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let (rss_after, hwm_after) = memory_kib(pid);
    eprintln!(
        "never-read flood (100 HTTP/1.1 + 3x100 HTTP/2 streams of a 256 MiB packet): VmRSS {rss_before} -> {rss_flood} -> {rss_after} KiB, VmHWM {hwm_before} -> {hwm_flood} -> {hwm_after} KiB"
    );
    let growth = hwm_flood.saturating_sub(rss_before);
    assert!(growth < 64 * 1024, "peak RSS grew {growth} KiB under the flood ({rss_before} KiB before)");
    let stderr = mock.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn an_http2_client_gets_64_streams_at_once_and_the_rest_are_refused() {
    let server = start(&with_limits(Limits::default())).await;
    let addr = server.addr();
    let big = payload_path(addr, "run_big").await;
    // Windows of 0: no stream can finish, so all 100 are open at once.
    let mut stream = h2_streams(addr, &big, 100, 0).await;
    let (mut answered, mut refused) = (0, 0);
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while answered + refused < 100 {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{answered} answered and {refused} refused after {PATIENCE:?}"))
            .unwrap();
        assert!(n > 0, "closed after {answered} answered and {refused} refused");
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 9 {
            let len = (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            match buf[3] {
                1 => answered += 1,
                3 => {
                    assert_eq!(&buf[9..13], &7u32.to_be_bytes(), "RST_STREAM with REFUSED_STREAM");
                    refused += 1;
                }
                _ => {}
            }
            buf.drain(..9 + len);
        }
    }
    assert_eq!((answered, refused), (64, 36));
    drop(stream);
    assert_serves(addr).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_spent_response_budget_holds_downloads_back_and_comes_back_when_clients_go() {
    let limits = Limits { response_budget: 64 * 1024, ..Limits::default() };
    let server = start(&with_limits(limits)).await;
    let addr = server.addr();
    let big = payload_path(addr, "run_big").await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_small(addr).await;
        stream.write_all(format!("GET {big} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut waiting = TcpStream::connect(addr).await.unwrap();
    waiting
        .write_all(
            format!("GET {big} HTTP/1.1\r\nhost: x\r\nrange: bytes=0-1048575\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = waiting.read_to_end(&mut out).await;
        out
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reader.is_finished(), "the download waits while the budget is spent");
    // Whole answers do not wait on the budget.
    assert!(assert_serves(addr).await < Duration::from_secs(1));
    drop(stalled);
    let out =
        tokio::time::timeout(PATIENCE, reader).await.expect("the download finishes once the clients went").unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(out.len() - end, 1 << 20, "{}", String::from_utf8_lossy(&out[..end]));
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 5. Request bodies.

#[tokio::test]
async fn request_bodies_that_stall_or_dribble_get_408_and_the_connection_closes() {
    let server =
        start(&Config { limits: Limits { body_timeout: Duration::from_millis(300), ..Limits::default() }, ..config() })
            .await;
    let addr = server.addr();
    // Stalls after 10 of 100 bytes.
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"PUT /_mock/scenarios/x HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"version\"")
        .await
        .unwrap();
    let (bytes, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "{took:?}");

    // Dribbles a byte every 100 ms: never finishes within the timeout.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(b"POST /_mock/clock HTTP/1.1\r\nhost: x\r\ncontent-length: 60\r\n\r\n").await.unwrap();
    let dribbler = tokio::spawn(async move {
        for _ in 0..60 {
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let reply = read_response(&mut rd, &mut Vec::new()).await.expect("an answer");
    assert_eq!(reply.status, 408, "{}", reply.text());
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, rd.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection closes after the 408");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    dribbler.abort();

    // HTTP/2: a request body that never ends gets its 408 on the stream.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = Request::put(format!("http://{addr}/_mock/scenarios/x")).body(NeverEnds).unwrap();
    let started = Instant::now();
    let res = tokio::time::timeout(PATIENCE, sender.send_request(req)).await.expect("answered").unwrap();
    assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_serves(addr).await;
    server.shutdown().await;
}

/// A request body that never sends a byte and never ends.
struct NeverEnds;

impl hyper::body::Body for NeverEnds {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_400_with_a_clear_error() {
    let server = start(&config()).await;
    let addr = server.addr();
    for (name, body) in [
        ("a chunk size that is not hex", "zz\r\n{}\r\n0\r\n\r\n"),
        ("a chunk longer than announced", "1\r\n{}\r\n0\r\n\r\n"),
    ] {
        let request = format!(
            "POST /_mock/clock HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n{body}"
        );
        let reply = exchange(addr, request.as_bytes()).await.expect("an answer");
        assert_eq!(reply.status, 400, "{name}: {}", reply.text());
        let error = reply.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains("malformed"), "{name}: {error}");
    }
    assert_serves(addr).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 6. The listen backlog.

#[tokio::test]
async fn the_listen_backlog_is_the_systems_maximum() {
    let server = start(&config()).await;
    let health = request(&server, "GET", "/_mock/health", &[]).await.json();
    let want = trigger_mock::server::system_backlog();
    if let Ok(text) = std::fs::read_to_string("/proc/sys/net/core/somaxconn") {
        assert_eq!(want, text.trim().parse::<u32>().unwrap());
    }
    assert_eq!(health["listenBacklog"], serde_json::json!(want), "{health}");
    // The kernel's view: for a listening socket, ss shows the backlog as Send-Q.
    let port = server.addr().port();
    if let Ok(out) = std::process::Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output()
        && out.status.success()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        let send_q: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
        assert_eq!(send_q, [want.to_string()], "{text}");
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// 7. A FIFO in place of a packet file; the binary's new flags.

#[tokio::test]
async fn a_fifo_in_place_of_a_packet_file_is_refused_and_does_not_hold_shutdown() {
    let dir = TempDir::new("fifo");
    let scenario = dir.path().join("fifo.json");
    let file = dir.path().join("payload.json");
    std::fs::write(&file, r#"{"from":"a file"}"#).unwrap();
    std::fs::write(
        &scenario,
        r#"{"version":1,"runs":[
            {"id":"run_on_disk","status":"EXECUTING","payloadPacket":{"file":"payload.json","offload":"always"}}
        ]}"#,
    )
    .unwrap();
    let mock = Mock::spawn(&["--addr", "127.0.0.1:0", "--scenario", scenario.to_str().unwrap()]);
    let addr = mock.addr;
    let packet = payload_path(addr, "run_on_disk").await;
    let get = format!("GET {packet} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    let served = exchange(addr, get.as_bytes()).await.expect("the file");
    assert_eq!((served.status, served.json()), (200, serde_json::json!({"from": "a file"})));

    std::fs::remove_file(&file).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&file).status().unwrap().success());
    let started = Instant::now();
    let refused = exchange(addr, get.as_bytes()).await.expect("an answer, not a wait for a writer");
    assert_eq!(refused.status, 500, "{}", refused.text());
    assert!(String::from_utf8_lossy(&refused.body).contains("not a regular file"), "{}", refused.text());
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // A download left waiting on it must not hold the exit either.
    let mut pending = TcpStream::connect(addr).await.unwrap();
    pending.write_all(get.as_bytes()).await.unwrap();
    assert_serves(addr).await;
    let stderr = mock.stop(); // exits within 5 s
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn the_binarys_idle_body_and_connection_flags_take_effect() {
    let mock = Mock::spawn(&[
        "--addr",
        "127.0.0.1:0",
        "--idle-timeout",
        "0.3",
        "--body-timeout",
        "0.3",
        "--max-connections",
        "2",
    ]);
    let addr = mock.addr;
    // --idle-timeout: a kept-alive connection closes after 0.3 s (header timeout: 30 s).
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /api/v3/runs/run_queued HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut idle, &mut Vec::new()).await.expect("an answer").status, 200);
    let from = Instant::now();
    read_until_closed(&mut idle, Duration::from_secs(3)).await;
    assert!(from.elapsed() < Duration::from_secs(2), "{:?}", from.elapsed());
    // --body-timeout: 408.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"POST /_mock/clock HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{").await.unwrap();
    let reply = read_response(&mut stream, &mut Vec::new()).await.expect("an answer");
    assert_eq!(reply.status, 408, "{}", reply.text());
    drop(stream);
    // --max-connections: two silent connections hold both places for a while.
    let a = TcpStream::connect(addr).await.unwrap();
    let b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(NORMAL).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await.is_err(),
        "served beyond the cap"
    );
    drop((a, b));
    assert_eq!(read_response(&mut third, &mut Vec::new()).await.expect("served once they went").status, 200);
    assert_serves(addr).await;
    assert!(!mock.stop().contains("panicked"));
}
