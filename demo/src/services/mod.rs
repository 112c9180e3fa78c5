//! The demo's services, written once over any async byte stream so the
//! same code runs on the userspace stack and on the kernel's sockets (the
//! benchmark baseline): echo (RFC 862), discard (RFC 863), HTTP/1.1 (on
//! hyper) and JSON-RPC, each connection a tokio task.
//!
//! [`Services`] holds what the services share (the host view, the RPC
//! router, the connection registry) and dispatches one accepted connection
//! to its service; [`Services::accept_loop`] is the whole per-port server
//! loop, so a binary only binds listeners and calls it.
//!
//! DoS bounds: every limit is in [`limits`] with its default, flag and
//! counter. At most `max_connections` ([`MAX_CONNECTIONS`]) connections are
//! served at once over all ports; a connection accepted beyond that closes
//! the one idle longest ([`registry`]: its task is aborted, which drops
//! its stream) and takes its place. An idle connection costs its socket
//! and a small task (the services allocate their buffers at the first
//! byte), so the cap is set by memory, not by threads; each wait has a
//! deadline ([`deadline`]).

pub mod bytes;
pub mod conn;
pub mod deadline;
pub mod discard;
pub mod echo;
pub mod http;
pub mod limits;
pub mod live;
pub mod registry;
pub mod routes;
pub mod rpc_service;
pub mod udp_echo;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::host::{ConnInfo, HostInfo};
pub use conn::Conn;
use deadline::{Clock, HttpClock, Timed, Timeouts};
pub use limits::{Counters, Limits, HTTP_IDLE_TIMEOUT, MAX_CONNECTIONS, STREAM_IDLE_TIMEOUT};
use registry::{Registry, Slot};

/// A TCP port's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// RFC 862 echo, TCP port 7.
    Echo,
    /// RFC 863 discard, TCP port 9.
    Discard,
    /// HTTP/1.1, TCP port 80.
    Http,
    /// Newline-delimited JSON-RPC 2.0, TCP port 7070.
    Rpc,
}

impl Service {
    /// The well-known port the demo serves this on.
    pub fn port(self) -> u16 {
        match self {
            Service::Echo => 7,
            Service::Discard => 9,
            Service::Http => 80,
            Service::Rpc => 7070,
        }
    }

    /// All TCP services.
    pub const ALL: [Service; 4] = [Service::Echo, Service::Discard, Service::Http, Service::Rpc];
}

/// The host view the services answer from: the host's own, with the
/// demo's limit counters added to `stats` under `"demo"` (the host's
/// counters stay where they were, at the top level) and to `metrics` as
/// `demo_*`.
struct DemoHost {
    host: Arc<dyn HostInfo>,
    counters: Arc<Counters>,
    registry: Arc<Registry>,
}

impl HostInfo for DemoHost {
    fn sockets(&self) -> Value {
        self.host.sockets()
    }

    fn stats(&self) -> Value {
        match self.host.stats() {
            Value::Object(mut map) => {
                map.insert("demo".to_owned(), self.counters.to_json());
                Value::Object(map)
            }
            other => other,
        }
    }

    fn packets(&self, since: u64) -> Value {
        self.host.packets(since)
    }

    fn metrics(&self) -> String {
        let mut text = self.host.metrics();
        text.push_str(&self.counters.to_prometheus(self.registry.len()));
        text
    }
}

/// Everything the services share, built once per host and shared by all
/// connection tasks through an `Arc`.
pub struct Services {
    routes: Arc<routes::Routes>,
    router: Arc<rpc::Router>,
    registry: Arc<Registry>,
    limits: Limits,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("limits", &self.limits)
            .field("connections", &self.registry.len())
            .finish_non_exhaustive()
    }
}

impl Services {
    /// The demo's services over `host`, with the default [`Limits`].
    pub fn new(host: Arc<dyn HostInfo>) -> Arc<Services> {
        Services::with_limits(host, Limits::default())
    }

