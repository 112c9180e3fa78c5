//! Path MTU cache (RFC 1191 for IPv4, RFC 8201 for IPv6), sans-IO.
//!
//! A [`PathMtu`] remembers, per destination address, an MTU lower than
//! the link's that an ICMP "Fragmentation Needed and DF set" (type 3,
//! code 4, RFC 1191 §4) or an ICMPv6 Packet Too Big (RFC 4443 §3.2)
//! reported for the path, and when it learned it. [`PathMtu::mtu`] answers
//! the MTU to send with; [`PathMtu::learn`] (or, for IPv4 with the quoted
//! datagram at hand, [`PathMtu::learn_frag_needed`]) records a report and
//! says when the estimate went down, so the caller can send smaller
//! segments (lower the TCP MSS it sends with, RFC 9293 §3.7.2). It reads
//! no clock and no packet: time, the reported MTU and the link MTU are
//! arguments.
//!
//! RFCs to read: 1191 (PMTUD for IPv4), 8201 (PMTUD for IPv6), 4443 §3.2
//! (Packet Too Big), 791 (the 68-byte minimum), 8200 §5 (the 1280-byte
//! minimum), 5927 (ICMP attacks against TCP).
//!
//! The rules:
//!
//! - A report never raises the estimate (RFC 1191 §3, RFC 8201 §4: "A
//!   node MUST NOT increase its estimate of the Path MTU in response to the
//!   contents of a Packet Too Big message"). A report equal to the
//!   estimate changes nothing but restarts its timeout: a Packet Too Big
//!   was received for the path, and RFC 8201 §4 counts the wait before
//!   trying larger packets from that.
//! - IPv6: a reported MTU below 1280 (the minimum link MTU, RFC 8200 §5)
//!   is discarded, not clamped: RFC 8201 §4 "If a node receives a Packet
//!   Too Big message reporting a next-hop MTU that is less than the IPv6
//!   minimum link MTU, it must discard it" (RFC 1981 used to lower to
//!   1280 and add a fragment header; RFC 8021 ended atomic fragments,
//!   and Linux discards since 4a65dff81a04). So the estimate never goes
//!   below 1280.
//! - IPv4: a Next-Hop MTU of 0 comes from a router older than RFC 1191;
//!   the estimate is then the largest plateau (RFC 1191 §5, table 7-1 of §7,
//!   [`PLATEAUS`]) below the original datagram's total length
//!   ([`PathMtu::learn_frag_needed`]) or, without it, below the current
//!   estimate ([`PathMtu::learn`]). The estimate never goes below
//!   [`IPV4_MIN_PMTU`], 552 bytes, Linux's default `min_pmtu`: RFC 1191
//!   §3 only forbids going below 68 (RFC 791), but a forged or confused
//!   report of 68 would make every TCP segment carry 28 bytes; a path
//!   that truly carries less than 552 then needs the caller to clear DF
//!   and let routers fragment, as Linux does for a path whose MTU was
//!   clamped ("locked").
//! - An estimate expires [`PMTU_TIMEOUT`] (10 minutes) after the report
//!   that set it, and the link MTU is used again (RFC 1191 §6.3, RFC 8201
//!   §4: try a larger MTU no sooner than 5 minutes after a report, 10
//!   recommended). If the path is still narrow the next report lowers it
//!   again.
//! - Entries are per destination address, so IPv4 and IPv6 addresses of
//!   one host have separate entries (they are separate paths). The caller
//!   passes the address it sends to; an IPv4-mapped IPv6 address is a
//!   different key from the IPv4 address.
//!
//! Validation is the caller's job: a report is only acted on after the
//! caller has checked that the quoted packet was ours (RFC 5927 §4.1, §7:
//! for TCP the quoted 4-tuple names a connection and the quoted sequence
//! number lies in SND.UNA..SND.NXT; for UDP the quoted ports name a socket
//! of ours). This module trusts the numbers it is given and only bounds
//! what they can cost.
//!
//! DoS warning: at most [`MAX_DESTINATIONS`] entries (1024) are held; a
//! report for a new destination when the cache is full first drops the
//! expired entries, then the oldest one. A flood of reports for distinct
//! destinations, forged or not, cycles the cache but never grows it, and
//! each report costs O(log n).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::time::Instant;

