//! Integration tests: a real server on 127.0.0.1:0, driven over sockets.
//!
//! One test binary (fewer links on a 2-core CI); modules by area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_openapi;
mod binary;
mod children;
mod dashboard;
mod echo;
mod errors;
mod faults;
mod fidelity;
mod hostile;
mod memory;
mod packets;
mod props;
mod realtime;
mod retrieve;
mod runs;
mod scenario_schema;
mod scenarios;
mod server;
mod support;
mod tokens;
mod wire;
