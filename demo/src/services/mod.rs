//! The demo's services, written once over any byte stream so the same code
//! runs on the userspace stack and on the kernel's sockets (the benchmark
//! baseline): echo (RFC 862), discard (RFC 863), HTTP/1.1 and JSON-RPC.
//!
//! [`Services`] holds what the services share (the host view, the RPC
//! router, the connection bound) and dispatches one accepted connection to
//! its service on its own thread; [`Services::accept_loop`] is the whole
//! per-port server loop, so a binary only binds listeners and calls it.
//!
//! DoS bounds: every limit is in [`limits`] with its default, flag and
//! counter. At most `max_connections` ([`MAX_CONNECTIONS`]) connections are
//! served at once over all ports; a connection accepted beyond that closes
//! the one idle longest ([`registry`]) and takes its place. An evicted
//! connection's thread may take a moment to notice, so up to twice
//! `max_connections` threads can exist; past that a newcomer is refused.
//! Each connection thread uses a bounded amount of memory (see the bounds
//! on each service), so the total is bounded too; each wait has a deadline.

pub mod bytes;
pub mod conn;
pub mod discard;
pub mod echo;
pub mod http;
pub mod limits;
pub mod line_deadline;
pub mod registry;
pub mod routes;
pub mod rpc_service;
pub mod udp_echo;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::host::{ConnInfo, HostInfo};
pub use conn::{Conn, ConnFns, ReadTimeout};
pub use limits::{Counters, Limits, HTTP_IDLE_TIMEOUT, MAX_CONNECTIONS, STREAM_IDLE_TIMEOUT};
use line_deadline::LineDeadline;
use registry::{Registry, Tracked};

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
/// counters stay where they were, at the top level).
struct DemoHost {
    host: Arc<dyn HostInfo>,
    counters: Arc<Counters>,
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
}

/// Everything the services share, built once per host and shared by all
/// connection threads through an `Arc`.
pub struct Services {
    routes: routes::Routes,
    router: Arc<rpc::Router>,
    /// Threads serving connections, evicted ones included.
    active: Arc<AtomicUsize>,
    registry: Arc<Registry>,
    limits: Limits,
    counters: Arc<Counters>,
}

impl Services {
    /// The demo's services over `host`, with the default [`Limits`].
    pub fn new(host: Arc<dyn HostInfo>) -> Arc<Services> {
        Services::with_limits(host, Limits::default())
    }

    /// The same with another connection bound (tests use a small one).
    pub fn with_max_connections(host: Arc<dyn HostInfo>, max_connections: usize) -> Arc<Services> {
        Services::with_limits(
            host,
            Limits {
                max_connections,
                ..Limits::default()
            },
        )
    }

    /// The demo's services over `host` with these limits.
    pub fn with_limits(host: Arc<dyn HostInfo>, limits: Limits) -> Arc<Services> {
        let counters = Arc::new(Counters::default());
        let host: Arc<dyn HostInfo> = Arc::new(DemoHost {
            host,
            counters: Arc::clone(&counters),
        });
        let router = Arc::new(rpc_service::router(Arc::clone(&host)));
        Arc::new(Services {
            routes: routes::Routes::new(host, Arc::clone(&router), limits, Arc::clone(&counters)),
            router,
            active: Arc::new(AtomicUsize::new(0)),
            registry: Arc::new(Registry::default()),
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

    /// How many connections are being served right now (evicted ones that
    /// are still winding down included).
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Serves one connection on the calling thread until it ends, then
    /// closes our side. Returns the bytes (echo, discard) or responses
    /// (HTTP) handled; 0 for RPC. The connection is registered for the
    /// cap like any other (it may evict one, or be evicted).
    ///
    /// # Errors
    /// The stream's I/O errors, including the timeouts of [`Limits`];
    /// `ConnectionRefused` if the cap is reached and nothing can be evicted.
    pub fn serve_connection<C: Conn>(
        &self,
        service: Service,
        stream: C,
        info: ConnInfo,
    ) -> io::Result<u64> {
        let Some(slot) = self.admit(&stream, &info) else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection cap reached",
            ));
        };
        let limits = &self.limits;
        let idle = match service {
            Service::Http => limits.http_idle_timeout,
            Service::Echo | Service::Discard | Service::Rpc => limits.stream_idle_timeout,
        };
        if let Err(e) = stream.set_read_timeout(Some(idle)) {
            tracing::debug!(%e, "cannot set a read timeout");
        }
        if let Err(e) = stream.set_write_timeout(Some(limits.write_timeout)) {
            tracing::debug!(%e, "cannot set a write timeout");
        }
        let mut stream = Tracked::new(stream, slot, Arc::clone(&self.counters));
        let done = match service {
            Service::Echo => echo::serve(&mut stream),
            Service::Discard => discard::serve(&mut stream),
            Service::Http => http::serve(
                &mut stream,
                &info,
                &self.routes,
                &http::Deadlines::from(limits),
                &self.counters,
            ),
            Service::Rpc => {
                let mut lines = LineDeadline::new(&mut stream, limits.head_timeout, idle);
                let done = self.router.serve_lines(&mut lines).map(|()| 0);
                if lines.timed_out {
                    // A line's deadline, not the idle timeout below.
                    Counters::hit(&self.counters.head_timeouts);
                    stream.read_timed_out = false;
                }
                done
            }
        };
        // HTTP counts its own read timeouts by phase; for the others a
        // read timeout is the idle timeout.
        if service != Service::Http && stream.read_timed_out {
            Counters::hit(&self.counters.idle_timeouts);
        }
        // RFC 862/863 and HTTP: after the last byte, our FIN. A peer that
        // already left makes this fail, which changes nothing. After a
        // write timeout there is no point queueing a FIN behind data the
        // peer does not take: the connection is reset, and its buffers go
        // at once rather than after the orphan timeout.
        if stream.write_timed_out {
            stream.get_ref().abort();
        } else {
            let _ = stream.get_ref().shutdown_write();
        }
        done
    }