    /// The demo's services over `host` with these limits.
    pub fn with_limits(host: Arc<dyn HostInfo>, limits: Limits) -> Arc<Services> {
        let counters = Arc::new(Counters::default());
        let registry = Arc::new(Registry::default());
        let host: Arc<dyn HostInfo> = Arc::new(DemoHost {
            host,
            counters: Arc::clone(&counters),
            registry: Arc::clone(&registry),
        });
        let router = Arc::new(rpc_service::router(Arc::clone(&host)));
        Arc::new(Services {
            routes: Arc::new(routes::Routes::new(
                host,
                Arc::clone(&router),
                limits,
                Arc::clone(&counters),
            )),
            router,
            registry,
            limits,
            counters,
        })
    }

    /// The limits every connection is served with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How often each limit was hit.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The JSON-RPC router behind port 7070 and `POST /rpc`.
    pub fn router(&self) -> &Arc<rpc::Router> {
        &self.router
    }

    /// How many connections are being served right now.
    pub fn active_connections(&self) -> usize {
        self.registry.len()
    }

    /// Serves one admitted connection until it ends, then closes our side
    /// with a FIN (RFC 862/863 and HTTP: after the last byte), unless a
    /// write timed out, which has already reset it.
    async fn serve_admitted<C: Conn>(
        &self,
        service: Service,
        stream: C,
        info: ConnInfo,
        slot: Slot,
    ) -> io::Result<()> {
        let limits = &self.limits;
        let timeouts = Timeouts {
            idle: match service {
                Service::Http => limits.http_idle_timeout,
                Service::Echo | Service::Discard | Service::Rpc => limits.stream_idle_timeout,
            },
            write: limits.write_timeout,
            head: limits.head_timeout,
        };
        let counters = Arc::clone(&self.counters);
        let timed = move |clock| Timed::new(stream, slot, timeouts, clock, counters);
        let (mut stream, done) = match service {
            Service::Echo => {
                let mut stream = timed(Clock::Stream);
                let done = echo::serve(&mut stream).await;
                (stream, done.map(|n| tracing::debug!(n, "echoed")))
            }
            Service::Discard => {
                let mut stream = timed(Clock::Stream);
                let done = discard::serve(&mut stream).await;
                (stream, done.map(|n| tracing::debug!(n, "discarded")))
            }
            Service::Rpc => {
                let mut stream = timed(Clock::Lines { started: None });
                let done = rpc::tokio::serve_lines(&self.router, &mut stream).await;
                (stream, done)
            }
            Service::Http => {
                let clock = HttpClock::new();
                let stream = timed(Clock::Http(Arc::clone(&clock)));
                // hyper owns the stream and closes it itself.
                return http::serve(stream, clock, info, Arc::clone(&self.routes)).await;
            }
        };
        // A peer that already left makes this fail, which changes nothing.
        let _ = stream.shutdown().await;
        done
    }

