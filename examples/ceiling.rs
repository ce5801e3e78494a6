//! The ceiling: the smallest hyper server that answers every request with the
//! same static bytes. `examples/bench.rs` measures it beside trigger-mock on
//! the same machine, so trigger-mock's figures read as a fraction of what
//! hyper itself can do here.
//!
//! Usage: ceiling BODY_FILE  (prints `listening on http://127.0.0.1:PORT`)
#![allow(clippy::expect_used, clippy::unwrap_used)]

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::io::Write;

#[tokio::main]
async fn main() {
    let path = std::env::args().nth(1).expect("usage: ceiling BODY_FILE");
    let body = Bytes::from(std::fs::read(&path).expect("body file"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("listening on http://{}", listener.local_addr().expect("addr"));
    std::io::stdout().flush().expect("flush");
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
            let mut response = Response::new(Full::new(body.clone()));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
            async move { Ok::<_, Infallible>(response) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
