//! The options negotiated on the SYNs (RFC 9293 §3.7.1 MSS, RFC 7323
//! window scale and timestamps, RFC 2018 SACK-permitted), and the
//! per-segment state the timestamps option carries (TS.Recent,
//! Last.ACK.sent, RFC 7323 §4.3).

use std::time::Duration;

use crate::tcp::config::{TcpConfig, DEFAULT_PEER_MSS};
use crate::time::Instant;
use crate::wire::tcp::{TcpOptions, Timestamps};
use crate::wire::SeqNumber;

/// The smallest send MSS we accept from a peer's option. A peer announcing
/// less (even 0) gets this: Linux clamps the same way (`tcp_min_snd_mss`),
/// and a zero MSS would make us emit empty segments forever.
const MIN_SEND_MSS: usize = 64;

/// RTT samples from echoed timestamps above this are not believed (a
/// TSecr from before a clock jump or a bogus peer).
const MAX_TS_RTT_MS: u32 = 60_000;

/// What the two SYNs agreed on.
///
/// # Invariants
///
/// - `send_mss >= MIN_SEND_MSS`, and `payload_mss() >= 1`.
/// - `sack` and `timestamps` are on only if we offered them (config) and,
///   once the peer's SYN is in, only if it offered them too.
/// - TS.Recent only moves to the TSval of a segment at or below
///   Last.ACK.sent (RFC 7323 §4.3).
pub(super) struct Negotiated {
    /// Bytes of options plus payload per segment: min(peer MSS, our MSS,
    /// `path_cap`).
    send_mss: usize,
    /// What the path MTU allows (RFC 1191, RFC 8201), `usize::MAX` until
    /// a Packet Too Big or Fragmentation Needed says less.
    path_cap: usize,
    sack: bool,
    timestamps: bool,
    /// RFC 7323 §4.3 TS.Recent.
    ts_recent: u32,
    /// RCV.NXT in the last ACK we sent (RFC 7323 §4.3 Last.ACK.sent).
    last_ack_sent: SeqNumber,
}

impl Negotiated {
    /// Before any SYN: the RFC 9293 §3.7.1 default peer MSS, no options.
    pub(super) fn new(config: &TcpConfig) -> Negotiated {
        Negotiated {
            send_mss: usize::from(DEFAULT_PEER_MSS.min(config.mss)).max(MIN_SEND_MSS),
            path_cap: usize::MAX,
            sack: false,
            timestamps: false,
            ts_recent: 0,
            last_ack_sent: SeqNumber(0),
        }
    }

    /// Active open: our SYN offers what is configured.
    pub(super) fn offer(&mut self, config: &TcpConfig) {
        self.sack = config.sack;
        self.timestamps = config.timestamps;
    }

    /// Applies the options of the peer's SYN: MSS (RFC 9293 §3.7.1, 536 if
    /// absent), SACK-permitted and timestamps (only if both offered).
    /// Returns the window shifts (ours, the peer's): RFC 7323 §2.2, only if
    /// both SYNs carry the option.
    pub(super) fn peer_syn(&mut self, config: &TcpConfig, opts: &TcpOptions) -> (u8, u8) {
        let peer_mss = opts.mss.unwrap_or(DEFAULT_PEER_MSS);
        self.send_mss = usize::from(peer_mss.min(config.mss))
            .min(self.path_cap)
            .max(MIN_SEND_MSS);
        self.sack = config.sack && opts.sack_permitted;
        self.timestamps = config.timestamps && opts.timestamps.is_some();
        if let Some(ts) = opts.timestamps {
            self.ts_recent = ts.tsval;
        }
        match opts.window_scale {
            Some(shift) if config.window_scaling => {
                (window_shift(config.recv_buffer), shift.min(14))
            }
            _ => (0, 0),
        }
    }

    pub(super) fn send_mss(&self) -> usize {
        self.send_mss
    }

    /// The path takes segments of at most `mss` bytes of options and
    /// payload: caps the send MSS now and after the peer's SYN. Returns
    /// whether the send MSS went down.
    pub(super) fn cap_path(&mut self, mss: usize) -> bool {
        self.path_cap = self.path_cap.min(mss);
        let before = self.send_mss;
        self.send_mss = self.send_mss.min(mss).max(MIN_SEND_MSS);
        self.send_mss < before
    }

    pub(super) fn sack(&self) -> bool {
        self.sack
    }

    pub(super) fn timestamps(&self) -> bool {
        self.timestamps
    }

    pub(super) fn ts_recent(&self) -> u32 {
        self.ts_recent
    }

    /// Payload bytes in a full-sized segment with our fixed options: RFC
    /// 9293 §3.7.1 subtracts TCP options from the MSS.
    pub(super) fn payload_mss(&self) -> usize {
        let ts = if self.timestamps { 12 } else { 0 };
        self.send_mss.saturating_sub(ts).max(1)
    }

    /// RFC 7323 §5.3 PAWS: a TSval older than TS.Recent marks a duplicate
    /// from an earlier wrap.
    pub(super) fn paws_rejects(&self, tsval: u32) -> bool {
        self.timestamps && (tsval.wrapping_sub(self.ts_recent) as i32) < 0
    }

