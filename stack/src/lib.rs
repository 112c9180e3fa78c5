//! A userspace TCP/IP stack over a Linux TUN device.

// The system calls in `device::tun` (and the test-only `device::netns`)
// are the only `unsafe`; `device/mod.rs` allows it there and nowhere else.
#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod device;
pub mod icmp;
pub mod runtime;
pub mod stats;
pub mod table;
pub mod tcp;
pub mod time;
pub mod wire;

pub use api::{SocketInfo, TcpListener, TcpStream, UdpSocket};
pub use config::Config;
pub use runtime::Stack;
