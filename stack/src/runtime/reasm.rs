//! Arriving IPv4 and IPv6 fragments: the runtime side of
//! `crate::reassembly`.
//!
//! The RX thread hands every fragment addressed to us to
//! [`on_fragment`] (IPv4) or [`on_fragment6`] (IPv6), which feed the
//! stack's one [`Reassembler`] (both families share its bounds) and give
//! back the whole datagram once its last missing fragment arrives; the RX
//! path then takes it as any unfragmented packet. The reassembler's
//! timeout is a deadline in the timer heap (`timers`), armed as a
//! socket's is: when it fires, [`expire`] drops what timed out and sends
//! ICMP Time Exceeded (fragment reassembly, RFC 792; RFC 1122 §3.3.2) or
//! ICMPv6 Time Exceeded code 1 (RFC 8200 §4.5) for each datagram whose
//! first fragment had arrived, under the ICMP error rate limit. Every
//! outcome is counted, for both families in the same counters
//! (`ip_frag_received`, `ip_reassembled`, `ip_reasm_*`,
//! `icmp_time_exceeded_tx`).
//!
//! The bytes held under reassembly are charged to the stack's memory
//! budget, the pool TCP's receive storage is charged to
//! (`Config::memory_budget`), within the reassembler's own cap
//! (`Config::reassembly_max_bytes`); see `crate::reassembly`.
//!
//! Lock order: the reassembler's lock is taken last; under it only the
//! timer heap's lock is taken (to arm the deadline). Packets are sent
//! after it is released.

use parking_lot::Mutex;

use crate::config::{Config, REASSEMBLY_TIMEOUT_V6};
use crate::icmp;
use crate::reassembly::{
    Datagram, Expired, FragKey, Fragment, Limits, Outcome, Reassembler, Rules,
};
use crate::stats::bump;
use crate::time::Instant;
use crate::wire::icmpv6::{time_exceeded_code, Icmpv6Repr};
use crate::wire::ipv4::{self, Ipv4Frag, Ipv4Repr};
use crate::wire::ipv6::{self, FragmentInfo, Ipv6Repr};

use super::{rx6, tx, Inner};

/// IPv6 datagrams' rules (RFC 8200 §4.5): 60 s, and a head of the fixed
/// header, any unfragmentable extension headers and the fragment header.
const RULES_V6: Rules = Rules {
    timeout: REASSEMBLY_TIMEOUT_V6,
    max_len: ipv6::MAX_REASSEMBLED_LEN,
    min_head: ipv6::HEADER_LEN + ipv6::FRAGMENT_HEADER_LEN,
};

/// The reassembler, and the deadline armed in the timer heap for it.
pub(crate) struct Reasm {
    state: Mutex<State>,
    /// `Config::reassembly_max_datagrams` is not 0.
    on: bool,
}

struct State {
    reassembler: Reassembler<FragKey>,
    /// The earliest deadline pushed to the timer heap and not fired yet.
    armed: Option<Instant>,
}

impl Reasm {
    /// The reassembler of a stack whose `config.tcp.memory` is already
    /// the stack's one budget: fragments are charged to it too.
    pub(crate) fn new(config: &Config) -> Reasm {
        let limits = Limits {
            max_datagrams: config.reassembly_max_datagrams,
            max_bytes: config.reassembly_max_bytes,
            timeout: config.reassembly_timeout,
            max_len: ipv4::MAX_PACKET_LEN,
            min_head: ipv4::HEADER_LEN,
        };
        Reasm {
            state: Mutex::new(State {
                reassembler: Reassembler::with_budget(limits, config.tcp.memory.clone()),
                armed: None,
            }),
            on: config.reassembly_max_datagrams > 0,
        }
    }

    /// Datagrams under reassembly and the bytes charged to them.
    #[cfg(test)]
    pub(crate) fn usage(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.reassembler.len(), st.reassembler.bytes())
    }
}

/// A fragment for us (`packet`, parsed into `ip`, `frag` and `payload`):
/// stored, and when it completes its datagram, that datagram as a whole
/// IPv4 packet, ready to be parsed again and handled as any other.
pub(crate) fn on_fragment(
    inner: &Inner,
    now: Instant,
    ip: &Ipv4Repr,
    frag: Ipv4Frag,
    packet: &[u8],
    payload: &[u8],
) -> Option<Vec<u8>> {
    let key = FragKey::V4 {
        src: ip.src,
        dst: ip.dst,
        protocol: ip.protocol,
        id: frag.id,
    };
    let fragment = Fragment {
        offset: frag.offset,
        more: frag.more,
        head: packet.get(..frag.header_len).unwrap_or(&[]),
        data: payload,
    };
    let mut datagram = insert(inner, now, key, None, fragment)?;
    if ipv4::finish_reassembled(&mut datagram.bytes, datagram.head_len).is_err() {
        bump(&inner.stats.ip_reasm_invalid);
        return None;
    }
    bump(&inner.stats.ip_reassembled);
    Some(datagram.bytes)
}

/// An IPv6 reassembled packet: the unfragmentable part of the first
/// fragment, then the reassembled fragmentable part (RFC 8200 §4.5).
pub(crate) struct Reassembled6 {
    /// The whole packet, as if never fragmented: no fragment header.
    pub(crate) packet: Vec<u8>,
    /// Where its parts are.
    pub(crate) parts: ipv6::Relinked,
}

