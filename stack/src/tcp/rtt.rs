//! Round-trip time estimation and the retransmission timeout, RFC 6298.
//!
//! [`RttEstimator`] turns RTT samples into SRTT, RTTVAR and RTO (§2), clamps
//! the RTO to configured bounds (§2.4, §2.5) and doubles it on each
//! retransmission timeout (§5.5).

use std::time::Duration;

/// Clock granularity G of RFC 6298 §2: our clock counts microseconds but the
/// formula needs a floor on the variance term, and 1 ms matches Linux.
pub const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// RFC 6298 §2.1: the RTO before any sample.
pub const DEFAULT_INITIAL_RTO: Duration = Duration::from_secs(1);
/// RFC 6298 §2.4: "RTO SHOULD be rounded up to 1 second" (Linux uses 200 ms;
/// the minimum is configurable through [`RttEstimator::new`]).
pub const DEFAULT_MIN_RTO: Duration = Duration::from_secs(1);
/// RFC 6298 §2.5: "A maximum value MAY be placed on RTO provided it is at
/// least 60 seconds."
pub const DEFAULT_MAX_RTO: Duration = Duration::from_secs(60);

/// The RFC 6298 estimator.
///
/// Karn's rule (RFC 6298 §3) is the caller's job: feed [`sample`] only RTTs
/// measured on segments that were never retransmitted (or echoed by an
/// RFC 7323 timestamp, which is unambiguous). After a retransmission timeout
/// call [`backoff`]; the backed-off RTO stays in force until the next valid
/// sample (§5.7 lets the caller keep it).
///
/// [`sample`]: RttEstimator::sample
/// [`backoff`]: RttEstimator::backoff
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    /// RTO from the formula, clamped, before back-off.
    base_rto: Duration,
    /// RTO in force: `base_rto` doubled once per back-off, capped at `max_rto`.
    rto: Duration,
    backoffs: u32,
    min_rto: Duration,
    max_rto: Duration,
}

impl Default for RttEstimator {
    fn default() -> Self {
        RttEstimator::new(DEFAULT_INITIAL_RTO, DEFAULT_MIN_RTO, DEFAULT_MAX_RTO)
    }
}

impl RttEstimator {
    /// An estimator with no samples yet; its RTO is `initial_rto` clamped to
    /// `[min_rto, max_rto]`. If `min_rto > max_rto`, `max_rto` wins.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        let min_rto = min_rto.min(max_rto);
        let rto = initial_rto.clamp(min_rto, max_rto);
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            base_rto: rto,
            rto,
            backoffs: 0,
            min_rto,
            max_rto,
        }
    }

    /// Takes one RTT measurement (RFC 6298 §2.2, §2.3) and clears any
    /// back-off.
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                // §2.2: SRTT <- R, RTTVAR <- R/2.
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                // §2.3, alpha = 1/8, beta = 1/4; RTTVAR uses the old SRTT.
                // |SRTT - R'| (`Duration::abs_diff` needs Rust 1.81; MSRV is 1.80).
                let delta = srtt.checked_sub(rtt).unwrap_or_else(|| rtt - srtt);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + rtt / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        // RTO <- SRTT + max(G, K*RTTVAR), K = 4.
        let var = CLOCK_GRANULARITY.max(self.rttvar.saturating_mul(4));
        self.base_rto = srtt.saturating_add(var).clamp(self.min_rto, self.max_rto);
        self.rto = self.base_rto;
        self.backoffs = 0;
    }

    /// The retransmission timeout in force, back-off included.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// RFC 6298 §5.5: after a retransmission timeout, RTO <- RTO * 2, capped
    /// at the maximum.
    pub fn backoff(&mut self) {
        self.rto = self.rto.saturating_mul(2).min(self.max_rto);
        self.backoffs = self.backoffs.saturating_add(1);
    }

    /// How many times [`backoff`](Self::backoff) ran since the last sample.
    pub fn backoffs(&self) -> u32 {
        self.backoffs
    }

    /// The smoothed RTT, `None` before the first sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The RTT variation (zero before the first sample).
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    pub fn min_rto(&self) -> Duration {
        self.min_rto
    }

    pub fn max_rto(&self) -> Duration {
        self.max_rto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn initial_rto_before_samples() {
        let e = RttEstimator::default();
        assert_eq!(e.rto(), ms(1000));
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rttvar(), Duration::ZERO);
        // Initial RTO is clamped too.
        let e = RttEstimator::new(ms(10), ms(200), ms(60_000));
        assert_eq!(e.rto(), ms(200));
    }

    #[test]
    fn first_sample_rule() {
        // §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR = 3R.
        let mut e = RttEstimator::new(ms(1000), ms(10), ms(60_000));
        e.sample(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn later_samples_use_alpha_and_beta() {
        let mut e = RttEstimator::new(ms(1000), ms(10), ms(60_000));
        e.sample(ms(100));
        e.sample(ms(200));
        // RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
        assert_eq!(e.rttvar(), us(62_500));
        assert_eq!(e.srtt(), Some(us(112_500)));
        assert_eq!(e.rto(), us(362_500)); // 112.5 + 4*62.5
        e.sample(ms(50));
        // RTTVAR = 3/4*62.5 + 1/4*62.5 = 62.5; SRTT = 7/8*112.5 + 50/8 = 104.6875
        assert_eq!(e.rttvar(), us(62_500));
        assert_eq!(e.srtt(), Some(Duration::from_nanos(104_687_500)));
    }

    #[test]
    fn granularity_floors_variance_term() {
        let mut e = RttEstimator::new(ms(1000), Duration::ZERO, ms(60_000));
        for _ in 0..50 {
            e.sample(us(100));
        }
        // RTTVAR decays towards 0, so 4*RTTVAR < G and RTO = SRTT + G.
        assert_eq!(e.srtt(), Some(us(100)));
        assert!(e.rttvar() * 4 < CLOCK_GRANULARITY);
        assert_eq!(e.rto(), us(1_100));
    }

    #[test]
    fn rto_clamped_to_bounds() {
        let mut e = RttEstimator::new(ms(1000), ms(1000), ms(60_000));
        e.sample(ms(10));
        assert_eq!(e.rto(), ms(1000)); // §2.4 minimum
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(5_000));
        e.sample(ms(4_000));
        assert_eq!(e.rto(), ms(5_000)); // maximum
    }

    #[test]
    fn backoff_doubles_caps_and_sample_clears() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(6_000));
        e.backoff();
        assert_eq!(e.rto(), ms(2000));
        e.backoff();
        assert_eq!(e.rto(), ms(4000));
        e.backoff();
        assert_eq!(e.rto(), ms(6000));
        e.backoff();
        assert_eq!(e.rto(), ms(6000));
        assert_eq!(e.backoffs(), 4);
        e.sample(ms(100));
        assert_eq!(e.rto(), ms(300));
        assert_eq!(e.backoffs(), 0);
    }

    #[test]
    fn min_above_max_is_sane() {
        let e = RttEstimator::new(ms(1000), ms(9000), ms(3000));
        assert_eq!(e.rto(), ms(3000));
    }
}