    /// Serves one connection on the calling task until it ends (tests
    /// and embedders; [`Services::spawn_connection`] is the usual way).
    /// The connection is registered for the cap like any other, but
    /// cannot be evicted.
    ///
    /// # Errors
    /// The stream's I/O errors, including the deadlines of [`Limits`];
    /// `ConnectionRefused` if the cap is reached and nothing can be evicted.
    pub async fn serve_connection<C: Conn>(
        &self,
        service: Service,
        stream: C,
        info: ConnInfo,
    ) -> io::Result<()> {
        let Some(slot) = self.admit(&info) else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection cap reached",
            ));
        };
        self.serve_admitted(service, stream, info, slot).await
    }

    /// Registers a connection for the cap, evicting the longest-idle one
    /// if the cap is reached; `None` (counted, logged) if nothing could be
    /// evicted.
    fn admit(&self, info: &ConnInfo) -> Option<Slot> {
        match self.registry.admit(self.limits.max_connections) {
            Ok((slot, evicted)) => {
                if evicted {
                    Counters::hit(&self.counters.evicted);
                    tracing::debug!(remote = %info.remote, "at the connection cap: evicted the longest-idle connection");
                }
                Some(slot)
            }
            Err(registry::Full) => {
                Counters::hit(&self.counters.refused);
                tracing::warn!(
                    remote = %info.remote, local = %info.local,
                    "{} connections already served and none can be closed: closing this one",
                    self.limits.max_connections
                );
                None
            }
        }
    }

    /// Serves one connection on a new task, which the registry can abort
    /// to evict it. At the cap with nothing evictable the stream is
    /// dropped (closed) at once. Returns whether a task was started.
    pub fn spawn_connection<C: Conn>(
        self: &Arc<Self>,
        service: Service,
        stream: C,
        info: ConnInfo,
    ) -> bool {
        let Some(slot) = self.admit(&info) else {
            return false;
        };
        let id = slot.id();
        let services = Arc::clone(self);
        // Everything logged while serving carries the connection's
        // 4-tuple, so `RUST_LOG=debug` reads connection by connection.
        let span =
            tracing::debug_span!("conn", ?service, local = %info.local, remote = %info.remote);
        let task = tokio::spawn(
            async move {
                tracing::debug!("opened");
                match services.serve_admitted(service, stream, info, slot).await {
                    Ok(()) => tracing::debug!("done"),
                    Err(e) => tracing::debug!(%e, "ended"),
                }
            }
            .instrument(span),
        );
        let abort = task.abort_handle();
        self.registry
            .set_closer(id, Box::new(move || abort.abort()));
        true
    }

    /// Accepts connections for `service` until the listener fails for
    /// good, each served by [`Services::spawn_connection`]. `accept` gives
    /// the listener's next connection with its [`ConnInfo`].
    ///
    /// Transient accept errors (the peer aborted, interrupted) are skipped;
    /// other errors are logged and retried with a backoff from 10 ms to 1 s;
    /// after [`ACCEPT_GIVE_UP`] consecutive ones the last error is returned
    /// (for example because the listener was closed at shutdown).
    pub async fn accept_loop<C, A, F>(
        self: &Arc<Self>,
        service: Service,
        mut accept: A,
    ) -> io::Error
    where
        C: Conn,
        A: FnMut() -> F,
        F: Future<Output = io::Result<(C, ConnInfo)>>,
    {
        let mut failures = 0u32;
        let mut backoff = Duration::from_millis(10);
        loop {
            match accept().await {
                Ok((stream, info)) => {
                    failures = 0;
                    backoff = Duration::from_millis(10);
                    self.spawn_connection(service, stream, info);
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    failures += 1;
                    tracing::warn!(?service, %e, failures, "accept failed");
                    if failures >= ACCEPT_GIVE_UP {
                        return e;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// Consecutive non-transient accept failures after which
/// [`Services::accept_loop`] returns.
pub const ACCEPT_GIVE_UP: u32 = 10;

/// Accept errors that concern one failed connection, not the listener.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_is_served_registered_and_released() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let services = Services::new(Arc::new(crate::kernel::KernelHost::new()));
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let info = ConnInfo {
            local: "10.0.0.2:7".parse().expect("addr"),
            remote: "10.0.0.1:5000".parse().expect("addr"),
        };
        let serving = Arc::clone(&services);
        let task =
            tokio::spawn(async move { serving.serve_connection(Service::Echo, ours, info).await });
        theirs.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        theirs.read_exact(&mut got).await.expect("echo");
        assert_eq!(&got, b"ping");
        assert_eq!(services.active_connections(), 1);
        theirs.shutdown().await.expect("shutdown");
        let mut rest = Vec::new();
        theirs.read_to_end(&mut rest).await.expect("our FIN");
        task.await.expect("join").expect("served");
        assert_eq!(services.active_connections(), 0);
    }
}