/// How long a learned MTU holds before the link MTU is tried again.
/// RFC 8201 §4: an attempt to detect an increase "MUST NOT be done less
/// than 5 minutes after a Packet Too Big message has been received ...
/// The recommended setting for this timer is twice its minimum value (10
/// minutes)"; RFC 1191 §6.3 suggests the same 10 minutes.
pub const PMTU_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The most destinations a [`PathMtu`] holds (DoS bound). Each entry
/// costs a map slot and an index node, under 100 bytes, so the whole
/// cache stays under about 100 KiB.
pub const MAX_DESTINATIONS: usize = 1024;

/// The smallest IPv6 path MTU: every IPv6 link carries 1280 bytes (RFC
/// 8200 §5), and RFC 8201 §4 never lowers the estimate below it.
pub const IPV6_MIN_PMTU: usize = crate::wire::ipv6::MIN_MTU;

/// The smallest IPv4 path MTU we lower to: Linux's default
/// `net.ipv4.route.min_pmtu` (512 + 20 + 20). RFC 1191 §3 only forbids
/// going below 68 (RFC 791, [`crate::config::MIN_MTU`]); see the module
/// doc for why we stop higher.
pub const IPV4_MIN_PMTU: usize = 552;

// The floor honours RFC 791: never below 68.
const _: () = assert!(IPV4_MIN_PMTU >= crate::config::MIN_MTU);

/// RFC 1191 §7, table 7-1: the MTU plateaus, largest first. With a
/// Next-Hop MTU of 0 the estimate is the largest plateau below the
/// length that did not fit.
pub const PLATEAUS: [usize; 11] = [
    65535, // Official maximum MTU, Hyperchannel (RFC 791, RFC 1044)
    32000, // Just in case
    17914, // 16Mb IBM Token Ring
    8166,  // IEEE 802.4 (RFC 1042)
    4352,  // FDDI (RFC 1188)
    2002,  // IEEE 802.5, 4Mb recommended (RFC 1042)
    1492,  // IEEE 802.3 (RFC 1042), below Ethernet's 1500
    1006,  // SLIP (RFC 1055), ARPANET
    508,   // IEEE 802/Source-Rt Bridge, ARCNET (RFC 1042, RFC 1051)
    296,   // Point-to-Point, low delay (RFC 1144)
    68,    // Official minimum MTU (RFC 791)
];

/// The largest plateau of RFC 1191 table 7-1 strictly below `len`, or 68 (the
/// smallest) when none is: the guess for a path whose router reported a
/// Next-Hop MTU of 0 after a datagram of `len` bytes did not fit.
pub fn plateau_below(len: usize) -> usize {
    PLATEAUS.iter().copied().find(|&p| p < len).unwrap_or(68)
}

/// The path MTU an ICMP Fragmentation Needed (RFC 1191 §4) reports:
/// `next_hop_mtu` from the message and `original_len`, the total length
/// of the quoted datagram. A Next-Hop MTU of 0 (a router older than RFC
/// 1191) gives the plateau below `original_len` (RFC 1191 §5, table 7-1
/// of §7). So does a Next-Hop MTU not below the length that did not fit:
/// the router is confused (the datagram was too big, so the path carries
/// less), a judgement of ours, as older Linux made in `guess_mtu`. The
/// floor is not applied here.
pub fn frag_needed_estimate(next_hop_mtu: u16, original_len: u16) -> usize {
    let (mtu, len) = (usize::from(next_hop_mtu), usize::from(original_len));
    if mtu == 0 || mtu >= len {
        plateau_below(len)
    } else {
        mtu
    }
}

