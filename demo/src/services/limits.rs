//! The demo's budgets (issue 12): a deadline for every wait a peer can make
//! a connection do, a cap on what one request can make the server spend,
//! and a counter for each limit, shown under `"demo"` in `GET /stats`.
//!
//! | limit | default | flag | when hit |
//! |-------|---------|------|----------|
//! | connections served at once | [`MAX_CONNECTIONS`] | `--max-connections` | the longest-idle connection is closed (`evicted`); if none can be, the newcomer (`refused`) |
//! | handshakes done but not yet accepted, per listener | [`BACKLOG`] | `--backlog` | the SYN waits for the client's retransmission (the stack: a SYN cookie while handshakes alone fill it) |
//! | a whole HTTP request head | [`HEAD_TIMEOUT`] | `--head-timeout` | 408, closed (`head_timeouts`) |
//! | a whole JSON-RPC line on port 7070, from its first byte | [`HEAD_TIMEOUT`] | `--head-timeout` | closed (`head_timeouts`) |
//! | an HTTP request body's average rate, after a grace | [`BODY_MIN_RATE`] B/s, [`BODY_GRACE`] | `--body-min-rate` (the grace is `--head-timeout`) | closed (`body_timeouts`) |
//! | an idle keep-alive HTTP connection | [`HTTP_IDLE_TIMEOUT`] | `--idle-timeout` | closed (`idle_timeouts`) |
//! | an idle echo, discard or RPC connection | [`STREAM_IDLE_TIMEOUT`] | `--stream-idle-timeout` | closed (`idle_timeouts`) |
//! | a write making no progress (the peer's window stays shut) | [`WRITE_TIMEOUT`] | `--write-timeout` | reset (`write_timeouts`) |
//! | UDP echo to a looping service's port (7, 13, 17, 19, 37) or port 0 | - | - | not echoed (`udp_echo_refused`) |
//! | `GET /bytes/N` | [`MAX_BYTES`] | `--max-bytes` | 413 with the limit (`bytes_too_large`) |
//!
//! The head deadline runs from the connection's start for the first
//! request and from a request's first byte for later ones; it is not
//! restarted by each byte, so a peer trickling a head one byte at a time
//! is closed after [`HEAD_TIMEOUT`] all the same.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

/// The most connections served at the same time, over all services. An
/// idle connection is a socket and a small task (no thread, no buffer
/// until its first byte), so this is set by memory: a few KiB each when
/// idle (BENCHMARKS.md, "idle connections"); a busy one adds its buffers
/// (HTTP: hyper's, up to its 400 KiB read buffer; echo: up to 64 KiB;
/// RPC: up to one 1 MiB line).
pub const MAX_CONNECTIONS: usize = 16_384;

/// Each listener's accept queue, in connections (the `backlog` of
/// `listen(2)`), for the stack and for `kernel-serve` alike: eight times
/// the 128 that std's and tokio's `bind` ask for, so that a burst of
/// thousands of clients does not wait out SYN retransmissions while the
/// accept loop catches up. Not Linux's cap (`net.core.somaxconn`, 4096):
/// on the stack a half-open connection is a socket of about 3 KiB until
/// SYN cookies take over at the backlog, so a spoofed SYN flood to all
/// eight listeners (four services, two families) holds at most about
/// 24 MiB here, and would hold 96 at 4096.
pub const BACKLOG: usize = 1024;

/// The longest a whole request head may take to arrive (nginx's
/// `client_header_timeout` is 60 s; a head is a few hundred bytes).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The slowest average rate accepted for a request body, in bytes per
/// second after [`BODY_GRACE`] (like Kestrel's minimum request body data
/// rate): a 1 GiB upload may take 12 days, a stalled one cannot.
pub const BODY_MIN_RATE: u64 = 1024;

/// The time a request body is given before [`BODY_MIN_RATE`] applies.
pub const BODY_GRACE: Duration = Duration::from_secs(10);

