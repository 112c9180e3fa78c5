//! SYN cookies (RFC 4987 §3.6): answering a SYN without keeping state
//! when a listener's backlog is full.
//!
//! The SYN-ACK's initial sequence number is the cookie. When the final ACK
//! of the handshake comes back, `SEG.ACK - 1` is the cookie and
//! `SEG.SEQ - 1` the client's ISN, so the listener can check that the ACK
//! answers a SYN-ACK it sent and rebuild the connection from the ACK alone.
//!
//! # Layout of the cookie
//!
//! ```text
//!   cookie = H(key, local, remote, client ISN, slot) XOR mss_index
//!            |<------------- 30 bits checked ------------>|<- 2 ->|
//! ```
//!
//! H is SipHash-2-4 under a random 128-bit key (a keyed PRF, as RFC 4987
//! §3.6 and RFC 6528 §3 ask: an attacker who does not know the key cannot
//! compute or predict a cookie). `slot` is a coarse clock of
//! [`SLOT_SECS`]-second periods: a cookie is accepted in its own slot and
//! the next one, so it lives between 64 and 128 seconds (Linux's cookies
//! live up to 2 minutes). The MSS index into [`MSS_TABLE`] is XORed into
//! the low two bits, so it is hidden from observers but recoverable by the
//! holder of the key. The 30 checked bits and two accepted slots leave an
//! attacker who guesses blindly a 2^-29 chance per forged ACK.
//!
//! # What a cookie loses
//!
//! Only the MSS survives, rounded down to a table entry (as in Linux). The
//! window scale, SACK-permitted and timestamp options of the SYN are not
//! encoded (Linux hides them in the timestamp option; we do not), so a
//! connection opened by cookie runs without window scaling (window at most
//! 64 KiB), without SACK and without timestamps. Cookies are only used
//! while a listener's backlog overflows, which is when that trade is worth
//! making.

use std::net::SocketAddr;

use super::secret::{four_tuple_bytes, SecretKey};
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Length of one time slot of the cookie clock, in seconds.
pub const SLOT_SECS: u64 = 64;

/// The MSS values a cookie can encode, as in Linux's `msstab` for IPv4. A
/// peer's MSS is rounded down to the largest entry not above it; a peer
/// below the first entry gets the first (the RFC 9293 §3.7.1 default, which
/// every IPv4 host must accept).
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// Mask of the cookie bits the hash checks (the two low bits carry the MSS
/// index).
const CHECK_MASK: u32 = !0b11;

/// Makes and checks SYN cookies under one secret key.
#[derive(Clone, Debug)]
pub struct SynCookies {
    key: SecretKey,
}

impl Default for SynCookies {
    fn default() -> Self {
        SynCookies::new()
    }
}

impl SynCookies {
    /// Cookies under a fresh random 128-bit key from `/dev/urandom` (or,
    /// if that cannot be read, from the OS-seeded keys of std's
    /// `RandomState`).
    pub fn new() -> Self {
        SynCookies {
            key: SecretKey::random(),
        }
    }

    /// Cookies under a fixed key, for tests.
    pub fn with_key(key: [u8; 16]) -> Self {
        SynCookies {
            key: SecretKey::from_bytes(key),
        }
    }

    /// The ISN of a stateless SYN-ACK answering a SYN from `remote` to
    /// `local` with sequence number `client_isn` and MSS option `peer_mss`
    /// (`None` when the SYN had none), sent at `now`.
    pub fn generate(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        client_isn: SeqNumber,
        peer_mss: Option<u16>,
    ) -> SeqNumber {
        let index = mss_index(peer_mss);
        let h = self.hash(slot(now), local, remote, client_isn);
        // invariant: index < 4, it fits the two low bits.
        SeqNumber(h ^ index as u32)
    }

    /// Checks the final ACK of a handshake answered by cookie: `ack` is the
    /// ACK's SEG.ACK and `seq` its SEG.SEQ. Returns the MSS the cookie
    /// encoded if the cookie was made under this key for this four-tuple
    /// and client ISN during the current or the previous slot.
    pub fn check(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seq: SeqNumber,
        ack: SeqNumber,
    ) -> Option<u16> {
        let cookie = (ack - 1).0;
        let client_isn = seq - 1;
        let current = slot(now);
        [current, current.wrapping_sub(1)]
            .into_iter()
            .find_map(|s| {
                let h = self.hash(s, local, remote, client_isn);
                ((h ^ cookie) & CHECK_MASK == 0).then_some((h ^ cookie) as usize)
            })
            .and_then(|index| MSS_TABLE.get(index).copied())
    }

    /// SipHash-2-4 of the four-tuple, the client's ISN and the slot,
    /// truncated to 32 bits.
    fn hash(&self, slot: u32, local: SocketAddr, remote: SocketAddr, isn: SeqNumber) -> u32 {
        let mut msg = four_tuple_bytes(local, remote);
        msg.put(&isn.0.to_be_bytes()).put(&slot.to_be_bytes());
        // Truncation intended: a cookie is 32 bits.
        self.key.hash(msg.as_slice()) as u32
    }
}

/// The cookie clock at `now`: the number of whole slots since the stack's
/// epoch, wrapping (only equality and "one before" are ever compared).
fn slot(now: Instant) -> u32 {
    (now.total_micros() / (SLOT_SECS * 1_000_000)) as u32
}

