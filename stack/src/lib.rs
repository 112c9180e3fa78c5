//! A userspace TCP/IP stack over a Linux TUN device.
//!
//! ```text
//!   device ──► runtime (rx: validate, table lookup) ──► tcp::Connection / tcp::listener
//!     ▲            │  timers, ops (open, listen, bind, send)          │ (sans-IO)
//!     └──── tx ◄───┴──────────────────────────────────────────────────┘
//!                  ▲
//!   api: TcpListener, TcpStream, UdpSocket (std::net-like) ── through runtime::ops
//! ```
//!
//! IPv4 and IPv6 fragments take a detour through [`reassembly`] (sans-IO,
//! bounded) before the RX path handles the whole datagram.
//!
//! Start a [`Stack`] on a [`device::Device`] with a [`Config`] (checked by
//! [`Config::validate`]); open sockets with the `api` types. Dropping the
//! last handle (the stack and every socket made from it) shuts it down.
//!
//! [`metrics`] renders the counters, the socket table, the memory budget
//! and an RTT histogram in the Prometheus text format.
//!
//! With the `tokio` feature, [`tokio`](mod@tokio) offers the same sockets
//! to async code: `AsyncRead`/`AsyncWrite` streams, `accept().await`,
//! `recv_from().await`, over the same runtime.

// The system calls in `device::tun` (and the test-only `device::netns`)
// are the only `unsafe`; `device/mod.rs` allows it there and nowhere else.
#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod device;
pub mod icmp;
pub mod metrics;
pub mod pmtu;
pub mod reassembly;
pub mod runtime;
pub mod stats;
pub mod table;
pub mod tcp;
pub mod time;
pub mod wire;

#[cfg(feature = "tokio")]
pub use api::tokio;
pub use api::{SocketInfo, TcpListener, TcpStream, UdpSocket};
pub use config::{Config, ConfigError};
pub use runtime::Stack;

#[doc(hidden)]
pub use runtime::__bench;