/// Per-destination path MTU estimates, each lower than the link MTU and
/// valid for [`PMTU_TIMEOUT`] after it was learned. See the module doc
/// for the rules and the bound.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use stack::pmtu::{PathMtu, PMTU_TIMEOUT};
/// use stack::time::Instant;
///
/// let mut pmtu = PathMtu::new();
/// let (dst, link) = (Ipv4Addr::new(192, 0, 2, 7), 1500);
/// let now = Instant::from_millis(1_000);
/// // A Fragmentation Needed the caller matched to one of its segments.
/// assert_eq!(pmtu.learn_frag_needed(dst, 1400, 1500, now, link), Some(1400));
/// // 1400 less 40 bytes of IPv4 and TCP headers: the MSS to send with.
/// assert_eq!(pmtu.mtu(IpAddr::V4(dst), now, link) - 40, 1360);
/// // Ten minutes on, the link MTU is tried again.
/// assert_eq!(pmtu.mtu(IpAddr::V4(dst), now + PMTU_TIMEOUT, link), 1500);
/// ```
#[derive(Debug, Clone)]
pub struct PathMtu {
    /// The estimate per destination. Destinations come from packets
    /// peers can forge (the quoted header of an ICMP error), so the map
    /// keeps std's SipHash against hash-collision floods.
    entries: HashMap<IpAddr, Entry>,
    /// The same entries by the time they were learned, oldest first: the
    /// order of expiry and of eviction.
    by_age: BTreeSet<(Instant, IpAddr)>,
    max_entries: usize,
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    mtu: usize,
    learned: Instant,
}

impl PathMtu {
    /// An empty cache with the default bounds: [`MAX_DESTINATIONS`]
    /// entries, each valid for [`PMTU_TIMEOUT`].
    pub fn new() -> PathMtu {
        PathMtu::with_limits(MAX_DESTINATIONS, PMTU_TIMEOUT)
    }

    /// An empty cache holding at most `max_entries` destinations (at
    /// least one), each valid for `timeout`.
    pub fn with_limits(max_entries: usize, timeout: Duration) -> PathMtu {
        PathMtu {
            entries: HashMap::new(),
            by_age: BTreeSet::new(),
            max_entries: max_entries.max(1),
            timeout,
        }
    }

    /// The MTU to send to `dst` with: `link_mtu`, unless a lower estimate
    /// was learned for `dst` less than the timeout before `now`.
    pub fn mtu(&self, dst: IpAddr, now: Instant, link_mtu: usize) -> usize {
        match self.entries.get(&dst) {
            Some(e) if !self.expired(e, now) => e.mtu.min(link_mtu),
            _ => link_mtu,
        }
    }

    /// Records a report, already validated by the caller (module doc),
    /// that a packet to `dst` was too big for a link that carries
    /// `reported` bytes: the ICMPv6 Packet Too Big MTU field (RFC 4443
    /// §3.2) for an IPv6 `dst`, the Next-Hop MTU (RFC 1191 §4) for an
    /// IPv4 one. For IPv4, 0 (a router older than RFC 1191) estimates the
    /// plateau below the current estimate; prefer
    /// [`PathMtu::learn_frag_needed`], which knows the length that did
    /// not fit.
    ///
    /// Returns the new MTU for `dst` when the estimate went down, so the
    /// caller can send smaller segments; `None` when the report was
    /// discarded or did not lower the estimate.
    pub fn learn(
        &mut self,
        dst: IpAddr,
        reported: usize,
        now: Instant,
        link_mtu: usize,
    ) -> Option<usize> {
        let current = self.mtu(dst, now, link_mtu);
        let estimate = match dst {
            IpAddr::V6(_) => {
                // RFC 8201 §4: below the minimum link MTU, discard.
                if reported < IPV6_MIN_PMTU {
                    return None;
                }
                reported
            }
            IpAddr::V4(_) => {
                // RFC 1191 §5: no Next-Hop MTU, guess from what we send.
                let guess = if reported == 0 {
                    plateau_below(current)
                } else {
                    reported
                };
                guess.max(IPV4_MIN_PMTU)
            }
        };
        self.lower(dst, current, estimate, now)
    }

