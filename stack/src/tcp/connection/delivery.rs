//! The delivery rate `TcpInfo` reports (Linux's `tcpi_delivery_rate`): the
//! bytes the peer acknowledged over a recent interval of about one RTT,
//! divided by that interval. Linux stamps every packet with what had been
//! delivered when it left (draft-cheng-iccrg-delivery-rate-estimation);
//! for a number that is read, not acted on, an interval of acknowledgments
//! measures the same thing without per-packet state.

use std::time::Duration;

use crate::time::Instant;

/// The shortest interval measured: below it, ACK compression makes the
/// rate jump around.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The interval before any RTT sample.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct DeliveryRate {
    /// When the current interval began, and the latest ACK in it.
    interval: Option<(Instant, Instant)>,
    /// Bytes acknowledged since the interval began.
    delivered: u64,
    /// The last complete interval's rate, in bytes per second.
    rate: u64,
}

impl DeliveryRate {
    /// `bytes` were newly acknowledged at `now`. An interval ends once it
    /// spans the SRTT and counts what was acknowledged after its first
    /// ACK; a pause longer than that (nothing to send) starts a new one
    /// rather than diluting the rate with idle time.
    pub(super) fn on_ack(&mut self, now: Instant, bytes: usize, srtt: Option<Duration>) {
        let span = srtt.unwrap_or(DEFAULT_INTERVAL).max(MIN_INTERVAL);
        let start = match self.interval {
            Some((start, last)) if now.saturating_duration_since(last) <= span => start,
            _ => {
                self.interval = Some((now, now));
                self.delivered = 0;
                return;
            }
        };
        self.delivered += bytes as u64;
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= span {
            let micros = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            self.rate = self.delivered.saturating_mul(1_000_000) / micros;
            self.interval = Some((now, now));
            self.delivered = 0;
        } else {
            self.interval = Some((start, now));
        }
    }

    /// Bytes per second over the last complete interval; 0 before one.
    pub(super) fn rate(&self) -> u64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    #[test]
    fn steady_acks_give_the_rate_over_each_rtt() {
        let mut d = DeliveryRate::default();
        let rtt = Some(Duration::from_millis(50));
        assert_eq!(d.rate(), 0);
        // 10,000 bytes every 10 ms: 1 MB/s.
        for t in (0..=100).step_by(10) {
            d.on_ack(ms(t), 10_000, rtt);
        }
        assert_eq!(d.rate(), 1_000_000);
    }

    #[test]
    fn an_idle_pause_starts_a_new_interval_and_keeps_the_last_rate() {
        let mut d = DeliveryRate::default();
        let rtt = Some(Duration::from_millis(20));
        for t in (0..=40).step_by(10) {
            d.on_ack(ms(t), 5_000, rtt);
        }
        let before = d.rate();
        assert_eq!(before, 500_000);
        // A second of nothing, then the same pace again: no 1 s interval.
        d.on_ack(ms(1040), 5_000, rtt);
        assert_eq!(d.rate(), before);
        d.on_ack(ms(1050), 5_000, rtt);
        d.on_ack(ms(1060), 5_000, rtt);
        assert_eq!(d.rate(), 500_000);
    }
}