/// An HTTP connection with no request for this long is closed, so idle
/// keep-alive connections do not hold connection slots forever.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Echo, discard and RPC connections idle for this long are closed. Long,
/// because a person typing into `nc` is a legitimate slow client.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// A write that makes no progress for this long fails and the connection
/// is reset: a reader that keeps its window shut holds a task and a slot
/// at most this long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest `GET /bytes/N`: 16 GiB, minutes at the stack's speed.
pub const MAX_BYTES: u64 = 16 << 30;

/// Every limit above, as one value: the defaults, or the command line's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`BACKLOG`].
    pub backlog: usize,
    /// See [`HEAD_TIMEOUT`].
    pub head_timeout: Duration,
    /// See [`BODY_MIN_RATE`]; at least 1.
    pub body_min_rate: u64,
    /// See [`BODY_GRACE`].
    pub body_grace: Duration,
    /// See [`HTTP_IDLE_TIMEOUT`].
    pub http_idle_timeout: Duration,
    /// See [`STREAM_IDLE_TIMEOUT`].
    pub stream_idle_timeout: Duration,
    /// See [`WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// See [`MAX_BYTES`].
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            backlog: BACKLOG,
            head_timeout: HEAD_TIMEOUT,
            body_min_rate: BODY_MIN_RATE,
            body_grace: BODY_GRACE,
            http_idle_timeout: HTTP_IDLE_TIMEOUT,
            stream_idle_timeout: STREAM_IDLE_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            max_bytes: MAX_BYTES,
        }
    }
}

/// How often each limit was hit, since the start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// New connections closed because no slot could be freed.
    pub refused: AtomicU64,
    /// Request heads (HTTP) or JSON-RPC lines (port 7070) not complete
    /// within the head timeout.
    pub head_timeouts: AtomicU64,
    /// Request bodies slower than the minimum rate.
    pub body_timeouts: AtomicU64,
    /// Connections closed for being idle.
    pub idle_timeouts: AtomicU64,
    /// Writes that made no progress within the write timeout.
    pub write_timeouts: AtomicU64,
    /// `GET /bytes/N` refused for N over the cap.
    pub bytes_too_large: AtomicU64,
    /// UDP datagrams not echoed because they came from a service that
    /// would echo back (a loop), or from port 0.
    pub udp_echo_refused: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub fn hit(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Each counter with its name and what it counts.
    fn each(&self) -> [(&'static str, &AtomicU64, &'static str); 8] {
        [
            (
                "evicted",
                &self.evicted,
                "Connections closed to make room for a new one.",
            ),
            (
                "refused",
                &self.refused,
                "New connections closed because no slot could be freed.",
            ),
            (
                "head_timeouts",
                &self.head_timeouts,
                "Request heads or JSON-RPC lines not whole within the head timeout.",
            ),
            (
                "body_timeouts",
                &self.body_timeouts,
                "Request bodies slower than the minimum rate.",
            ),
            (
                "idle_timeouts",
                &self.idle_timeouts,
                "Connections closed for being idle.",
            ),
            (
                "write_timeouts",
                &self.write_timeouts,
                "Writes that made no progress within the write timeout.",
            ),
            (
                "bytes_too_large",
                &self.bytes_too_large,
                "GET /bytes/N refused for N over the cap.",
            ),
            (
                "udp_echo_refused",
                &self.udp_echo_refused,
                "UDP datagrams not echoed: from a looping service's port, or port 0.",
            ),
        ]
    }

    /// The counters as a JSON object, named as the fields are.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.each()
                .into_iter()
                .map(|(name, c, _)| (name.to_owned(), Value::from(c.load(Ordering::Relaxed))))
                .collect(),
        )
    }

    /// The counters in the Prometheus text format, each `demo_<name>_total`,
    /// then `demo_connections`, the gauge of connections served now.
    pub fn to_prometheus(&self, connections: usize) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (name, c, help) in self.each() {
            let metric = format!("demo_{name}_total");
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} counter");
            let _ = writeln!(out, "{metric} {}", c.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP demo_connections Connections served now, over all services."
        );
        let _ = writeln!(out, "# TYPE demo_connections gauge");
        let _ = writeln!(out, "demo_connections {connections}");
        out
    }
}