    /// [`PathMtu::learn`] for an ICMP Fragmentation Needed and DF set
    /// (type 3, code 4) to `dst`, with its `next_hop_mtu` and the total
    /// length of the quoted datagram, `original_len`: a Next-Hop MTU of 0
    /// estimates the RFC 1191 §5 plateau below `original_len`
    /// ([`frag_needed_estimate`]).
    pub fn learn_frag_needed(
        &mut self,
        dst: Ipv4Addr,
        next_hop_mtu: u16,
        original_len: u16,
        now: Instant,
        link_mtu: usize,
    ) -> Option<usize> {
        let dst = IpAddr::V4(dst);
        let current = self.mtu(dst, now, link_mtu);
        let estimate = frag_needed_estimate(next_hop_mtu, original_len).max(IPV4_MIN_PMTU);
        self.lower(dst, current, estimate, now)
    }

    /// Drops the entries expired at `now`; returns how many. Optional:
    /// [`PathMtu::mtu`] ignores expired entries and a report replaces
    /// them, but dropping them keeps [`PathMtu::len`] honest.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(&(learned, dst)) = self.by_age.first() {
            if now.saturating_duration_since(learned) < self.timeout {
                break;
            }
            self.by_age.pop_first();
            self.entries.remove(&dst);
            dropped += 1;
        }
        dropped
    }

    /// How many destinations have an entry, expired ones included until
    /// [`PathMtu::expire`] or a report drops them.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most destinations this cache holds.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn expired(&self, e: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(e.learned) >= self.timeout
    }

    /// Sets `dst`'s estimate to `estimate` if it is below `current` (the
    /// estimate in force); an equal one restarts the timeout (module
    /// doc). Returns the new MTU when it went down.
    fn lower(
        &mut self,
        dst: IpAddr,
        current: usize,
        estimate: usize,
        now: Instant,
    ) -> Option<usize> {
        // RFC 1191 §3, RFC 8201 §4: never increase on a report.
        if estimate > current {
            return None;
        }
        self.expire(now);
        let has_entry = self.entries.contains_key(&dst);
        if estimate == current && !has_entry {
            // Equal to the link MTU: nothing to remember.
            return None;
        }
        if !has_entry && self.entries.len() >= self.max_entries {
            // Full even without the expired entries: the oldest goes.
            if let Some((_, oldest)) = self.by_age.pop_first() {
                self.entries.remove(&oldest);
            }
        }
        let entry = Entry {
            mtu: estimate,
            learned: now,
        };
        if let Some(old) = self.entries.insert(dst, entry) {
            self.by_age.remove(&(old.learned, dst));
        }
        self.by_age.insert((now, dst));
        (estimate < current).then_some(estimate)
    }
}

impl Default for PathMtu {
    fn default() -> Self {
        PathMtu::new()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use proptest::prelude::*;

    use super::*;

    const LINK: usize = 1500;
    const T0: Instant = Instant::from_millis(1_000);

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn v6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
    }

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    // ---- Lowering and never raising (RFC 1191 §3, RFC 8201 §4) ----

    #[test]
    fn test_unknown_destination_uses_link_mtu() {
        let p = PathMtu::new();
        assert_eq!(p.mtu(v4(1), T0, LINK), LINK);
        assert_eq!(p.mtu(v6(1), T0, LINK), LINK);
        assert!(p.is_empty());
    }

