//! UDP echo (RFC 862 §"UDP Based Echo Service"): each datagram received is
//! sent back to its source. Written over two closures so it runs on any
//! datagram socket (the stack's or std's).

use std::io;
use std::net::SocketAddrV4;

/// The largest datagram echoed in full: the most a UDP/IPv4 datagram can
/// carry (65535 - 20 - 8). One buffer of this size per socket.
pub const MAX_DATAGRAM: usize = 65_507;

/// Receives datagrams with `recv_from` and sends each back with `send_to`,
/// forever. A failed send is logged and skipped (UDP promises nothing);
/// a failed receive other than `Interrupted`/`WouldBlock`/`TimedOut` ends
/// the loop with that error.
///
/// # Errors
/// The receive error that ended the loop.
pub fn serve<R, S>(mut recv_from: R, mut send_to: S) -> io::Error
where
    R: FnMut(&mut [u8]) -> io::Result<(usize, SocketAddrV4)>,
    S: FnMut(&[u8], SocketAddrV4) -> io::Result<usize>,
{
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return e,
        };
        if let Err(e) = send_to(buf.get(..n).unwrap_or(&[]), from) {
            tracing::debug!(%from, %e, "udp echo reply not sent");
        }
    }
}

/// [`serve`] on a `std::net::UdpSocket` (IPv4 peers only).
pub fn serve_std(socket: &std::net::UdpSocket) -> io::Error {
    serve(
        |buf| match socket.recv_from(buf)? {
            (n, std::net::SocketAddr::V4(a)) => Ok((n, a)),
            (_, other) => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                format!("ignoring IPv6 peer {other}"),
            )),
        },
        |buf, to| socket.send_to(buf, to),
    )
}
