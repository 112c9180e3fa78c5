//! Arriving IPv4 fragments: the runtime side of `crate::reassembly`.
//!
//! The RX thread hands every fragment addressed to us to
//! [`on_fragment`], which feeds the stack's one [`Reassembler`] and gives
//! back the whole datagram once its last missing fragment arrives; the RX
//! path then takes it as any unfragmented packet. The reassembler's
//! timeout is a deadline in the timer heap (`timers`), armed as a
//! socket's is: when it fires, [`expire`] drops what timed out and sends
//! ICMP Time Exceeded (fragment reassembly, RFC 792; RFC 1122 §3.3.2) for
//! each datagram whose first fragment had arrived, under the ICMP error
//! rate limit. Every outcome is counted (`ip_frag_received`,
//! `ip_reassembled`, `ip_reasm_*`, `icmp_time_exceeded_tx`).
//!
//! Lock order: the reassembler's lock is taken last; under it only the
//! timer heap's lock is taken (to arm the deadline). Packets are sent
//! after it is released.

use parking_lot::Mutex;

use crate::config::Config;
use crate::icmp;
use crate::reassembly::{Expired, FragKey, Fragment, Limits, Outcome, Reassembler};
use crate::stats::bump;
use crate::time::Instant;
use crate::wire::ipv4::{self, Ipv4Frag, Ipv4Repr};

use super::{tx, Inner};

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
    pub(crate) fn new(config: &Config) -> Reasm {
        Reasm {
            state: Mutex::new(State {
                reassembler: Reassembler::new(Limits {
                    max_datagrams: config.reassembly_max_datagrams,
                    max_bytes: config.reassembly_max_bytes,
                    timeout: config.reassembly_timeout,
                    max_len: ipv4::MAX_PACKET_LEN,
                    min_head: ipv4::HEADER_LEN,
                }),
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
    let reasm = &inner.reasm;
    if !reasm.on {
        bump(&inner.stats.drop_fragmented);
        return None;
    }
    bump(&inner.stats.ip_frag_received);
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
    let mut st = reasm.state.lock();
    let inserted = st.reassembler.insert(now, key, fragment);
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
        Outcome::Complete(mut datagram) => {
            if ipv4::finish_reassembled(&mut datagram.bytes, datagram.head_len).is_err() {
                bump(&inner.stats.ip_reasm_invalid);
                return None;
            }
            bump(&inner.stats.ip_reassembled);
            Some(datagram.bytes)
        }
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
        let (FragKey::V4 { src, dst, .. }, Some(quote)) = (e.key, e.quote) else {
            continue;
        };
        // RFC 1122 §3.3.2: "if the timer runs out, [..] if fragment zero
        // has been received, send ICMP Time Exceeded (code 1)".
        if inner.icmp_limit.lock().allow(now) {
            bump(&inner.stats.icmp_time_exceeded_tx);
            tx::send_icmp(inner, dst, src, &icmp::reassembly_time_exceeded(&quote));
        } else {
            bump(&inner.stats.icmp_rate_limited);
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
