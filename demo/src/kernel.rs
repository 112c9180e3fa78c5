//! The Linux-kernel baseline: the very same services (the same
//! [`Services`], the same per-connection tasks and bound) on tokio's own
//! sockets, so that a benchmark run side by side with the userspace stack
//! compares the TCP/IP stacks and not the service code.
//!
//! Difference on purpose: accepted kernel sockets get `TCP_NODELAY`, since
//! the services already coalesce each response into few large writes and
//! Nagle's algorithm would only add delayed-ACK stalls to the baseline.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use tokio::net::{TcpListener, TcpSocket, UdpSocket};

use serde_json::{json, Value};

use crate::host::{ConnInfo, HostInfo};
use crate::services::{udp_echo, Limits, Service, Services};

/// The ports to serve on; 0 lets the kernel pick (for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// TCP echo, well-known 7.
    pub echo: u16,
    /// TCP discard, well-known 9.
    pub discard: u16,
    /// HTTP, well-known 80.
    pub http: u16,
    /// Newline-delimited JSON-RPC, 7070.
    pub rpc: u16,
    /// UDP echo, well-known 7.
    pub udp_echo: u16,
}

impl Default for Ports {
    /// The demo's well-known ports (DESIGN.md, "The demo's contract").
    fn default() -> Ports {
        Ports {
            echo: Service::Echo.port(),
            discard: Service::Discard.port(),
            http: Service::Http.port(),
            rpc: Service::Rpc.port(),
            udp_echo: 7,
        }
    }
}

impl Ports {
    /// Every port 0: the kernel picks free ones.
    pub fn ephemeral() -> Ports {
        Ports {
            echo: 0,
            discard: 0,
            http: 0,
            rpc: 0,
            udp_echo: 0,
        }
    }

    fn of(&self, service: Service) -> u16 {
        match service {
            Service::Echo => self.echo,
            Service::Discard => self.discard,
            Service::Http => self.http,
            Service::Rpc => self.rpc,
        }
    }
}

/// A [`HostInfo`] for the kernel: the kernel's socket table is not ours to
/// show, so the list is empty; the counters say what this is and how long
/// it has run.
#[derive(Debug)]
pub struct KernelHost {
    started: Instant,
}

impl KernelHost {
    /// A host view starting its uptime now.
    pub fn new() -> KernelHost {
        KernelHost {
            started: Instant::now(),
        }
    }
}

impl Default for KernelHost {
    fn default() -> KernelHost {
        KernelHost::new()
    }
}

impl HostInfo for KernelHost {
    fn sockets(&self) -> Value {
        json!([])
    }

