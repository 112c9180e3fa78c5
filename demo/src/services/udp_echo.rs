//! UDP echo (RFC 862 §"UDP Based Echo Service"): each datagram received is
//! sent back to its source, from the address it was sent to. Written over
//! [`Datagrams`] so it runs on the stack's sockets and on tokio's.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;

use super::limits::Counters;

/// Source ports of services that answer whatever they receive (echo,
/// daytime, quote of the day, chargen, time): a datagram from one of them
/// is not echoed, or two such services could bounce it between them
/// forever (the UDP "ping-pong" loop of CERT CA-1996-01).
const LOOPING_PORTS: [u16; 5] = [7, 13, 17, 19, 37];

/// The largest datagram echoed in full: the most a UDP/IPv4 datagram can
/// carry (65535 - 20 - 8). One buffer of this size per socket.
pub const MAX_DATAGRAM: usize = 65_507;

/// A datagram socket as the echo service uses it.
pub trait Datagrams: Send + Sync {
    /// Where a datagram was sent to, as far as the reply must leave from
    /// it: the address for a wildcard socket (the one the client dialled),
    /// nothing for a socket bound to one address.
    type Dialled: Copy + Send;

    /// The next datagram into `buf`: its length, its source, and where it
    /// was sent to.
    fn recv(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr, Self::Dialled)>> + Send;

    /// Sends `buf` to `to`, from where `dialled` says.
    fn send(
        &self,
        buf: &[u8],
        dialled: Self::Dialled,
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send;
}

impl Datagrams for stack::tokio::UdpSocket {
    type Dialled = IpAddr;

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, IpAddr)> {
        let (n, from, to) = self.recv_from_to(buf).await?;
        Ok((n, from, to.ip()))
    }

    async fn send(&self, buf: &[u8], from: IpAddr, to: SocketAddr) -> io::Result<usize> {
        self.send_from_to(buf, from, to).await
    }
}

/// Tokio's sockets are bound to one address (the kernel baseline binds the
/// demo's), so the reply leaves from it.
impl Datagrams for tokio::net::UdpSocket {
    type Dialled = ();

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, ())> {
        let (n, from) = self.recv_from(buf).await?;
        Ok((n, from, ()))
    }

    async fn send(&self, buf: &[u8], (): (), to: SocketAddr) -> io::Result<usize> {
        self.send_to(buf, to).await
    }
}

/// Whether a datagram from `from` must not be echoed: it comes from a
/// service that answers whatever it gets, or from port 0 (which no reply
/// can reach).
pub fn may_loop(from: SocketAddr) -> bool {
    from.port() == 0 || LOOPING_PORTS.contains(&from.port())
}

/// Receives datagrams on `socket` and sends each back, forever, except
/// those from the looping services' ports (`LOOPING_PORTS`) or port 0,
/// which are counted in `refused`. A failed send is logged and skipped
/// (UDP promises nothing); a failed receive other than
/// `Interrupted`/`WouldBlock`/`TimedOut` (an ICMP error reported on the
/// socket) ends the loop with that error.
///
/// # Errors
/// The receive error that ended the loop.
pub async fn serve<D: Datagrams>(socket: &D, refused: &AtomicU64) -> io::Error {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from, dialled) = match socket.recv(&mut buf).await {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionRefused
                ) =>
            {
                continue
            }
            Err(e) => return e,
        };
        if may_loop(from) {
            Counters::hit(refused);
            continue;
        }
        if let Err(e) = socket
            .send(buf.get(..n).unwrap_or(&[]), dialled, from)
            .await
        {
            tracing::debug!(%from, %e, "udp echo reply not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn datagrams_from_looping_services_and_port_0_are_refused() {
        let peer = |port| SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), port));
        for port in [0, 7, 13, 17, 19, 37] {
            assert!(may_loop(peer(port)), "{port}");
        }
        for port in [1, 53, 40000, 5353] {
            assert!(!may_loop(peer(port)), "{port}");
        }
    }

    #[tokio::test]
    async fn each_datagram_comes_back_to_its_sender() {
        let server = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = server.local_addr().expect("addr");
        let task = tokio::spawn(async move { serve(&server, &AtomicU64::new(0)).await });
        let client = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let mut buf = [0u8; 16];
        for text in [&b"hello"[..], b"", b"again"] {
            client.send_to(text, addr).await.expect("send");
            let (n, from) = client.recv_from(&mut buf).await.expect("echo");
            assert_eq!((&buf[..n], from), (text, addr));
        }
        task.abort();
    }
}
