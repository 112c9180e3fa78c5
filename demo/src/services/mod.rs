//! The demo's services, written once over any byte stream so the same code
//! runs on the userspace stack and on the kernel's sockets (the benchmark
//! baseline): echo (RFC 862), discard (RFC 863), HTTP/1.1 and JSON-RPC.
//!
//! [`Services`] holds what the services share (the host view, the RPC
//! router, the connection bound) and dispatches one accepted connection to
//! its service on its own thread; [`Services::accept_loop`] is the whole
//! per-port server loop, so a binary only binds listeners and calls it.
//!
//! DoS bound: at most [`MAX_CONNECTIONS`] connections are served at once
//! over all ports; a connection accepted beyond that is closed at once and
//! logged. Each connection thread uses a bounded amount of memory (see the
//! bounds on each service), so the total is bounded too.

pub mod bytes;
pub mod discard;
pub mod echo;
pub mod http;
pub mod routes;
pub mod rpc_service;
pub mod udp_echo;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::host::{ConnInfo, HostInfo};

/// The most connections served at the same time, over all services. Each
/// is one thread with its buffers (HTTP: 16 KiB head + 64 KiB response +
/// 64 KiB hash buffer; RPC: up to one 1 MiB line).
pub const MAX_CONNECTIONS: usize = 256;

/// An HTTP connection with no request for this long is closed, so idle
/// keep-alive connections do not hold [`MAX_CONNECTIONS`] slots forever.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Echo, discard and RPC connections idle for this long are closed. Long,
/// because a person typing into `nc` is a legitimate slow client.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

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

/// What a connection must offer besides bytes: closing our sending side
/// and a read timeout. Implemented for `std::net::TcpStream` and the
/// stack's `TcpStream`; any other stream can be wrapped in [`ConnFns`].
pub trait Conn: Read + Write + Send + Sized + 'static {
    /// Sends our FIN (`shutdown(Shutdown::Write)`).
    ///
    /// # Errors
    /// As the socket's shutdown.
    fn shutdown_write(&self) -> io::Result<()>;

    /// Sets (or with `None` clears) the read timeout.
    ///
    /// # Errors
    /// As the socket's `set_read_timeout`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Conn for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
}

impl Conn for stack::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        stack::TcpStream::set_read_timeout(self, timeout)
    }
}

/// Any stream as a [`Conn`], given its shutdown and timeout as functions:
///
/// ```ignore
/// let conn = ConnFns::new(stream, |s| s.shutdown(Shutdown::Write), |s, t| s.set_read_timeout(t));
/// ```
pub struct ConnFns<T> {
    stream: T,
    shutdown_write: fn(&T) -> io::Result<()>,
    set_read_timeout: fn(&T, Option<Duration>) -> io::Result<()>,
}

impl<T> ConnFns<T> {
    /// Wraps `stream` with its two operations.
    pub fn new(
        stream: T,
        shutdown_write: fn(&T) -> io::Result<()>,
        set_read_timeout: fn(&T, Option<Duration>) -> io::Result<()>,
    ) -> ConnFns<T> {
        ConnFns {
            stream,
            shutdown_write,
            set_read_timeout,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.stream
    }
}

impl<T: Read> Read for ConnFns<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl<T: Write> Write for ConnFns<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.stream.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<T: Read + Write + Send + 'static> Conn for ConnFns<T> {
    fn shutdown_write(&self) -> io::Result<()> {
        (self.shutdown_write)(&self.stream)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (self.set_read_timeout)(&self.stream, timeout)
    }
}

/// Everything the services share, built once per host and shared by all
/// connection threads through an `Arc`.
pub struct Services {
    routes: routes::Routes,
    router: Arc<rpc::Router>,
    active: Arc<AtomicUsize>,
    max_connections: usize,
}

impl Services {
    /// The demo's services over `host`, with [`MAX_CONNECTIONS`].
    pub fn new(host: Arc<dyn HostInfo>) -> Arc<Services> {
        Services::with_max_connections(host, MAX_CONNECTIONS)
    }

    /// The same with another connection bound (tests use a small one).
    pub fn with_max_connections(host: Arc<dyn HostInfo>, max_connections: usize) -> Arc<Services> {
        let router = Arc::new(rpc_service::router(Arc::clone(&host)));
        Arc::new(Services {
            routes: routes::Routes::new(host, Arc::clone(&router)),
            router,
            active: Arc::new(AtomicUsize::new(0)),
            max_connections,
        })
    }

    /// The JSON-RPC router behind port 7070 and `POST /rpc`.
    pub fn router(&self) -> &Arc<rpc::Router> {
        &self.router
    }

    /// How many connections are being served right now.
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Serves one connection on the calling thread until it ends, then
    /// closes our side. Returns the bytes (echo, discard) or responses
    /// (HTTP) handled; 0 for RPC.
    ///
    /// # Errors
    /// The stream's I/O errors, including the idle timeouts above.
    pub fn serve_connection<C: Conn>(
        &self,
        service: Service,
        mut stream: C,
        info: ConnInfo,
    ) -> io::Result<u64> {
        let timeout = match service {
            Service::Http => HTTP_IDLE_TIMEOUT,
            Service::Echo | Service::Discard | Service::Rpc => STREAM_IDLE_TIMEOUT,
        };
        if let Err(e) = stream.set_read_timeout(Some(timeout)) {
            tracing::debug!(%e, "cannot set a read timeout");
        }
        let done = match service {
            Service::Echo => echo::serve(&mut stream),
            Service::Discard => discard::serve(&mut stream),
            Service::Http => http::serve(&mut stream, &info, &self.routes),
            Service::Rpc => self.router.serve_lines(&mut stream).map(|()| 0),
        };
        // RFC 862/863 and HTTP: after the last byte, our FIN. A peer that
        // already left makes this fail, which changes nothing.
        let _ = stream.shutdown_write();
        done
    }

    /// Serves one connection on a new thread, unless [`MAX_CONNECTIONS`]
    /// are already being served: then the stream is dropped (closed) at
    /// once and a warning logged. Returns whether a thread was started.
    pub fn spawn_connection<C: Conn>(
        self: &Arc<Self>,
        service: Service,
        stream: C,
        info: ConnInfo,
    ) -> bool {
        let Some(permit) = Permit::acquire(&self.active, self.max_connections) else {
            tracing::warn!(
                remote = %info.remote, local = %info.local,
                "{} connections already served: closing this one", self.max_connections
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

/// One of the [`MAX_CONNECTIONS`] slots, given back on drop.
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
    }

    impl Duplex {
        pub(crate) fn new(input: Vec<u8>) -> Duplex {
            Duplex {
                input,
                pos: 0,
                piece: 1000,
                output: Vec::new(),
            }
        }
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let rest = &self.input[self.pos..];
            let n = rest.len().min(buf.len()).min(self.piece);
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            Ok(n)
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