/// The index of the largest table MSS not above `peer_mss` (536 when
/// absent, RFC 9293 §3.7.1).
fn mss_index(peer_mss: Option<u16>) -> usize {
    let mss = peer_mss.unwrap_or(MSS_TABLE[0]);
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use super::*;

    const KEY: [u8; 16] = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f,
    ];

    fn addr(a: u8, port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(10, 0, 0, a), port))
    }

    const LOCAL: fn() -> SocketAddr = || addr(2, 80);
    const REMOTE: fn() -> SocketAddr = || addr(1, 40000);
    const CLIENT_ISN: SeqNumber = SeqNumber(0x6b8b_4567);

    /// The ACK that completes a handshake answered with `cookie`.
    fn ack_of(cookie: SeqNumber) -> (SeqNumber, SeqNumber) {
        (CLIENT_ISN + 1, cookie + 1)
    }

    #[test]
    fn round_trip_in_the_same_and_next_slot() {
        let c = SynCookies::with_key(KEY);
        let t0 = Instant::from_millis(1000);
        let cookie = c.generate(t0, LOCAL(), REMOTE(), CLIENT_ISN, Some(1460));
        let (seq, ack) = ack_of(cookie);
        assert_eq!(c.check(t0, LOCAL(), REMOTE(), seq, ack), Some(1460));
        let next_slot = Instant::from_millis(1000 + SLOT_SECS * 1000);
        assert_eq!(c.check(next_slot, LOCAL(), REMOTE(), seq, ack), Some(1460));
    }

    #[test]
    fn expired_after_two_slots() {
        let c = SynCookies::with_key(KEY);
        let t0 = Instant::from_millis(1000);
        let cookie = c.generate(t0, LOCAL(), REMOTE(), CLIENT_ISN, Some(1460));
        let (seq, ack) = ack_of(cookie);
        let late = Instant::from_millis(1000 + 2 * SLOT_SECS * 1000);
        assert_eq!(c.check(late, LOCAL(), REMOTE(), seq, ack), None);
    }

    #[test]
    fn wrong_tuple_isn_or_key_rejected() {
        let c = SynCookies::with_key(KEY);
        let now = Instant::from_millis(5);
        let cookie = c.generate(now, LOCAL(), REMOTE(), CLIENT_ISN, Some(1460));
        let (seq, ack) = ack_of(cookie);
        assert_eq!(c.check(now, LOCAL(), addr(1, 40001), seq, ack), None);
        assert_eq!(c.check(now, LOCAL(), addr(3, 40000), seq, ack), None);
        assert_eq!(c.check(now, addr(2, 81), REMOTE(), seq, ack), None);
        assert_eq!(c.check(now, LOCAL(), REMOTE(), seq + 1, ack), None);
        assert_eq!(c.check(now, LOCAL(), REMOTE(), seq, ack + 4), None);
        let mut other = KEY;
        other[15] ^= 0x80;
        let d = SynCookies::with_key(other);
        assert_eq!(d.check(now, LOCAL(), REMOTE(), seq, ack), None);
    }

    #[test]
    fn mss_is_encoded_rounded_down() {
        let c = SynCookies::with_key(KEY);
        let now = Instant::from_millis(5);
        for (offered, expect) in [
            (None, 536),
            (Some(0), 536),
            (Some(536), 536),
            (Some(1299), 536),
            (Some(1300), 1300),
            (Some(1439), 1300),
            (Some(1440), 1440),
            (Some(1460), 1460),
            (Some(9000), 1460),
        ] {
            let cookie = c.generate(now, LOCAL(), REMOTE(), CLIENT_ISN, offered);
            let (seq, ack) = ack_of(cookie);
            assert_eq!(
                c.check(now, LOCAL(), REMOTE(), seq, ack),
                Some(expect),
                "{offered:?}"
            );
        }
    }

    #[test]
    fn cookies_are_keyed_and_spread() {
        // Two random keys give unrelated cookies for the same SYN, and one
        // key gives distinct cookies across four-tuples: the ISN cannot be
        // predicted without the key (RFC 6528 §3).
        let now = Instant::from_millis(5);
        let a = SynCookies::new().generate(now, LOCAL(), REMOTE(), CLIENT_ISN, Some(1460));
        let b = SynCookies::new().generate(now, LOCAL(), REMOTE(), CLIENT_ISN, Some(1460));
        assert_ne!(a, b, "2^-32 chance of a false failure");
        let c = SynCookies::with_key(KEY);
        let seen: HashSet<u32> = (40000..41000)
            .map(|port| {
                c.generate(now, LOCAL(), addr(1, port), CLIENT_ISN, Some(1460))
                    .0
            })
            .collect();
        assert_eq!(seen.len(), 1000);
        // The MSS bits are not visible: the cookie's low two bits vary even
        // though every SYN offered the same MSS.
        assert_eq!(
            seen.iter().map(|s| s & 0b11).collect::<HashSet<_>>().len(),
            4
        );
    }

    #[test]
    fn forged_acks_rarely_pass() {
        // A blind attacker's guesses: out of 100,000 sequential cookies for
        // one tuple, the expected number of passes is 100,000 * 2^-29.
        let c = SynCookies::with_key(KEY);
        let now = Instant::from_millis(5);
        let seq = CLIENT_ISN + 1;
        let passed = (0..100_000u32)
            .filter(|&g| c.check(now, LOCAL(), REMOTE(), seq, SeqNumber(g)).is_some())
            .count();
        assert_eq!(passed, 0);
    }
}
