//! ICMP, the connectionless part (RFC 792, RFC 1122 §3.2.2): the answer to
//! an echo request, the port-unreachable error for a closed UDP port, and
//! the rate limit on errors. Sans-IO: packets in, replies out.

use std::time::Duration;

use crate::time::Instant;
use crate::wire::icmp::{time_exceeded_code, unreach_code, IcmpRepr, MAX_QUOTE};

/// The echo reply to an echo request (RFC 792: same identifier, sequence
/// number and data), or `None` for any other message.
pub fn echo_reply<'a>(request: &IcmpRepr<'a>) -> Option<IcmpRepr<'a>> {
    match *request {
        IcmpRepr::EchoRequest {
            ident,
            seq_no,
            data,
        } => Some(IcmpRepr::EchoReply {
            ident,
            seq_no,
            data,
        }),
        _ => None,
    }
}

/// Destination unreachable (port) for `packet`, the whole IPv4 datagram
/// that reached a closed UDP port. RFC 792 asks for the IP header and 64
/// bits of data; like Linux we quote as much as keeps the error within 576
/// bytes (RFC 1812 §4.3.2.3).
pub fn port_unreachable(packet: &[u8]) -> IcmpRepr<'_> {
    IcmpRepr::DestUnreachable {
        code: unreach_code::PORT,
        original: &packet[..packet.len().min(MAX_QUOTE)],
    }
}

/// Destination unreachable (protocol) for a datagram of a protocol we do
/// not speak (RFC 1122 §3.2.2.1 SHOULD).
pub fn protocol_unreachable(packet: &[u8]) -> IcmpRepr<'_> {
    IcmpRepr::DestUnreachable {
        code: unreach_code::PROTOCOL,
        original: &packet[..packet.len().min(MAX_QUOTE)],
    }
}

/// Time exceeded (fragment reassembly) for a datagram whose fragments
/// did not all arrive in time (RFC 792; RFC 1122 §3.3.2: sent only when
/// the first fragment was received). `quote` is that fragment's header
/// and the first 8 bytes of its data.
pub fn reassembly_time_exceeded(quote: &[u8]) -> IcmpRepr<'_> {
    IcmpRepr::TimeExceeded {
        code: time_exceeded_code::REASSEMBLY,
        original: &quote[..quote.len().min(MAX_QUOTE)],
    }
}

/// A token bucket: at most `rate` errors per second with a burst of
/// `rate`, so a flood of datagrams to closed ports cannot make us a flood
/// source (RFC 1812 §4.3.2.8).
#[derive(Debug)]
pub struct RateLimiter {
    rate: u32,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate: u32, now: Instant) -> RateLimiter {
        RateLimiter {
            rate,
            tokens: f64::from(rate),
            last: now,
        }
    }

    /// Takes a token if one is left at `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed: Duration = now - self.last;
        self.last = self.last.max(now);
        let cap = f64::from(self.rate);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * cap).min(cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_reply_mirrors_the_request() {
        let req = IcmpRepr::EchoRequest {
            ident: 7,
            seq_no: 3,
            data: b"ping",
        };
        assert_eq!(
            echo_reply(&req),
            Some(IcmpRepr::EchoReply {
                ident: 7,
                seq_no: 3,
                data: b"ping"
            })
        );
        assert_eq!(
            echo_reply(&IcmpRepr::Other {
                icmp_type: 13,
                code: 0
            }),
            None
        );
    }

    #[test]
    fn port_unreachable_quotes_at_most_548_bytes() {
        let big = vec![0u8; 1500];
        match port_unreachable(&big) {
            IcmpRepr::DestUnreachable { code, original } => {
                assert_eq!(code, unreach_code::PORT);
                assert_eq!(original.len(), 548);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reassembly_time_exceeded_is_type_11_code_1() {
        let quote = [0x45u8; 28];
        let msg = reassembly_time_exceeded(&quote);
        let mut buf = [0u8; 36];
        assert_eq!(msg.emit(&mut buf), Ok(36));
        assert_eq!(buf[..2], [11, 1]);
        assert_eq!(buf[4..8], [0; 4]);
        assert_eq!(buf[8..], quote);
        assert_eq!(IcmpRepr::parse(&buf), Ok(msg));
    }

    #[test]
    fn rate_limiter_allows_burst_then_refills() {
        let mut rl = RateLimiter::new(10, Instant::ZERO);
        let allowed = (0..50).filter(|_| rl.allow(Instant::ZERO)).count();
        assert_eq!(allowed, 10);
        assert!(!rl.allow(Instant::from_millis(50)));
        assert!(rl.allow(Instant::from_millis(100)));
    }
}
