//! What the services need of a connection besides bytes ([`Conn`]): a way
//! to give up on it at once. Implemented for tokio's `TcpStream` (the
//! kernel baseline) and the stack's `stack::tokio::TcpStream`; closing our
//! side gracefully is `AsyncWriteExt::shutdown` (a FIN) on both.

use tokio::io::{AsyncRead, AsyncWrite};

/// A connection the services can be run on.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Gives up on the connection at once (after a write timeout: the
    /// peer does not read): a RST, and what is queued is dropped, as
    /// `close` with `SO_LINGER` 0 does. Later reads and writes fail.
    fn abort(&self);
}

impl Conn for tokio::net::TcpStream {
    fn abort(&self) {
        // Linger 0 makes the close a RST; shutting both ways ends the
        // connection now rather than when this handle is dropped.
        let _ = self.set_zero_linger();
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Both);
    }
}

impl Conn for stack::tokio::TcpStream {
    fn abort(&self) {
        stack::tokio::TcpStream::abort(self);
    }
}

/// An in-memory stream for unit tests: nothing to reset, so an abort only
/// leaves it to be dropped.
#[cfg(test)]
impl Conn for tokio::io::DuplexStream {
    fn abort(&self) {}
}
