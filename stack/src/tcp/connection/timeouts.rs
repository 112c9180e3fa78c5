//! Timeouts: `handle_timeout` runs every due timer (RFC 6298
//! retransmission, RFC 8985 loss probe and reorder, RFC 9293 §3.8.6.1
//! persist, RFC 1122 delayed ACK and keepalive, TIME-WAIT), and
//! `update_timers` brings the timers in line with the state after every
//! input and output.

use std::time::Duration;

use super::{AckOwed, Connection};
use crate::tcp::config::KEEPALIVE_PROBES;
use crate::tcp::error::ConnError;
use crate::tcp::state::State;
use crate::tcp::timer::Timer;
use crate::time::Instant;

impl Connection {
    /// Runs every timer due at `now`. Call it when `poll_timeout`'s instant
    /// has passed (calling it early is harmless), then `poll_transmit`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.is_expired(Timer::TimeWait, now) {
            // RFC 9293 §3.10.8: "If the time-wait timeout expires on a
            // connection, delete the TCB".
            self.enter_closed();
            return;
        }
        if self.timers.is_expired(Timer::Retransmit, now) {
            self.timers.stop(Timer::Retransmit);
            self.on_retransmit_timeout(now);
        }
        if self.timers.is_expired(Timer::LossProbe, now) {
            self.timers.stop(Timer::LossProbe);
            self.on_loss_probe_timeout();
        }
        if self.timers.is_expired(Timer::Reorder, now) {
            self.timers.stop(Timer::Reorder);
            self.rack_detect(now);
        }
        if self.timers.is_expired(Timer::Persist, now) {
            self.timers.stop(Timer::Persist);
            self.owed.probe();
            self.backoff.persist_fired();
        }
        if self.timers.is_expired(Timer::DelayedAck, now) {
            self.timers.stop(Timer::DelayedAck);
            self.owed.ack_now();
        }
        if self.timers.is_expired(Timer::Keepalive, now) {
            self.timers.stop(Timer::Keepalive);
            self.on_keepalive_timeout(now);
        }
        self.update_timers(now);
    }

    /// RFC 6298 §5.4-5.6: go back to SND.UNA, back off the RTO, restart the
    /// timer. RFC 1122 §4.2.3.5: give up after too many.
    fn on_retransmit_timeout(&mut self, now: Instant) {
        if self.snd.all_acked() {
            return; // nothing outstanding: a stale timer
        }
        if self.snd.syn_acked() && self.snd.wnd() == 0 {
            // The peer's window is closed: what we sent is probably sitting
            // beyond it. This is no loss, so no back-off and no step
            // towards giving up (RFC 1122 §4.2.2.17); go back to SND.UNA
            // and let the persist timer probe, starting now.
            self.snd.go_back();
            self.rtt.forget();
            self.loss.cancel_rtx();
            self.owed.probe();
            return;
        }
        let limit = if self.snd.syn_acked() {
            self.config.max_retransmits
        } else {
            self.config.syn_retries
        };
        if self.backoff.retransmit_timeout(limit) {
            if self.state.is_synchronized() {
                self.owed.rst(self.snd.max(), None);
            }
            self.fail(ConnError::TimedOut);
            return;
        }
        self.stats.retransmit_timeouts += 1;
        self.rtt.timeout();
        if self.snd.syn_acked() {
            // RFC 5681 §3.1 / RFC 9438 §4.8: FlightSize before going back.
            self.cc.on_retransmit_timeout(now, self.snd.outstanding());
        }
        // RFC 6675 §5.1: nothing counts as retransmitted any more, and the
        // SACK recovery (if any) ends with RecoveryPoint = SND.MAX (below).
        // We keep the SACKed ranges (the errata to RFC 2018 allows it with
        // a reneging test): the go-back-N resend skips them. The tests:
        // `Scoreboard::advance` notices SND.UNA landing inside a SACKed
        // range, and a second timeout in a row without progress forgets
        // everything, so a reneging peer costs one more RTO, never a stall.
        self.loss.timeout(
            self.snd.una(),
            self.snd.max(),
            self.backoff.retransmits() > 1,
        );
        self.timers.stop(Timer::Reorder);
        self.snd.go_back();
        self.timers.set(Timer::Retransmit, now + self.rtt.rto());
    }

    /// RFC 1122 §4.2.3.6: probe an idle connection; fail after
    /// [`KEEPALIVE_PROBES`] unanswered probes.
    fn on_keepalive_timeout(&mut self, now: Instant) {
        let Some(interval) = self.config.keepalive else {
            return;
        };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.backoff.keepalives() >= KEEPALIVE_PROBES {
            self.owed.rst(self.snd.max(), None);
            self.fail(ConnError::TimedOut);
            return;
        }
        if self.snd.flight() == 0 {
            self.owed.keepalive();
            self.backoff.keepalive_sent();
        }
        self.timers.set(Timer::Keepalive, now + interval);
    }

    /// Brings the persist, delayed-ACK and retransmit timers in line with
    /// the current state. Runs after every input and after `poll_transmit`
    /// has nothing more to send.
    pub(super) fn update_timers(&mut self, now: Instant) {
        match self.state {
            State::Closed | State::Listen => {
                self.timers.stop_all();
                return;
            }
            State::TimeWait => {
                let deadline = self.timers.deadline(Timer::TimeWait);
                self.timers.stop_all();
                if let Some(at) = deadline {
                    self.timers.set(Timer::TimeWait, at);
                }
                return;
            }
            _ => {}
        }
        match (self.owed.ack(), self.config.delayed_ack) {
            (AckOwed::Delayed, Some(delay)) => {
                if !self.timers.is_armed(Timer::DelayedAck) {
                    self.timers.set(Timer::DelayedAck, now + delay);
                }
            }
            (AckOwed::Delayed, None) => self.owed.ack_now(),
            _ => self.timers.stop(Timer::DelayedAck),
        }
        if self.snd.all_acked() {
            self.timers.stop(Timer::Retransmit);
        }
        if !self.loss.in_recovery() {
            self.timers.stop(Timer::Reorder);
        }
        self.tlp_update_timer(now);
        // RFC 9293 §3.8.6.1: with data waiting, a zero window and nothing
        // in flight, only a probe can learn that the window opened.
        let stalled = self.snd.syn_acked()
            && self.snd.wnd() == 0
            && self.snd.nxt() == self.snd.una()
            && self.snd.unsent() > 0
            && !self.timers.is_armed(Timer::Retransmit);
        if stalled {
            if !self.timers.is_armed(Timer::Persist) {
                self.timers
                    .set(Timer::Persist, now + self.persist_interval());
            }
        } else {
            self.timers.stop(Timer::Persist);
            if self.snd.wnd() > 0 {
                self.backoff.window_open();
            }
        }
    }

    /// See `Backoff::persist_interval`.
    fn persist_interval(&self) -> Duration {
        self.backoff
            .persist_interval(self.rtt.rto(), self.config.max_rto)
    }

    /// The earliest deadline among the running timers; `None` when nothing
    /// is pending. Call after `poll_transmit` returned `None`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }
}