    #[test]
    fn test_report_lowers_estimate_and_says_so() {
        let mut p = PathMtu::new();
        assert_eq!(p.learn(v4(1), 1400, T0, LINK), Some(1400));
        assert_eq!(p.mtu(v4(1), T0, LINK), 1400);
        assert_eq!(p.learn(v6(1), 1400, T0, LINK), Some(1400));
        assert_eq!(p.mtu(v6(1), T0, LINK), 1400);
        // A second, lower report lowers again.
        assert_eq!(p.learn(v4(1), 1200, at(T0, 1), LINK), Some(1200));
        assert_eq!(p.mtu(v4(1), at(T0, 1), LINK), 1200);
        // Other destinations are untouched.
        assert_eq!(p.mtu(v4(2), T0, LINK), LINK);
    }

    #[test]
    fn test_report_never_raises_estimate() {
        let mut p = PathMtu::new();
        assert_eq!(p.learn(v4(1), 1200, T0, LINK), Some(1200));
        assert_eq!(p.learn(v4(1), 1400, at(T0, 1), LINK), None);
        assert_eq!(p.mtu(v4(1), at(T0, 1), LINK), 1200);
        assert_eq!(p.learn(v6(1), 1300, T0, LINK), Some(1300));
        assert_eq!(p.learn(v6(1), 9000, at(T0, 1), LINK), None);
        assert_eq!(p.mtu(v6(1), at(T0, 1), LINK), 1300);
    }

    #[test]
    fn test_report_at_or_above_link_mtu_is_not_stored() {
        let mut p = PathMtu::new();
        assert_eq!(p.learn(v4(1), LINK, T0, LINK), None);
        assert_eq!(p.learn(v6(1), 9000, T0, LINK), None);
        assert!(p.is_empty());
    }

    #[test]
    fn test_equal_report_restarts_timeout_without_change() {
        let mut p = PathMtu::new();
        p.learn(v4(1), 1400, T0, LINK);
        let later = at(T0, 9 * 60);
        assert_eq!(p.learn(v4(1), 1400, later, LINK), None);
        // Ten minutes after the first report, but not after the second.
        assert_eq!(p.mtu(v4(1), at(T0, 10 * 60), LINK), 1400);
        assert_eq!(p.mtu(v4(1), later + PMTU_TIMEOUT, LINK), LINK);
    }

    #[test]
    fn test_smaller_link_mtu_caps_estimate() {
        let mut p = PathMtu::new();
        p.learn(v4(1), 1400, T0, LINK);
        assert_eq!(p.mtu(v4(1), T0, 1000), 1000);
    }

    // ---- IPv6: the 1280-byte minimum (RFC 8200 §5, RFC 8201 §4) ----

    #[test]
    fn test_v6_report_below_1280_is_discarded() {
        let mut p = PathMtu::new();
        assert_eq!(p.learn(v6(1), 1279, T0, LINK), None);
        assert_eq!(p.learn(v6(1), 576, T0, LINK), None);
        assert_eq!(p.learn(v6(1), 0, T0, LINK), None);
        assert_eq!(p.mtu(v6(1), T0, LINK), LINK);
        assert!(p.is_empty());
    }

    #[test]
    fn test_v6_estimate_stops_at_1280() {
        let mut p = PathMtu::new();
        assert_eq!(p.learn(v6(1), 1280, T0, LINK), Some(1280));
        assert_eq!(p.learn(v6(1), 1000, at(T0, 1), LINK), None);
        assert_eq!(p.mtu(v6(1), at(T0, 1), LINK), IPV6_MIN_PMTU);
    }

    // ---- IPv4: floor and plateaus (RFC 791, RFC 1191 §3, §5, §7) ----

    #[test]
    fn test_v4_report_is_floored_at_min_pmtu() {
        let mut p = PathMtu::new();
        assert_eq!(p.learn(v4(1), 68, T0, LINK), Some(IPV4_MIN_PMTU));
        assert_eq!(p.mtu(v4(1), T0, LINK), 552);
        // At the floor, lower reports change nothing.
        assert_eq!(p.learn(v4(1), 100, at(T0, 1), LINK), None);
        assert_eq!(p.learn(v4(2), 1, T0, LINK), Some(552));
    }

