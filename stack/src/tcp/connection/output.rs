//! What to send next: RST owed, SYN, zero-window probe, fast retransmit,
//! new data (window, congestion, Nagle and SWS rules) with FIN, keepalive,
//! or a bare ACK. Each `poll_transmit` emits at most one segment: one MSS
//! at most, except new data, which may be a super-segment of many MSS
//! units when `set_max_segment_payload` allows it (TSO).

use super::{distance, AckOwed, Connection, Planned};
use crate::tcp::state::State;
use crate::tcp::timer::Timer;
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

impl Connection {
    /// The next segment to send, with its payload copied into `buf` (at
    /// most the effective MSS, or for new data the super-segment limit of
    /// [`set_max_segment_payload`](Self::set_max_segment_payload), and at
    /// most `buf.len()` bytes), or `None`
    /// when nothing is owed. Call until `None` after every input or
    /// command; the caller emits it with `TcpRepr::emit(local ip, remote
    /// ip, ..)`. Ports are src = local, dst = remote.
    #[must_use]
    pub fn poll_transmit<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Option<TcpRepr<'b>> {
        if let Some(rst) = self.owed.take_rst() {
            self.stats.rst_sent += 1;
            self.stats.segs_sent += 1;
            let mut repr = self.bare(rst.seq, TcpFlags::RST, 0);
            if let Some(ack) = rst.ack {
                repr.flags = TcpFlags::RST | TcpFlags::ACK;
                repr.ack = ack;
            }
            return Some(repr);
        }
        let seg = self.next_segment(now, buf);
        if seg.is_none() {
            self.update_timers(now);
        }
        seg
    }

    fn next_segment<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Option<TcpRepr<'b>> {
        match self.state {
            State::Closed | State::Listen => return None,
            State::TimeWait => return self.ack_if_owed(now),
            _ => {}
        }
        if !self.snd.syn_acked() {
            if self.snd.nxt() == self.snd.iss() {
                return Some(self.syn(now));
            }
            if self.state == State::SynSent {
                return None; // no RCV.NXT to acknowledge yet
            }
            return self.ack_if_owed(now);
        }
        // Each candidate writes its payload into `buf` and says where it
        // goes; the segment borrowing `buf` is built once, below.
        let mut planned = None;
        if self.owed.take_probe() {
            planned = self.zero_window_probe(buf);
        }
        if planned.is_none() && self.loss.tlp.take_owed() {
            planned = self.loss_probe(now, buf);
        }
        if planned.is_none() && self.loss.take_rtx() {
            planned = self.fast_retransmit(buf);
            if let Some((seq, _, n)) = planned {
                self.rack_sent(now, seq, n);
            }
        }
        if planned.is_none() {
            planned = self.rack_retransmit(now, buf);
        }
        if planned.is_none() {
            planned = self.sack_retransmit(buf);
            if let Some((seq, _, n)) = planned {
                self.rack_sent(now, seq, n);
            }
        }
        if planned.is_none()
            && matches!(
                self.state,
                State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::Closing
                    | State::LastAck
            )
        {
            planned = self.new_data(now, buf);
        }
        if let Some((seq, flags, n)) = planned {
            let payload: &'b [u8] = &buf[..n];
            return Some(self.finish(now, seq, flags, payload));
        }
        if self.owed.take_keepalive() {
            self.stats.keepalive_probes += 1;
            // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT-1, no data.
            let seq = self.snd.una() - 1;
            return Some(self.finish(now, seq, TcpFlags::ACK, &[]));
        }
        if self.window_update_owed() {
            self.owed.ack_now();
        }
        self.ack_if_owed(now)
    }

    /// Our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), first or again.
    fn syn(&mut self, now: Instant) -> TcpRepr<'static> {
        let retransmission = self.snd.max() != self.snd.iss();
        let mut options = TcpOptions {
            mss: Some(self.config.mss),
            ..TcpOptions::default()
        };
        let active = self.state == State::SynSent;
        // Active open offers what is configured; passive open answers only
        // what the peer offered (negotiate() already decided).
        if (active && self.config.window_scaling) || (!active && self.window_scale().is_some()) {
            options.window_scale = Some(self.rcv.wscale());
        }
        options.sack_permitted = self.opts.sack();
        let tsecr = if active { 0 } else { self.opts.ts_recent() };
        options.timestamps = self.opts.timestamps_option(now, tsecr);
        let flags = if active {
            TcpFlags::SYN
        } else {
            TcpFlags::SYN | TcpFlags::ACK
        };
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        let window = self.rcv.syn_window() as u16;
        let mut repr = self.bare(self.snd.iss(), flags, window);
        repr.ack = self.rcv.nxt();
        repr.options = options;
        self.snd.sent_to(self.snd.iss() + 1);
        if retransmission {
            self.stats.segs_retransmitted += 1;
        } else {
            self.rtt.time(self.snd.nxt(), now);
        }
        if !self.timers.is_armed(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        if !active {
            self.sent_ack();
        }
        self.stats.segs_sent += 1;
        repr
    }

    /// RFC 9293 §3.8.6.1: one byte of data beyond a zero window, to learn
    /// when it opens. It does not advance SND.NXT or SND.MAX; an ACK of it
    /// is acceptable through `probe_end`.
    fn zero_window_probe(&mut self, buf: &mut [u8]) -> Option<Planned> {
        if self.snd.nxt() != self.snd.una() || self.snd.wnd() > 0 {
            return None;
        }
        let n = self.snd.buf().read_at(0, buf.get_mut(..1)?);
        if n == 0 {
            return None;
        }
        self.stats.zero_window_probes += 1;
        let seq = self.snd.una();
        self.snd.probe_sent(seq + n);
        Some((seq, TcpFlags::ACK, n))
    }

    /// RFC 5681 §3.2 / RFC 6582 / RFC 6675 §5 step (4.3): resend the
    /// segment at SND.UNA, outside the congestion window, leaving SND.NXT
    /// alone. With SACK it stops where the peer's first SACKed range
    /// begins.
    fn fast_retransmit(&mut self, buf: &mut [u8]) -> Option<Planned> {
        let outstanding = self.snd.outstanding();
        let queued = self.snd.buf().len();
        let fin_sent = self.fin_wanted() && outstanding > queued;
        let mut len = queued
            .min(outstanding)
            .min(self.payload_mss())
            .min(buf.len());
        if let Some(sacked) = self.loss.scoreboard.next_sacked(self.snd.una()) {
            len = len.min(distance(self.snd.una(), sacked));
        }
        let fin = fin_sent && len == queued;
        if len == 0 && !fin {
            return None;
        }
        let n = self.snd.buf().read_at(0, &mut buf[..len]);
        let mut flags = TcpFlags::ACK;
        if fin {
            flags = flags | TcpFlags::FIN;
        }
        self.stats.segs_retransmitted += 1;
        self.stats.bytes_retransmitted += n as u64;
        let seq = self.snd.una();
        let end = seq + n + usize::from(fin);
        self.loss.scoreboard.mark_retransmitted(seq + n);
        self.snd.resent_to(end);
        Some((seq, flags, n))
    }

    /// New (or, after a timeout, re-sent) data from SND.NXT, plus our FIN
    /// when it ends the stream.
    pub(super) fn new_data(&mut self, now: Instant, buf: &mut [u8]) -> Option<Planned> {
        // After a timeout, the go-back-N resend skips what the peer SACKed
        // (RFC 6675 §5.1: use the SACK information after an RTO).
        if self.snd.nxt() < self.snd.max() {
            if let Some(end) = self.loss.scoreboard.sacked_end(self.snd.nxt()) {
                self.snd.skip_to(end);
            }
        }
        let offset = self.snd.flight();
        let queued = self.snd.buf().len();
        if offset > queued {
            return None; // FIN already sent
        }
        let avail = queued - offset;
        let fin_wanted = self.fin_wanted();
        let mss = self.payload_mss();
        let resend = self.snd.nxt() < self.snd.max();
        // Old data after a timeout and a tail loss probe go one MSS at a
        // time (RFC 8985 §7.3: the probe is one segment).
        let one = resend || self.loss.tlp.sending();
        let short = mss.min(buf.len());
        let max = self.segment_limit(one, buf.len());
        let usable = self.usable_window();
        let mut len = avail.min(usable).min(max);
        if resend {
            if let Some(sacked) = self.loss.scoreboard.next_sacked(self.snd.nxt()) {
                len = len.min(distance(self.snd.nxt(), sacked));
            }
        }
        if len > mss {
            // A super-segment: whole MSS units, and a short last unit
            // only if it would go out by itself right after them, when
            // something is in flight: with our FIN, under nodelay when it
            // ends the queue (Nagle, RFC 9293 §3.7.4), or when it is at
            // least half the peer's largest window (sender SWS, RFC 1122
            // §4.2.3.4).
            let tail = len % mss;
            let ok = if len == avail {
                fin_wanted || self.config.nodelay
            } else {
                tail >= self.snd.max_wnd() / 2
            };
            if !ok {
                len -= tail;
            }
        }
        // A FIN needs no window (it is retransmitted if dropped).
        let fin = fin_wanted && len == avail;
        if len == 0 && !fin {
            return None;
        }
        if len < short && !fin && !resend {
            // A short segment. Nagle (RFC 9293 §3.7.4): only when nothing
            // is unacknowledged, unless nodelay. Sender SWS avoidance (RFC
            // 1122 §4.2.3.4): a window-limited one only if it is at least
            // half the largest window the peer offered, or nothing is in
            // flight (so a small window can never stall us).
            let idle = self.snd.max() == self.snd.una();
            let ok = if len == avail {
                self.config.nodelay || idle
            } else {
                idle || len >= self.snd.max_wnd() / 2
            };
            if !ok {
                return None;
            }
        }
        let n = self.snd.buf().read_at(offset, &mut buf[..len]);
        let seq = self.snd.nxt();
        let mut flags = TcpFlags::ACK;
        if n > 0 && n == avail {
            flags = flags | TcpFlags::PSH;
        }
        if fin {
            flags = flags | TcpFlags::FIN;
        }
        let end = seq + n + usize::from(fin);
        if seq < self.snd.max() {
            self.stats.segs_retransmitted += 1;
            self.stats.bytes_retransmitted += distance(seq, self.snd.max()).min(n) as u64;
            self.loss.scoreboard.mark_retransmitted(seq + n);
        } else {
            // RFC 8985 §7.2: new data restarts the probe timeout (armed
            // again by `update_timers` once the burst is out).
            self.timers.stop(Timer::LossProbe);
            if !self.loss.in_recovery() {
                // Karn's rule: time only segments sent for the first
                // time. Not in recovery either: their ACK waits for the
                // holes below.
                self.rtt.time(end, now);
            }
        }
        self.snd.sent_to(end);
        if !self.timers.is_armed(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        Some((seq, flags, n))
    }

    /// The most payload the next new-data segment may carry: one MSS
    /// (`one`, or without a super-segment limit), else the limit set by
    /// `set_max_segment_payload` rounded down to whole MSS units; never
    /// more than `buf_len`.
    fn segment_limit(&self, one: bool, buf_len: usize) -> usize {
        let mss = self.payload_mss();
        let single = mss.min(buf_len);
        if one {
            return single;
        }
        let units = self.max_segment_payload.min(buf_len) / mss;
        (units * mss).max(single)
    }

    /// The options of a non-SYN segment: timestamps (RFC 7323 §3.2) and
    /// SACK blocks for our out-of-order data (RFC 2018 §4), the most recent
    /// first.
    ///
    /// Segment economy: a data segment is sized first (`payload_mss`: the
    /// MSS minus the fixed timestamps option, as Linux sizes it), and SACK
    /// blocks only use the option room `payload` leaves, so a full-sized
    /// segment carries none. SACK never shrinks data segments, and
    /// retransmissions keep their original boundaries instead of splitting
    /// into a short segment and a tiny tail. `finish` follows a data
    /// segment that could not carry the blocks with a pure ACK that does,
    /// so the peer still learns of every hole at once.
    fn options(&self, now: Instant, payload: usize) -> TcpOptions {
        let mut options = TcpOptions {
            timestamps: self.opts.timestamps_option(now, self.opts.ts_recent()),
            ..TcpOptions::default()
        };
        if self.opts.sack() && self.rcv.buf().ooo_bytes() > 0 {
            // 40 option bytes: 3 blocks beside timestamps, else 4.
            let by_options = if self.opts.timestamps() { 3 } else { 4 };
            let room = self
                .opts
                .send_mss()
                .saturating_sub(payload + options.wire_len())
                .saturating_sub(4);
            let max = by_options.min(room / 8);
            if max == 0 {
                return options;
            }
            self.rcv.push_sack_blocks(&mut options, max);
        }
        options
    }

    /// After the reader freed space: worth telling the peer if the edge
    /// can move by the SWS threshold and the peer may be short of window
    /// (less than half the buffer advertised).
    fn window_update_owed(&self) -> bool {
        self.state.accepts_text() && !self.rcv.fin_rcvd() && self.rcv.window_update_due()
    }

    fn ack_if_owed(&mut self, now: Instant) -> Option<TcpRepr<'static>> {
        if self.owed.ack() != AckOwed::Now {
            return None;
        }
        // Like BSD: a bare ACK carries SND.MAX, not a SND.NXT that a
        // timeout moved back. The peer has (or will drop) everything below
        // it, so the ACK passes its acceptability test and is not ignored;
        // with SND.NXT two desynchronized peers would trade unacceptable
        // ACKs forever.
        let seq = self.snd.max();
        Some(self.finish(now, seq, TcpFlags::ACK, &[]))
    }

    /// Fills in ACK, window and options; records that an ACK went out.
    fn finish<'p>(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        flags: TcpFlags,
        payload: &'p [u8],
    ) -> TcpRepr<'p> {
        // Receiver SWS avoidance (RFC 9293 §3.8.6.2.2) is the receive space's.
        let window = self.rcv.advertise();
        let mut repr = self.bare(seq, flags | TcpFlags::ACK, window);
        repr.ack = self.rcv.nxt();
        repr.options = self.options(now, payload.len());
        repr.payload = payload;
        self.sent_ack();
        if self.opts.sack() && self.rcv.buf().ooo_bytes() > 0 && repr.options.sack_len == 0 {
            // No room for SACK blocks beside this payload (see `options`):
            // a pure ACK carrying them follows (RFC 2018 §4: SACK in every
            // ACK while data is out of order).
            self.owed.ack_now();
        }
        // A super-segment counts as the MSS-sized segments the device
        // cuts it into.
        self.stats.segs_sent += payload.len().div_ceil(self.payload_mss()).max(1) as u64;
        self.stats.bytes_sent += payload.len() as u64;
        repr
    }

    fn sent_ack(&mut self) {
        self.owed.sent_ack();
        self.opts.sent_ack(self.rcv.nxt());
        self.timers.stop(Timer::DelayedAck);
    }

    fn bare(&self, seq: SeqNumber, flags: TcpFlags, window: u16) -> TcpRepr<'static> {
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: SeqNumber(0),
            flags,
            window,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        }
    }
}
