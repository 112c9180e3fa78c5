//! The demo host: the services a userspace-stack host offers on its
//! well-known ports (echo 7, discard 9, HTTP 80, JSON-RPC 7070, UDP echo 7),
//! the client side (`demo get`, `demo call`), the command line, and the
//! same services on the kernel's sockets as the benchmark baseline.
//!
//! Every service is generic over the async byte stream, so the binary
//! wires them to the stack's `stack::tokio` sockets and [`kernel`] to
//! tokio's own.

pub mod cli;
pub mod client;
pub mod host;
pub mod kernel;
pub mod services;
pub mod stack_host;

pub use host::{ConnInfo, HostInfo};
pub use services::{Conn, Limits, Service, Services, MAX_CONNECTIONS};

/// Logs through `tracing` to stderr, filtered by `RUST_LOG` (default
/// `info`, e.g. `RUST_LOG=demo=debug`). Calling it twice is harmless.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