    #[test]
    fn test_v4_floor_never_raises_small_link() {
        // A link narrower than the floor stays the limit.
        let mut p = PathMtu::new();
        assert_eq!(p.learn(v4(1), 68, T0, 400), None);
        assert_eq!(p.mtu(v4(1), T0, 400), 400);
        assert_eq!(p.mtu(v4(1), T0, crate::config::MIN_MTU), 68);
    }

    #[test]
    fn test_plateau_below_follows_rfc1191_table() {
        assert_eq!(plateau_below(1500), 1492);
        assert_eq!(plateau_below(1492), 1006);
        assert_eq!(plateau_below(1493), 1492);
        assert_eq!(plateau_below(65535), 32000);
        assert_eq!(plateau_below(usize::MAX), 65535);
        assert_eq!(plateau_below(576), 508);
        assert_eq!(plateau_below(69), 68);
        assert_eq!(plateau_below(68), 68);
        assert_eq!(plateau_below(0), 68);
    }

    #[test]
    fn test_frag_needed_with_zero_mtu_uses_plateau_of_original_len() {
        let mut p = PathMtu::new();
        let dst = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(p.learn_frag_needed(dst, 0, 1500, T0, LINK), Some(1492));
        assert_eq!(
            p.learn_frag_needed(dst, 0, 1492, at(T0, 1), LINK),
            Some(1006)
        );
        // Below 1006 the next plateau (508) is under the floor.
        assert_eq!(
            p.learn_frag_needed(dst, 0, 1006, at(T0, 2), LINK),
            Some(552)
        );
        // A small original datagram says nothing new either.
        let other = Ipv4Addr::new(192, 0, 2, 2);
        assert_eq!(p.learn_frag_needed(other, 0, 0, T0, LINK), Some(552));
    }

    #[test]
    fn test_frag_needed_with_mtu_uses_it() {
        let mut p = PathMtu::new();
        let dst = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(p.learn_frag_needed(dst, 1400, 1500, T0, LINK), Some(1400));
        assert_eq!(frag_needed_estimate(1400, 1500), 1400);
    }

    #[test]
    fn test_frag_needed_with_mtu_not_below_original_len_uses_plateau() {
        // The datagram did not fit, so a Next-Hop MTU at least its length
        // is wrong: treated like 0, the plateau below the length.
        assert_eq!(frag_needed_estimate(1500, 1500), 1492);
        assert_eq!(frag_needed_estimate(9000, 1500), 1492);
    }

    #[test]
    fn test_v4_learn_with_zero_uses_plateau_of_current_estimate() {
        let mut p = PathMtu::new();
        assert_eq!(p.learn(v4(1), 0, T0, LINK), Some(1492));
        assert_eq!(p.learn(v4(1), 0, at(T0, 1), LINK), Some(1006));
        assert_eq!(p.learn(v4(1), 0, at(T0, 2), LINK), Some(552));
        assert_eq!(p.learn(v4(1), 0, at(T0, 3), LINK), None);
    }

    // ---- Expiry (RFC 1191 §6.3, RFC 8201 §4) ----

    #[test]
    fn test_estimate_holds_until_just_before_timeout() {
        let mut p = PathMtu::new();
        p.learn(v4(1), 1400, T0, LINK);
        let just_before = T0 + (PMTU_TIMEOUT - Duration::from_micros(1));
        assert_eq!(p.mtu(v4(1), just_before, LINK), 1400);
    }