/// An IPv6 fragment for us (`packet`, parsed into `ip`, `info` and its
/// fragment data `data`): stored under (source, destination,
/// identification), and when it completes its datagram, that datagram
/// rebuilt by RFC 8200 §4.5.
pub(crate) fn on_fragment6(
    inner: &Inner,
    now: Instant,
    ip: &Ipv6Repr,
    info: FragmentInfo,
    packet: &[u8],
    data: &[u8],
) -> Option<Reassembled6> {
    let key = FragKey::V6 {
        src: ip.src,
        dst: ip.dst,
        id: info.id,
    };
    // The data ends where the payload length says (bytes past it are
    // link padding); the head is everything before it up to and
    // including the fragment header.
    let end = packet
        .get(4..6)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        + ipv6::HEADER_LEN;
    let head_len = end.saturating_sub(data.len());
    let fragment = Fragment {
        offset: info.offset,
        more: info.more,
        head: packet.get(..head_len).unwrap_or(&[]),
        data,
    };
    let mut datagram = insert(inner, now, key, Some(RULES_V6), fragment)?;
    match ipv6::finish_reassembled(&mut datagram.bytes, datagram.head_len) {
        Ok(parts) => {
            bump(&inner.stats.ip_reassembled);
            Some(Reassembled6 {
                packet: datagram.bytes,
                parts,
            })
        }
        Err(_) => {
            bump(&inner.stats.ip_reasm_invalid);
            None
        }
    }
}

/// Feeds one fragment to the reassembler under `rules` (`None`: IPv4's,
/// from `Config`), counting what became of it; the datagram it completes.
fn insert(
    inner: &Inner,
    now: Instant,
    key: FragKey,
    rules: Option<Rules>,
    fragment: Fragment<'_>,
) -> Option<Datagram> {
    let reasm = &inner.reasm;
    if !reasm.on {
        bump(&inner.stats.drop_fragmented);
        return None;
    }
    bump(&inner.stats.ip_frag_received);
    let mut st = reasm.state.lock();
    let inserted = match rules {
        Some(rules) => st.reassembler.insert_with(now, key, rules, fragment),
        None => st.reassembler.insert(now, key, fragment),
    };
    arm(inner, &mut st, now);
    drop(st);
    for _ in 0..inserted.evicted {
        bump(&inner.stats.ip_reasm_evicted);
    }
    match inserted.outcome {
        Outcome::Pending | Outcome::Duplicate | Outcome::Discarded => None,
        Outcome::Overlap => {
            bump(&inner.stats.ip_reasm_overlap_dropped);
            None
        }
        Outcome::Invalid => {
            bump(&inner.stats.ip_reasm_invalid);
            None
        }
        Outcome::TooLarge => {
            bump(&inner.stats.ip_reasm_evicted);
            None
        }
        Outcome::NoMemory => {
            bump(&inner.stats.ip_reasm_memory_drops);
            None
        }
        Outcome::Complete(datagram) => Some(datagram),
    }
}

/// The reassembly deadline fired (or a driven stack polled): drops every
/// datagram that timed out by `now` and answers those whose first
/// fragment came with ICMP Time Exceeded. Re-arms the deadline.
pub(crate) fn expire(inner: &Inner, now: Instant, due: Instant) {
    let mut expired: Vec<Expired<FragKey>> = Vec::new();
    let mut st = inner.reasm.state.lock();
    if st.armed == Some(due) {
        st.armed = None;
    }
    st.reassembler.expire(now, |e| expired.push(e));
    arm(inner, &mut st, now);
    drop(st);
    for e in expired {
        bump(&inner.stats.ip_reasm_timeout);
        // RFC 1122 §3.3.2: "if the timer runs out, [..] if fragment zero
        // has been received, send ICMP Time Exceeded (code 1)"; RFC 8200
        // §4.5 the same for IPv6: "If the first fragment (i.e., the one
        // with a Fragment Offset of zero) has been received, an ICMP Time
        // Exceeded -- Fragment Reassembly Time Exceeded message should be
        // sent to the source of that fragment."
        let Some(quote) = e.quote else {
            continue;
        };
        if !inner.icmp_error_allowed(now, &inner.stats.icmp_time_exceeded_tx) {
            continue;
        }
        match e.key {
            FragKey::V4 { src, dst, .. } => {
                tx::send_icmp(inner, dst, src, &icmp::reassembly_time_exceeded(&quote));
            }
            FragKey::V6 { src, dst, .. } => {
                let msg = Icmpv6Repr::TimeExceeded {
                    code: time_exceeded_code::REASSEMBLY,
                    original: &quote,
                };
                rx6::send_icmp(inner, dst, src, &msg);
            }
        }
    }
}

/// Pushes the reassembler's next deadline to the timer heap unless an
/// earlier one, still to fire, is there.
fn arm(inner: &Inner, st: &mut State, now: Instant) {
    let Some(at) = st.reassembler.poll_timeout() else {
        return;
    };
    if st.armed.is_none_or(|armed| at < armed || armed <= now) {
        st.armed = Some(at);
        inner.timers.schedule_reassembly(at);
    }
}
