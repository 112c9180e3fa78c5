//! Segment arrival: RFC 9293 §3.10.7 ("SEGMENT ARRIVES"), step by step.
//! Nothing here emits; each step records what is owed.

use super::Connection;
use crate::tcp::error::ConnError;
use crate::tcp::state::State;
use crate::tcp::timer::Timer;
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpRepr, Timestamps};
use crate::wire::SeqNumber;

impl Connection {
    /// Processes one segment of this four-tuple. It never emits directly:
    /// it records what is owed (an ACK, a RST, data) for `poll_transmit`.
    /// Any segment is safe to feed, however malformed its numbers.
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        self.stats.segs_received += 1;
        if seg.flags.rst() {
            self.stats.rst_received += 1;
        }
        match self.state {
            // No TCB to speak of: the runtime answers with rst_for_closed.
            State::Closed | State::Listen => return,
            State::SynSent => self.on_syn_sent(now, seg),
            _ => self.on_synchronized(now, seg),
        }
        if let Some(k) = self.config.keepalive {
            if matches!(self.state, State::Established | State::CloseWait) {
                self.backoff.heard();
                self.timers.set(Timer::Keepalive, now + k);
            }
        }
        self.update_timers(now);
    }

    /// RFC 9293 §3.10.7.3, "If the state is SYN-SENT".
    fn on_syn_sent(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        // First: the ACK must acknowledge our SYN (SND.UNA < SEG.ACK =<
        // SND.NXT); otherwise <SEQ=SEG.ACK><CTL=RST>, unless it is a RST.
        let ack_ok = seg.flags.ack() && self.snd.acks_new(seg.ack);
        if seg.flags.ack() && !ack_ok {
            if !seg.flags.rst() {
                self.owe_rst(seg.ack, None);
            }
            return;
        }
        // Second: a RST counts only if its ACK was acceptable.
        if seg.flags.rst() {
            if ack_ok {
                self.fail(ConnError::Refused);
            }
            return;
        }
        // Fourth: SYN. Neither SYN nor RST: drop.
        if !seg.flags.syn() {
            return;
        }
        self.take_peer_syn(seg);
        self.snd.set_wl2(seg.ack);
        if ack_ok {
            self.ack_new_data(now, seg.ack, seg.options.timestamps);
            self.enter_established(now);
            // Any data on the SYN-ACK is not taken; the peer retransmits it.
            self.owed.ack_now();
        } else {
            // Simultaneous open: SYN-RECEIVED, send <SEQ=ISS><ACK=RCV.NXT>
            // <CTL=SYN,ACK> (re-emitting our SYN with an ACK).
            self.state = State::SynReceived;
            self.snd.resend_syn();
            self.rtt.forget();
        }
    }

    /// RFC 9293 §3.10.7.4, "Otherwise" (every synchronized state).
    fn on_synchronized(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        // A retransmitted SYN in SYN-RECEIVED means our SYN-ACK was lost:
        // send it again now rather than waiting for our timer.
        if self.state == State::SynReceived
            && seg.flags.syn()
            && !seg.flags.ack()
            && !seg.flags.rst()
            && seg.seq == self.rcv.irs()
        {
            self.snd.resend_syn();
            self.rtt.forget();
            return;
        }
        // Simultaneous open (RFC 9293 Figure 8): the peer's SYN,ACK repeats
        // the SYN we already hold. Drop that sequence number and keep its
        // ACK, which may complete our handshake at once.
        if self.state == State::SynReceived
            && seg.flags.syn()
            && seg.flags.ack()
            && !seg.flags.rst()
            && seg.seq == self.rcv.irs()
        {
            let mut rest = *seg;
            rest.flags = TcpFlags(seg.flags.0 & !TcpFlags::SYN.0);
            rest.seq = seg.seq + 1;
            self.on_synchronized(now, &rest);
            return;
        }

        // RFC 7323 §5.3 PAWS: a segment whose TSval is older than
        // TS.Recent is a duplicate from an earlier wrap; ACK and drop.
        if !seg.flags.rst() {
            if let Some(ts) = seg.options.timestamps {
                if self.opts.paws_rejects(ts.tsval) {
                    self.stats.unacceptable += 1;
                    self.owed.ack_now();
                    return;
                }
            }
        }

        // First: the sequence number test (four cases).
        let rcv_wnd = self.rcv.window();
        let mut take_text = true;
        if !self.rcv.acceptable(seg.seq, seg.seg_len(), rcv_wnd) {
            // "If the RCV.WND is zero, no segments will be acceptable, but
            // special allowance should be made to accept valid ACKs, URGs,
            // and RSTs": keep the control part of a segment at RCV.NXT.
            if !(rcv_wnd == 0 && seg.seq == self.rcv.nxt()) {
                if !seg.flags.rst() {
                    // "an acknowledgment should be sent in reply". To a
                    // segment without data or FIN, only under the
                    // challenge-ACK limit, as Linux does
                    // (`tcp_oow_rate_limited`): two ends that disagree on
                    // the window would otherwise ACK each other's ACKs
                    // forever, and a blind flood of them would make us a
                    // reflector. Data still gets its duplicate ACK at once.
                    self.stats.unacceptable += 1;
                    if seg.payload.is_empty() && !seg.flags.fin() {
                        self.challenge_ack(now);
                    } else {
                        self.owed.ack_now();
                    }
                    if self.state == State::TimeWait && seg.flags.fin() {
                        // A retransmitted FIN: restart the 2 MSL wait.
                        self.enter_time_wait(now);
                    }
                }
                return;
            }
            take_text = false;
            if !seg.payload.is_empty() || seg.flags.fin() {
                self.owed.ack_now();
            }
        }

        // Second: RST. RFC 9293 §3.10.7.4 (from RFC 5961 §3.2): reset only
        // if it is exactly at RCV.NXT; in window otherwise gets a
        // challenge ACK.
        if seg.flags.rst() {
            if seg.seq == self.rcv.nxt() {
                self.on_rst();
            } else {
                self.challenge_ack(now);
            }
            return;
        }

        // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC
        // 9293 §3.10.7.4, RFC 5961 §4) and is dropped.
        if seg.flags.syn() {
            self.challenge_ack(now);
            return;
        }

        // Fifth: the ACK field. Without ACK, drop.
        if !seg.flags.ack() {
            return;
        }
        if self.state == State::SynReceived {
            if self.snd.acks_new(seg.ack) {
                self.enter_established(now);
                let wnd = self.snd.scaled(seg.window);
                self.snd.set_window(seg.seq, seg.ack, wnd);
            } else {
                // <SEQ=SEG.ACK><CTL=RST>
                self.owe_rst(seg.ack, None);
                return;
            }
        }
        if !self.process_ack(now, seg) {
            return;
        }
        if self.state == State::Closed {
            return;
        }

        // Seventh: segment text.
        let mut fin_in_window = take_text;
        if take_text && self.state.accepts_text() {
            fin_in_window = self.process_text(seg, rcv_wnd);
        }

        // Eighth: FIN.
        if seg.flags.fin() && fin_in_window && !self.rcv.fin_rcvd() {
            self.rcv.fin_arrived(seg.seq + seg.payload.len());
            self.owed.ack_now();
        }
        self.take_fin(now);
    }

    /// RFC 9293 §3.10.7.4 second step, by state.
    fn on_rst(&mut self) {
        match self.state {
            // From a passive open the listener lives on in the runtime; this
            // embryonic connection just goes away. From a simultaneous open
            // the user's connect is refused.
            State::SynReceived => {
                let error = if self.passive {
                    ConnError::Reset
                } else {
                    ConnError::Refused
                };
                self.fail(error);
            }
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                self.fail(ConnError::Reset);
            }
            // CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state, delete
            // the TCB, and return" (the user already closed).
            _ => self.enter_closed(),
        }
    }

    /// The fifth step for ESTABLISHED and later: returns false when the
    /// segment is to be dropped here.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr<'_>) -> bool {
        // RFC 5961 §5.2: acceptable is SND.UNA - MAX.SND.WND =< SEG.ACK =<
        // SND.NXT (ours: SND.MAX or a probe byte past it). Beyond it, "the
        // segment MUST be discarded and an ACK sent back", rate-limited
        // like every challenge ACK (§7). This also catches blind data
        // injection with a guessed sequence number but a stale ACK.
        if !self.snd.ack_in_range(seg.ack) {
            self.challenge_ack(now);
            return false;
        }
        // RFC 7323 §4.3: remember the TSval to echo, but only from an
        // acceptable segment (in window, ACK in range), as Linux does: a
        // blind in-window segment with a bogus ACK and a far-future TSval
        // would otherwise make PAWS reject every real segment after it.
        if let Some(ts) = seg.options.timestamps {
            self.opts.note_tsval(seg.seq, ts.tsval);
        }
        let new_wnd = self.snd.scaled(seg.window);
        let new_sack = self.update_scoreboard(seg.ack, seg.options.sack_blocks());
        if seg.ack > self.snd.una() {
            self.ack_new_data(now, seg.ack, seg.options.timestamps);
        } else if seg.ack == self.snd.una()
            && self.snd.flight() > 0
            && !seg.flags.fin()
            && ((seg.payload.is_empty() && new_wnd == self.snd.wnd()) || new_sack)
        {
            // RFC 5681 §2's duplicate ACK (no data, same window), or, with
            // SACK, any ACK that reports newly received data beyond a hole
            // (RFC 6675 §5's DupAck count): piggybacked ACKs of a
            // bidirectional transfer then still trigger fast retransmit.
            self.on_dup_ack(now);
        }
        // RFC 8985: what a probe's ACK shows, and lost retransmissions.
        self.tlp_on_ack(now);
        if self.loss.in_recovery() {
            self.rack_detect(now);
        }
        // Window update (SND.WL1 < SEG.SEQ, or equal and SND.WL2 =< SEG.ACK).
        self.snd.update_window(seg.seq, seg.ack, new_wnd);
        if self.snd.fin_acked() {
            match self.state {
                State::FinWait1 => self.state = State::FinWait2,
                State::Closing => self.enter_time_wait(now),
                State::LastAck => {
                    self.enter_closed();
                    return false;
                }
                _ => {}
            }
        }
        true
    }

    /// SND.UNA < ack =< SND.MAX: free acknowledged bytes, take an RTT
    /// sample, feed congestion control, restart the timer.
    pub(super) fn ack_new_data(&mut self, now: Instant, ack: SeqNumber, ts: Option<Timestamps>) {
        let fin_sent = self.fin_wanted();
        let data = self.snd.take_ack(ack, fin_sent);
        self.backoff.progress();

        // RTT: from the echoed timestamp (RFC 7323 §4.1, valid even for
        // retransmitted segments) or from the timed segment (Karn's rule:
        // never a retransmitted one, RFC 6298 §3).
        let echoed = self.opts.rtt_sample(now, ts);
        let sample = self.rtt.on_ack(now, ack, echoed);
        if let Some(rtt) = sample {
            self.config.rtt_histogram.record(rtt);
        }
        self.delivery.on_ack(now, data, self.rtt.srtt());

        if self.loss.scoreboard.advance(ack) {
            // The peer dropped data it had SACKed (RFC 2018 §8).
            self.loss.scoreboard.clear(ack);
        }
        if self.loss.in_recovery() {
            // RFC 6675 §5 / RFC 6582 §3.2 step 3: a full ACK ends recovery
            // (cwnd is already ssthresh); a partial one without SACK owes
            // the next hole at once, and that resend may be the timed
            // segment (Karn's rule).
            if self.loss.new_ack(ack, self.opts.sack()) {
                self.rtt.forget();
            }
            if !self.loss.in_recovery() {
                self.timers.stop(Timer::Reorder);
            }
        } else {
            self.loss.new_ack(ack, self.opts.sack());
            if data > 0 {
                self.cc.on_ack(now, data, sample);
            }
            // RFC 8985 §7.2: a cumulative ACK restarts the probe timeout.
            self.timers.stop(Timer::LossProbe);
        }

        // RFC 6298 §5.2-5.3.
        if self.snd.flight() == 0 {
            self.timers.stop(Timer::Retransmit);
        } else {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
    }

    /// The seventh step: store the in-window part of the payload. Returns
    /// whether the whole payload fitted (so a FIN after it is in window).
    fn process_text(&mut self, seg: &TcpRepr<'_>, rcv_wnd: usize) -> bool {
        if seg.payload.is_empty() {
            return true;
        }
        let stored = self.rcv.store(seg.seq, seg.payload, rcv_wnd);
        if !stored.fits || stored.len == 0 {
            // Trimmed to the window (RFC 9293 §3.10.7.4, "trimmed"), or
            // nothing new (a duplicate): answered at once.
            self.owed.ack_now();
        }
        if stored.len == 0 {
            return stored.fits;
        }
        self.stats.bytes_received += stored.advanced as u64;
        if stored.offset > 0 {
            // Out of order: a duplicate ACK at once (RFC 5681 §4.2) with
            // SACK blocks; this segment's block goes first.
            self.owed.ack_now();
        } else if stored.advanced > stored.len {
            // It filled a hole: ACK at once (RFC 5681 §4.2).
            self.owed.ack_now();
        } else {
            // RFC 1122 §4.2.3.2: at least every second full-sized
            // segment, counted in bytes (a super-segment counts as the
            // segments it merges). The peer's full-sized segment is taken
            // to carry what ours does: min(both MSS options) less the
            // timestamps option, the link's limits being symmetric.
            self.owed.in_order_data(
                stored.len,
                self.config.delayed_ack.is_some(),
                self.payload_mss(),
            );
        }
        stored.fits
    }

    /// The eighth step, once all data before a FIN has arrived.
    fn take_fin(&mut self, now: Instant) {
        if !self.rcv.take_fin() {
            return;
        }
        self.owed.ack_now();
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.snd.fin_acked() {
                    self.enter_time_wait(now);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// RFC 5961 §3.2, §4.2, §5.2 challenge ACK, at most
    /// `challenge_acks_per_sec` per one-second window (§7); the rest are
    /// counted and not sent.
    fn challenge_ack(&mut self, now: Instant) {
        if self.owed.challenge_ack(now) {
            self.stats.challenge_acks_sent += 1;
        } else {
            self.stats.challenge_acks_suppressed += 1;
        }
    }

    fn owe_rst(&mut self, seq: SeqNumber, ack: Option<SeqNumber>) {
        self.owed.rst(seq, ack);
    }
}