    #[test]
    fn test_estimate_expires_at_timeout() {
        let mut p = PathMtu::new();
        p.learn(v4(1), 1400, T0, LINK);
        p.learn(v6(1), 1400, T0, LINK);
        assert_eq!(PMTU_TIMEOUT, Duration::from_secs(600));
        assert_eq!(p.mtu(v4(1), T0 + PMTU_TIMEOUT, LINK), LINK);
        assert_eq!(p.mtu(v6(1), T0 + PMTU_TIMEOUT, LINK), LINK);
        assert_eq!(p.expire(T0 + PMTU_TIMEOUT), 2);
        assert!(p.is_empty());
    }

    #[test]
    fn test_report_after_expiry_lowers_from_link_mtu() {
        let mut p = PathMtu::new();
        p.learn(v4(1), 1200, T0, LINK);
        let later = T0 + PMTU_TIMEOUT;
        // 1400 is above the old estimate but below the link MTU again.
        assert_eq!(p.learn(v4(1), 1400, later, LINK), Some(1400));
        assert_eq!(p.mtu(v4(1), later, LINK), 1400);
    }

    #[test]
    fn test_time_going_backwards_does_not_panic_or_expire() {
        let mut p = PathMtu::new();
        p.learn(v4(1), 1400, at(T0, 100), LINK);
        assert_eq!(p.mtu(v4(1), T0, LINK), 1400);
        assert_eq!(p.expire(Instant::ZERO), 0);
    }

    // ---- Families and bounds ----