    fn stats(&self) -> Value {
        json!({
            "stack": "linux kernel",
            "uptime_ms": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// A running kernel server: where it listens, and the runtime its tasks
/// run on (dropping the server stops them).
#[derive(Debug)]
pub struct KernelServer {
    /// The bound TCP address of each service, in [`Service::ALL`] order.
    pub tcp: Vec<(Service, SocketAddr)>,
    /// The bound UDP echo address.
    pub udp_echo: SocketAddr,
    /// Each serving loop sends the error that ended it.
    ended: mpsc::Receiver<io::Error>,
    services: Arc<Services>,
    _runtime: tokio::runtime::Runtime,
}

impl KernelServer {
    /// The bound address of `service`.
    pub fn addr(&self, service: Service) -> Option<SocketAddr> {
        self.tcp
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, a)| *a)
    }

    /// The services it runs (their counters, their router).
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Blocks until a listener's loop ends, and returns why.
    ///
    /// # Errors
    /// The error that ended the first loop to end.
    pub fn wait(self) -> io::Result<()> {
        match self.ended.recv() {
            Ok(e) => Err(e),
            // Every sender dropped without sending: a task panicked.
            Err(_) => Err(io::Error::other("a listener task panicked")),
        }
    }
}

/// Serves TCP echo 7, discard 9, HTTP 80, JSON-RPC 7070 and UDP echo 7 on
/// `ip` with the kernel's sockets, a task per connection, and blocks.
///
/// # Errors
/// Binding a port failed (ports below 1024 need root or
/// `CAP_NET_BIND_SERVICE`), or a listener failed for good.
/// `workers` sets the runtime's threads (default: one per CPU).
pub fn kernel_serve(
    ip: IpAddr,
    host: Arc<dyn HostInfo>,
    limits: Limits,
    workers: Option<usize>,
) -> io::Result<()> {
    let server = serve_on(ip, Ports::default(), host, limits, workers)?;
    for (service, addr) in &server.tcp {
        tracing::info!(?service, %addr, "kernel listening");
    }
    tracing::info!(addr = %server.udp_echo, "kernel UDP echo listening");
    server.wait()
}

/// Binds every service on `ip` at `ports` and serves them on a runtime of
/// their own; returns at once with the bound addresses.
///
/// # Errors
/// Binding a port failed.
pub fn kernel_serve_on(
    ip: IpAddr,
    ports: Ports,
    host: Arc<dyn HostInfo>,
) -> io::Result<KernelServer> {
    kernel_serve_with(ip, ports, host, Limits::default())
}

/// [`kernel_serve_on`] with these limits (tests use short timeouts).
///
/// # Errors
/// Binding a port failed, or the runtime could not start.
pub fn kernel_serve_with(
    ip: IpAddr,
    ports: Ports,
    host: Arc<dyn HostInfo>,
    limits: Limits,
) -> io::Result<KernelServer> {
    serve_on(ip, ports, host, limits, None)
}

/// [`kernel_serve_with`] on `workers` threads (`None`: one per CPU).
fn serve_on(
    ip: IpAddr,
    ports: Ports,
    host: Arc<dyn HostInfo>,
    limits: Limits,
    workers: Option<usize>,
) -> io::Result<KernelServer> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = builder.enable_all().thread_name("kernel-serve").build()?;
    let services = Services::with_limits(host, limits);
    // Bind everything first, so a busy port fails the call and not a task.
    let (listeners, udp) = runtime.block_on(async {
        let mut listeners = Vec::new();
        for service in Service::ALL {
            let listener = listen(SocketAddr::new(ip, ports.of(service)), limits.backlog)?;
            listeners.push((service, listener.local_addr()?, listener));
        }
        let udp = UdpSocket::bind(SocketAddr::new(ip, ports.udp_echo)).await?;
        io::Result::Ok((listeners, udp))
    })?;
    let udp_addr = udp.local_addr()?;

    let (done, ended) = mpsc::channel();
    let mut tcp = Vec::new();
    for (service, local, listener) in listeners {
        tcp.push((service, local));
        let services = Arc::clone(&services);
        let done = done.clone();
        runtime.spawn(async move {
            let e = services
                .accept_loop(service, || accept(&listener, local))
                .await;
            let _ = done.send(e);
        });
    }
    let udp_services = Arc::clone(&services);
    runtime.spawn(async move {
        let e = udp_echo::serve(&udp, &udp_services.counters().udp_echo_refused).await;
        let _ = done.send(e);
    });
    Ok(KernelServer {
        tcp,
        udp_echo: udp_addr,
        ended,
        services,
        _runtime: runtime,
    })
}

/// A kernel listener on `addr` with an accept queue of `backlog`, as
/// tokio's `TcpListener::bind` makes one but for the backlog (its 128
/// would make a burst of clients wait out SYN retransmissions).
fn listen(addr: SocketAddr, backlog: usize) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(u32::try_from(backlog).unwrap_or(u32::MAX))
}

/// One `accept`, with the connection's 4-tuple.
async fn accept(
    listener: &TcpListener,
    local: SocketAddr,
) -> io::Result<(tokio::net::TcpStream, ConnInfo)> {
    let (stream, peer) = listener.accept().await?;
    stream.set_nodelay(true)?;
    let local = stream.local_addr().unwrap_or(local);
    Ok((
        stream,
        ConnInfo {
            local,
            remote: peer,
        },
    ))
}