    /// Registers `stream` for the connection cap, evicting the longest-idle
    /// connection if the cap is reached; `None` (counted, logged) if
    /// nothing could be evicted.
    fn admit<C: Conn>(&self, stream: &C, info: &ConnInfo) -> Option<registry::Slot> {
        match self
            .registry
            .admit(stream.closer(), self.limits.max_connections)
        {
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

    /// Serves one connection on a new thread. At the connection cap the
    /// longest-idle connection is closed to make room (see
    /// [`Services::serve_connection`]); with twice the cap in threads
    /// (evicted ones not yet gone) the stream is dropped (closed) at once
    /// and a warning logged. Returns whether a thread was started.
    pub fn spawn_connection<C: Conn>(
        self: &Arc<Self>,
        service: Service,
        stream: C,
        info: ConnInfo,
    ) -> bool {
        let max_threads = self.limits.max_connections.saturating_mul(2);
        let Some(permit) = Permit::acquire(&self.active, max_threads) else {
            Counters::hit(&self.counters.refused);
            tracing::warn!(
                remote = %info.remote, local = %info.local,
                "{max_threads} connection threads running: closing this one"
            );
            return false;
        };
        let services = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name(format!("{service:?} {}", info.remote))
            .spawn(move || {
                let _permit = permit;
                tracing::debug!(?service, remote = %info.remote, "connection opened");
                match services.serve_connection(service, stream, info) {
                    Ok(n) => tracing::debug!(?service, remote = %info.remote, n, "connection done"),
                    Err(e) => {
                        tracing::debug!(?service, remote = %info.remote, %e, "connection ended")
                    }
                }
            });
        match spawned {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(%e, "cannot start a connection thread");
                false
            }
        }
    }

    /// Accepts connections for `service` forever, each served by
    /// [`Services::spawn_connection`]. `accept` is the listener's accept
    /// returning the stream and its [`ConnInfo`].
    ///
    /// Transient accept errors (the peer aborted, interrupted) are skipped;
    /// other errors are logged and retried with a backoff from 10 ms to 1 s;
    /// after [`ACCEPT_GIVE_UP`] consecutive ones the last error is returned
    /// (for example because the listener was closed at shutdown).
    ///
    /// # Errors
    /// The accept error that made it give up.
    pub fn accept_loop<C, A>(self: &Arc<Self>, service: Service, mut accept: A) -> io::Error
    where
        C: Conn,
        A: FnMut() -> io::Result<(C, ConnInfo)>,
    {
        let mut failures = 0u32;
        let mut backoff = Duration::from_millis(10);
        loop {
            match accept() {
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
                    thread::sleep(backoff);
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

/// One of the connection threads, given back on drop.
struct Permit {
    active: Arc<AtomicUsize>,
}

impl Permit {
    fn acquire(active: &Arc<AtomicUsize>, max: usize) -> Option<Permit> {
        active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit {
                active: Arc::clone(active),
            })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! An in-memory stream for service unit tests.

    use std::io::{self, Read, Write};

    /// Reads from `input` in pieces of at most `piece` bytes (to exercise
    /// partial reads) and collects writes in `output`.
    pub(crate) struct Duplex {
        input: Vec<u8>,
        pos: usize,
        pub(crate) piece: usize,
        pub(crate) output: Vec<u8>,
        /// At the end of the input, time out (as a socket whose read
        /// timeout expired) instead of reporting end of stream.
        pub(crate) stall: bool,
    }

    impl Duplex {
        pub(crate) fn new(input: Vec<u8>) -> Duplex {
            Duplex {
                input,
                pos: 0,
                piece: 1000,
                output: Vec::new(),
                stall: false,
            }
        }
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let rest = &self.input[self.pos..];
            if rest.is_empty() && self.stall {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = rest.len().min(buf.len()).min(self.piece);
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl super::ReadTimeout for Duplex {
        fn set_read_timeout(&self, _: Option<std::time::Duration>) -> io::Result<()> {
            Ok(())
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_fns_serves_and_shuts_down_through_the_functions() {
        static SHUTDOWNS: AtomicUsize = AtomicUsize::new(0);
        let services = Services::new(Arc::new(crate::kernel::KernelHost::new()));
        let conn = ConnFns::new(
            testutil::Duplex::new(b"ping".to_vec()),
            |_| {
                SHUTDOWNS.fetch_add(1, Ordering::Relaxed);
                Ok(())
            },
            |_, _| Ok(()),
        );
        let info = ConnInfo {
            local: "10.0.0.2:7".parse().expect("addr"),
            remote: "10.0.0.1:5000".parse().expect("addr"),
        };
        assert_eq!(
            services
                .serve_connection(Service::Echo, conn, info)
                .expect("echo"),
            4
        );
        assert_eq!(SHUTDOWNS.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn permits_are_bounded_and_returned() {
        let active = Arc::new(AtomicUsize::new(0));
        let a = Permit::acquire(&active, 2).expect("first");
        let _b = Permit::acquire(&active, 2).expect("second");
        assert!(Permit::acquire(&active, 2).is_none());
        drop(a);
        assert!(Permit::acquire(&active, 2).is_some());
    }
}