    #[test]
    fn test_v4_and_v6_entries_are_separate() {
        let mut p = PathMtu::new();
        let a4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(p.learn(a4, 1000, T0, LINK), Some(1000));
        assert_eq!(p.mtu(mapped, T0, LINK), LINK);
        assert_eq!(p.learn(mapped, 1300, T0, LINK), Some(1300));
        assert_eq!(p.mtu(a4, T0, LINK), 1000);
        assert_eq!(p.mtu(mapped, T0, LINK), 1300);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn test_flood_of_distinct_destinations_stays_bounded() {
        let mut p = PathMtu::new();
        for i in 0..(4 * MAX_DESTINATIONS as u32) {
            let dst = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let now = T0 + Duration::from_millis(u64::from(i));
            assert_eq!(p.learn(dst, 1400, now, LINK), Some(1400));
            assert!(p.len() <= MAX_DESTINATIONS);
        }
        assert_eq!(p.len(), MAX_DESTINATIONS);
        // The newest survive; the oldest were evicted.
        let now = T0 + Duration::from_secs(10);
        let newest = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 4 * 1024 - 1));
        assert_eq!(p.mtu(newest, now, LINK), 1400);
        assert_eq!(
            p.mtu(IpAddr::V4(Ipv4Addr::from(0x0a00_0000)), now, LINK),
            LINK
        );
    }

    #[test]
    fn test_full_cache_drops_expired_before_oldest_live() {
        let mut p = PathMtu::with_limits(2, PMTU_TIMEOUT);
        p.learn(v4(1), 1400, T0, LINK);
        p.learn(v4(2), 1400, at(T0, 599), LINK);
        // v4(1) has expired at T0 + 600 s: it goes, v4(2) stays.
        p.learn(v4(3), 1400, at(T0, 600), LINK);
        assert_eq!(p.len(), 2);
        assert_eq!(p.mtu(v4(2), at(T0, 600), LINK), 1400);
        assert_eq!(p.mtu(v4(3), at(T0, 600), LINK), 1400);
        // Both live: the oldest (v4(2)) gives way.
        p.learn(v4(4), 1400, at(T0, 601), LINK);
        assert_eq!(p.mtu(v4(2), at(T0, 601), LINK), LINK);
        assert_eq!(p.mtu(v4(3), at(T0, 601), LINK), 1400);
        assert_eq!(p.mtu(v4(4), at(T0, 601), LINK), 1400);
    }

    #[test]
    fn test_relearning_a_destination_does_not_evict() {
        let mut p = PathMtu::with_limits(2, PMTU_TIMEOUT);
        p.learn(v4(1), 1400, T0, LINK);
        p.learn(v4(2), 1400, T0, LINK);
        assert_eq!(p.learn(v4(1), 1300, at(T0, 1), LINK), Some(1300));
        assert_eq!(p.len(), 2);
        assert_eq!(p.mtu(v4(2), at(T0, 1), LINK), 1400);
    }

    // ---- Properties ----

    /// One step of a random run: a report for one of a few destinations,
    /// after some time passes.
    #[derive(Debug, Clone)]
    struct Step {
        dst: IpAddr,
        reported: usize,
        advance: Duration,
    }

    fn step() -> impl Strategy<Value = Step> {
        let dst = prop_oneof![(0u8..6).prop_map(v4), (0u16..6).prop_map(v6),];
        let reported = prop_oneof![0usize..2000, Just(0), Just(1280), Just(9000)];
        let advance = prop_oneof![
            (0u64..120).prop_map(Duration::from_secs),
            Just(PMTU_TIMEOUT),
        ];
        (dst, reported, advance).prop_map(|(dst, reported, advance)| Step {
            dst,
            reported,
            advance,
        })
    }

    proptest! {
        /// The cache agrees with a model that keeps every report: the
        /// estimate is the link MTU or the last lowering report, floored
        /// by family, and expires after the timeout.
        #[test]
        fn prop_matches_model(steps in proptest::collection::vec(step(), 0..200)) {
            let mut p = PathMtu::new();
            let mut model: HashMap<IpAddr, (usize, Instant)> = HashMap::new();
            let mut now = T0;
            for s in steps {
                now += s.advance;
                let current = match model.get(&s.dst) {
                    Some(&(mtu, learned)) if now - learned < PMTU_TIMEOUT => mtu,
                    _ => LINK,
                };
                let estimate = match s.dst {
                    IpAddr::V6(_) if s.reported < 1280 => None,
                    IpAddr::V6(_) => Some(s.reported),
                    IpAddr::V4(_) if s.reported == 0 => Some(plateau_below(current).max(552)),
                    IpAddr::V4(_) => Some(s.reported.max(552)),
                };
                let want = match estimate {
                    Some(e) if e < current => {
                        model.insert(s.dst, (e, now));
                        Some(e)
                    }
                    Some(e) if e == current && current < LINK => {
                        model.insert(s.dst, (e, now));
                        None
                    }
                    _ => None,
                };
                prop_assert_eq!(p.learn(s.dst, s.reported, now, LINK), want);
                for (&dst, &(mtu, learned)) in &model {
                    let want = if now - learned < PMTU_TIMEOUT { mtu } else { LINK };
                    prop_assert_eq!(p.mtu(dst, now, LINK), want);
                }
            }
        }

        /// Whatever the reports, the estimate stays within the family's
        /// floor and the link MTU, and the cache within its bound.
        #[test]
        fn prop_bounded_and_floored(
            reports in proptest::collection::vec((any::<u32>(), any::<bool>(), 0usize..70_000, 0u64..1000), 0..300),
            link in 1280usize..9001,
        ) {
            let mut p = PathMtu::with_limits(16, PMTU_TIMEOUT);
            let mut now = T0;
            for (addr, is_v6, reported, advance) in reports {
                now += Duration::from_secs(advance);
                let dst = if is_v6 {
                    IpAddr::V6(Ipv6Addr::from(u128::from(addr)))
                } else {
                    IpAddr::V4(Ipv4Addr::from(addr))
                };
                let before = p.mtu(dst, now, link);
                let changed = p.learn(dst, reported, now, link);
                let after = p.mtu(dst, now, link);
                prop_assert!(after <= before);
                prop_assert_eq!(changed, (after < before).then_some(after));
                let floor = if is_v6 { IPV6_MIN_PMTU } else { IPV4_MIN_PMTU };
                prop_assert!(after >= floor && after <= link);
                prop_assert!(p.len() <= 16);
                prop_assert_eq!(p.len(), p.by_age.len());
            }
        }
    }
}