    /// RFC 7323 §4.3: remember the TSval to echo, from a segment that
    /// starts at or below Last.ACK.sent.
    pub(super) fn note_tsval(&mut self, seq: SeqNumber, tsval: u32) {
        if self.timestamps && seq <= self.last_ack_sent {
            self.ts_recent = tsval;
        }
    }

    /// An ACK of `rcv_nxt` went out (RFC 7323 §4.3 Last.ACK.sent).
    pub(super) fn sent_ack(&mut self, rcv_nxt: SeqNumber) {
        self.last_ack_sent = rcv_nxt;
    }

    /// The option for a segment sent at `now`, echoing `tsecr`.
    pub(super) fn timestamps_option(&self, now: Instant, tsecr: u32) -> Option<Timestamps> {
        self.timestamps.then(|| Timestamps {
            tsval: ts_clock(now),
            tsecr,
        })
    }

    /// RFC 7323 §4.1: an RTT sample from an echoed timestamp, valid even
    /// for retransmitted segments. A TSecr of 0 echoes nothing.
    pub(super) fn rtt_sample(&self, now: Instant, ts: Option<Timestamps>) -> Option<Duration> {
        if !self.timestamps {
            return None;
        }
        let ts = ts.filter(|ts| ts.tsecr != 0)?;
        let ms = ts_clock(now).wrapping_sub(ts.tsecr);
        (ms < MAX_TS_RTT_MS).then(|| Duration::from_millis(u64::from(ms)))
    }
}

/// The shift that makes `buffer` fit the 16-bit window field (RFC 7323
/// §2.3: at most 14).
pub(super) fn window_shift(buffer: usize) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (buffer >> shift) > 0xffff {
        shift += 1;
    }
    shift
}

/// TSval: our clock in milliseconds (RFC 7323 §5.4 allows 1 ms to 1 s
/// ticks). Offset by one so that no TSval is 0, which TSecr uses for
/// "nothing to echo".
fn ts_clock(now: Instant) -> u32 {
    (now.total_millis() as u32).wrapping_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TcpConfig {
        TcpConfig {
            mss: 1460,
            sack: true,
            timestamps: true,
            window_scaling: true,
            recv_buffer: 1 << 20,
            ..TcpConfig::default()
        }
    }

    #[test]
    fn mss_is_clamped_and_timestamps_take_twelve_bytes() {
        let mut n = Negotiated::new(&config());
        assert_eq!(n.send_mss(), 536);
        let opts = TcpOptions {
            mss: Some(0),
            ..TcpOptions::default()
        };
        n.peer_syn(&config(), &opts);
        assert_eq!(
            (n.send_mss(), n.payload_mss()),
            (MIN_SEND_MSS, MIN_SEND_MSS)
        );
        let opts = TcpOptions {
            mss: Some(9000),
            timestamps: Some(Timestamps { tsval: 7, tsecr: 0 }),
            ..TcpOptions::default()
        };
        n.peer_syn(&config(), &opts);
        assert_eq!((n.send_mss(), n.payload_mss()), (1460, 1448));
        assert_eq!(n.ts_recent(), 7);
    }

    #[test]
    fn only_what_both_offered_is_on() {
        let mut n = Negotiated::new(&config());
        let opts = TcpOptions {
            sack_permitted: true,
            window_scale: Some(20),
            ..TcpOptions::default()
        };
        assert_eq!(n.peer_syn(&config(), &opts), (window_shift(1 << 20), 14));
        assert!(n.sack() && !n.timestamps());
        let off = TcpConfig {
            sack: false,
            window_scaling: false,
            ..config()
        };
        assert_eq!(n.peer_syn(&off, &opts), (0, 0));
        assert!(!n.sack());
    }

    #[test]
    fn paws_and_ts_recent_across_tsval_wraparound() {
        let mut n = Negotiated::new(&config());
        let opts = TcpOptions {
            timestamps: Some(Timestamps {
                tsval: u32::MAX - 5,
                tsecr: 0,
            }),
            ..TcpOptions::default()
        };
        n.peer_syn(&config(), &opts);
        n.sent_ack(SeqNumber(100));
        // 10 ticks later, past the wrap: newer, accepted.
        assert!(!n.paws_rejects(4));
        assert!(n.paws_rejects(u32::MAX - 6));
        // Only a segment at or below Last.ACK.sent updates TS.Recent.
        n.note_tsval(SeqNumber(101), 4);
        assert_eq!(n.ts_recent(), u32::MAX - 5);
        n.note_tsval(SeqNumber(100), 4);
        assert_eq!(n.ts_recent(), 4);
        assert!(n.paws_rejects(u32::MAX - 5));
    }

    #[test]
    fn rtt_from_echoed_timestamp() {
        let mut n = Negotiated::new(&config());
        n.offer(&config());
        let now = Instant::from_millis(5000);
        let sent = n.timestamps_option(Instant::from_millis(4970), 0);
        let echo = sent.map(|t| Timestamps {
            tsval: 1,
            tsecr: t.tsval,
        });
        assert_eq!(n.rtt_sample(now, echo), Some(Duration::from_millis(30)));
        let zero = Some(Timestamps { tsval: 1, tsecr: 0 });
        assert_eq!(n.rtt_sample(now, zero), None);
        assert_eq!(window_shift(65_535), 0);
        assert_eq!(window_shift(65_536), 1);
        assert_eq!(window_shift(usize::MAX), 14);
    }
}
