//! The server itself: HTTP/2 cleartext, graceful shutdown, ephemeral ports.

use crate::support::{DEV_KEY, config, request, start};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn serves_http2_with_prior_knowledge() {
    let server = start(&config()).await;
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("{}/api/v3/runs/run_completed", server.url()))
        .header("authorization", format!("Bearer {DEV_KEY}"))
        .header("x-trigger-api-version", "2025-07-16")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["status"], "COMPLETED");
    server.shutdown().await;
}

#[tokio::test]
async fn binds_an_ephemeral_loopback_port() {
    let a = start(&config()).await;
    let b = start(&config()).await;
    assert_ne!(a.addr().port(), 0);
    assert_ne!(a.addr(), b.addr());
    assert!(a.addr().ip().is_loopback());
    assert_eq!(a.url(), format!("http://{}", a.addr()));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_then_stops_accepting() {
    let server = start(&config()).await;
    let addr = server.addr();
    // A request whose headers are half sent when shutdown begins.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/v3/runs/run_completed HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!stopping.is_finished(), "shutdown waits for the open request");
    slow.write_all(b"authorization: Bearer tr_dev_x\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut response)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "the drained connection is closed: {text}");
    tokio::time::timeout(Duration::from_secs(5), stopping).await.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_shutdown() {
    let server = start(&config()).await;
    let reply = request(&server, "GET", "/api/v3/runs/run_completed", &[("authorization", "Bearer tr_dev_x")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    idle.write_all(b"GET /api/v3/runs/run_queued HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "an idle connection is closed at once");
}
