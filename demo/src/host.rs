//! What a service may know about the host it runs on: the two ends of its
//! own connection ([`ConnInfo`]) and a view of the whole host
//! ([`HostInfo`]: the socket table and the counters).
//!
//! The services never see the stack itself, so the same service code runs
//! over the userspace stack and over the kernel's sockets.

use std::net::SocketAddr;

/// The two ends of one TCP connection, as the accepting side sees them.
/// With the protocol this is the 4-tuple that names the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnInfo {
    /// Our end: the server's address and well-known port.
    pub local: SocketAddr,
    /// The peer's end: its address and (usually ephemeral) port.
    pub remote: SocketAddr,
}

/// A read-only view of the host, served by `GET /sockets`, `GET /stats` and
/// the `sockets` / `stats` RPC methods.
///
/// Implemented for the userspace stack by the binary, and by
/// [`crate::kernel::KernelHost`] for the kernel baseline. Each call takes a
/// fresh snapshot; implementations must not block for long, since they are
/// called from connection tasks, on the async runtime's workers.
pub trait HostInfo: Send + Sync {
    /// The socket table as JSON: typically an array of objects with
    /// protocol, local, remote, state and queue depths.
    fn sockets(&self) -> serde_json::Value;

    /// The host's counters as a JSON object.
    fn stats(&self) -> serde_json::Value;

    /// The host's metrics in the Prometheus text exposition format
    /// (version 0.0.4), for `GET /metrics`; the demo adds its own after
    /// them. None by default.
    fn metrics(&self) -> String {
        String::new()
    }

    /// The packet log from sequence number `since` on: an object
    /// `{"next": N, "packets": [...]}`, where `next` is the `since` to ask
    /// with next time and each packet is
    /// `{"seq": 17, "time": "09:04:02.123456", "dir": "in" | "out",
    ///   "proto": "tcp" | "udp" | "icmp" | "icmpv6" | "ip", "src": "10.0.0.1:53412",
    ///   "dst": "10.0.0.2:80", "flags": "S" | "S." | "." | "P." | "F." | "R" | ...,
    ///   "seq_no": 123 | null, "ack": 456 | null, "win": 64240 | null,
    ///   "len": 0, "line": "<the whole packet as tcpdump prints it>"}`
    /// (`src`/`dst` without a port for ICMP). Oldest first, at most the
    /// log's capacity (a few hundred). None by default.
    fn packets(&self, since: u64) -> serde_json::Value {
        serde_json::json!({ "next": since, "packets": [] })
    }
}
