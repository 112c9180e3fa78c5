//! UDP echo (RFC 862 §"UDP Based Echo Service"): each datagram received is
//! sent back to its source. Written over two closures so it runs on any
//! datagram socket (the stack's or std's).

use std::io;
use std::net::SocketAddr;
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

/// Receives datagrams with `recv_from` and sends each back with `send_to`,
/// forever, except those from [`LOOPING_PORTS`] or port 0, which are
/// counted in `refused`. A failed send is logged and skipped (UDP promises
/// nothing); a failed receive other than `Interrupted`/`WouldBlock`/
/// `TimedOut` ends the loop with that error.
///
/// # Errors
/// The receive error that ended the loop.
pub fn serve<R, S>(mut recv_from: R, mut send_to: S, refused: &AtomicU64) -> io::Error
where
    R: FnMut(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    S: FnMut(&[u8], SocketAddr) -> io::Result<usize>,
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
        if from.port() == 0 || LOOPING_PORTS.contains(&from.port()) {
            Counters::hit(refused);
            continue;
        }
        if let Err(e) = send_to(buf.get(..n).unwrap_or(&[]), from) {
            tracing::debug!(%from, %e, "udp echo reply not sent");
        }
    }
}

/// [`serve`] on a `std::net::UdpSocket`.
pub fn serve_std(socket: &std::net::UdpSocket, refused: &AtomicU64) -> io::Error {
    serve(
        |buf| socket.recv_from(buf),
        |buf, to| socket.send_to(buf, to),
        refused,
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn datagrams_from_looping_services_are_not_echoed() {
        let peer = |port| SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), port));
        let mut inbox = vec![peer(40000), peer(7), peer(19), peer(0), peer(5353)].into_iter();
        let mut sent = Vec::new();
        let refused = AtomicU64::new(0);
        let end = serve(
            |buf| match inbox.next() {
                Some(from) => {
                    buf[0] = b'x';
                    Ok((1, from))
                }
                None => Err(io::Error::other("done")),
            },
            |buf, to| {
                sent.push(to.port());
                Ok(buf.len())
            },
            &refused,
        );
        assert_eq!(end.to_string(), "done");
        assert_eq!(sent, [40000, 5353]);
        assert_eq!(refused.load(Ordering::Relaxed), 3);
    }
}
