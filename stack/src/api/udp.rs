//! `UdpSocket` over the stack.

use std::io;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::runtime::socket;
use crate::runtime::Stack;

use super::{deadline, open_error, shut_down, timed_out, would_block};

/// A UDP socket, like `std::net::UdpSocket`.
///
/// Received datagrams wait in a bounded queue (`Config::udp_queue_depth`);
/// when it is full, new ones are dropped and counted (`drop_queue_full`),
/// as a kernel socket's receive buffer would.
pub struct UdpSocket {
    stack: Stack,
    sock: Arc<socket::UdpSocket>,
    read_timeout: Mutex<Option<Duration>>,
    nonblocking: AtomicBool,
}

impl UdpSocket {
    /// Binds `port` on the stack's address; port 0 picks a free ephemeral
    /// port.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if another UDP socket holds the port.
    pub fn bind(stack: &Stack, port: u16) -> io::Result<UdpSocket> {
        let local = SocketAddrV4::new(stack.addr(), port);
        let sock = stack.inner.bind_udp(local).map_err(open_error)?;
        Ok(UdpSocket {
            stack: stack.clone(),
            sock,
            read_timeout: Mutex::new(None),
            nonblocking: AtomicBool::new(false),
        })
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.sock.key.addr, self.sock.key.port)
    }

    /// Sends one datagram to `to`: in one packet when it fits the MTU,
    /// else in IPv4 fragments (the peer reassembles them).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `buf` is longer than 65,507 bytes, the most an
    /// IPv4 datagram carries behind its IP and UDP headers.
    pub fn send_to(&self, buf: &[u8], to: SocketAddrV4) -> io::Result<usize> {
        self.stack
            .inner
            .send_datagram(&self.sock, buf, to)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(buf.len())
    }

    /// Waits for a datagram, copies it into `buf` (truncating, as `std`
    /// does) and returns its length and sender.
    ///
    /// # Errors
    ///
    /// `WouldBlock` after the read timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        let until = deadline(*self.read_timeout.lock());
        let mut q = self.sock.queue.lock();
        loop {
            if let Some((from, data)) = q.datagrams.pop_front() {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                return Ok((n, from));
            }
            if self.stack.is_shut_down() {
                return Err(shut_down());
            }
            if self.nonblocking.load(Ordering::Relaxed) {
                return Err(would_block("recv_from"));
            }
            match until {
                Some(t) => {
                    if self.sock.cond.wait_until(&mut q, t).timed_out() && q.datagrams.is_empty() {
                        return Err(timed_out("recv_from"));
                    }
                }
                None => self.sock.cond.wait(&mut q),
            }
        }
    }

    /// `None` blocks forever (the default).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        *self.read_timeout.lock() = timeout;
        Ok(())
    }

    /// In non-blocking mode `recv_from` returns `WouldBlock` at once when
    /// no datagram is queued, as `std`'s does.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.stack.inner.unbind_udp(&self.sock);
    }
}
