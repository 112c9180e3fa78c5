//! A userspace TCP/IP stack over a Linux TUN device.

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

#[doc(hidden)]
pub use runtime::__bench;
