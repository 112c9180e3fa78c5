//! The socket API, shaped like `std::net`: [`TcpListener`], [`TcpStream`]
//! (`Read` + `Write`, `peek`, shutdown, timeouts, `take_error`, and
//! [`TcpInfo`] like Linux's `TCP_INFO`), [`UdpSocket`] (`connect`ed or
//! not), and a snapshot of the socket table. Errors are `io::Error`s with the kinds std uses
//! (`ConnectionRefused`, `ConnectionReset`, `TimedOut`, `AddrInUse`, ...).
//!
//! The API speaks to the runtime only in sockets, through `runtime::ops`
//! (open, listen, bind, send a datagram, release) and the socket types it
//! returns; it builds no connection and knows no header size.
//!
//! With the `tokio` feature, [`tokio`](mod@tokio) has the same sockets
//! with async calls, on the same runtime.

mod attempt;
mod blocking;
mod owned;
mod snapshot;
mod tcp;
#[cfg(feature = "tokio")]
pub mod tokio;
mod udp;

use std::io;
use std::time::Instant as StdInstant;

pub use crate::tcp::connection::info::TcpInfo;
pub use snapshot::SocketInfo;
pub use tcp::{TcpListener, TcpStream, DEFAULT_CONNECT_TIMEOUT};
pub use udp::UdpSocket;

use crate::runtime::ops::OpenError;
use crate::table::BindError;
use crate::tcp::error::ConnError;

fn bind_error(e: BindError) -> io::Error {
    let kind = match e {
        BindError::AddrInUse => io::ErrorKind::AddrInUse,
        BindError::NoEphemeralPorts | BindError::TableFull => io::ErrorKind::AddrNotAvailable,
    };
    io::Error::new(kind, e)
}

pub(crate) fn open_error(e: OpenError) -> io::Error {
    match e {
        OpenError::Bind(e) => bind_error(e),
        OpenError::NotOurAddress(addr) => io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{addr} is not this stack's address"),
        ),
        OpenError::NoIpv6Address(to) => io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("cannot reach {to}: the stack has no IPv6 address (set Config::addr6)"),
        ),
        OpenError::ShutDown => shut_down(),
    }
}

pub(crate) fn conn_error(e: ConnError) -> io::Error {
    let kind = match e {
        ConnError::Refused => io::ErrorKind::ConnectionRefused,
        ConnError::Reset => io::ErrorKind::ConnectionReset,
        ConnError::TimedOut => io::ErrorKind::TimedOut,
        ConnError::Aborted => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(kind, e)
}

pub(crate) fn shut_down() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the stack was shut down")
}

pub(crate) fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, format!("{what} timed out"))
}

/// What a non-blocking call returns instead of waiting.
pub(crate) fn would_block(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, format!("{what} would block"))
}

/// The instant a blocking call with `timeout` gives up.
pub(crate) fn deadline(timeout: Option<std::time::Duration>) -> Option<StdInstant> {
    timeout.map(|t| StdInstant::now() + t)
}
