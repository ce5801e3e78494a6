//! Benchmark: a 1 GiB generated packet fetched over loopback from the release
//! server. Prints throughput and the server's memory. Run with
//! `scripts/bench-packet` (it builds the release binary first).
//!
//! Goals (issue 4): at least 1 GB/s, RSS growth under 32 MiB.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Instant;

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let size: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1 << 30);
    let bin = std::env::var("TRIGGER_MOCK_BIN").unwrap_or_else(|_| "target/release/trigger-mock".into());
    let dir = std::env::temp_dir().join(format!("trigger-mock-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scenario = dir.join("bench.json");
    std::fs::write(
        &scenario,
        format!(r#"{{"version": 1, "runs": [{{"id": "run_bench", "status": "EXECUTING", "payloadPacket": {{"size": {size}}}}}]}}"#),
    )
    .expect("scenario");
    let mut child = Command::new(&bin)
        .args(["--addr", "127.0.0.1:0", "--clock", "2026-01-01T00:00:00Z", "--scenario"])
        .arg(&scenario)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e} (build it with cargo build --release)"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("URL").to_owned();
    let addr = url.trim_start_matches("http://").to_owned();
    let pid = child.id();

    let get = |path: &str| -> TcpStream {
        let mut s = TcpStream::connect(&addr).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer tr_dev_bench\r\nconnection: close\r\n\r\n"
        )
        .expect("request");
        s
    };
    let mut body = String::new();
    get("/api/v3/runs/run_bench").read_to_string(&mut body).expect("retrieve");
    let json = &body[body.find("\r\n\r\n").expect("head") + 4..];
    let start = json.find("/packets/").expect("a presigned URL");
    let path = &json[start..start + json[start..].find('"').expect("end of URL")];

    let idle = status_kib(pid, "VmRSS:");
    let mut stream = get(path);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut peak = idle;
    let started = Instant::now();
    let mut reads = 0u64;
    loop {
        let n = stream.read(&mut buf).expect("read");
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
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let gb_per_s = total as f64 / secs / 1e9;
    println!("packet bench: {} bytes (with headers) in {secs:.3} s", total);
    println!("  throughput       {gb_per_s:.2} GB/s   (goal >= 1 GB/s)");
    println!("  server RSS idle  {:.1} MiB", idle as f64 / 1024.0);
    println!(
        "  server RSS peak  {:.1} MiB   growth {:.1} MiB (goal < 32 MiB)",
        peak as f64 / 1024.0,
        (peak.saturating_sub(idle)) as f64 / 1024.0
    );
    println!("  server VmHWM     {:.1} MiB", hwm as f64 / 1024.0);
}
