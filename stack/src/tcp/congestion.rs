//! Congestion control: how much unacknowledged data the sender may have in
//! flight (cwnd), behind one small trait so algorithms can be swapped.
//!
//! - [`NewReno`]: RFC 5681 slow start and congestion avoidance, the initial
//!   window of RFC 6928. The fast-recovery bookkeeping of RFC 6582 (when
//!   recovery starts and ends, partial ACKs) belongs to the connection; it
//!   calls [`CongestionControl::on_congestion_event`] once per recovery.
//! - [`Cubic`]: RFC 9438, with fast convergence (§4.7) and the Reno-friendly
//!   region (§4.3).
//!
//! # NewReno against CUBIC
//!
//! Simulated seconds to send 10 MiB one way with SACK, timestamps and
//! RACK-TLP, 4 MiB buffers, mean of three seeds for the random-loss links
//! (loss in both directions, 100 Mbit/s, no queue drops), one run for the
//! drop-tail bottlenecks. RTOs are retransmission timeouts per run (the
//! mean, rounded down). `tcp::tests::sim::compare_congestion_control`, an
//! ignored test, prints this table; re-run it with
//! `cargo test -p stack --release --lib compare_congestion -- --ignored --nocapture`.
//!
//! | link                                   | NewReno s | CUBIC s | NewReno RTOs | CUBIC RTOs |
//! |----------------------------------------|-----------|---------|--------------|------------|
//! | 1% loss, 20 ms RTT                     | 10.50     | 8.84    | 0            | 0          |
//! | 5% loss, 20 ms RTT                     | 41.35     | 27.79   | 11           | 0          |
//! | 1% loss, 100 ms RTT                    | 55.22     | 42.67   | 1            | 1          |
//! | 0.1% loss, 100 ms RTT                  | 12.43     | 6.17    | 0            | 0          |
//! | 100 Mbit/s, 64 KiB queue, 20 ms RTT    | 1.21      | 1.01    | 0            | 0          |
//! | 100 Mbit/s, 256 KiB queue, 100 ms RTT  | 3.20      | 4.77    | 1            | 2          |
//!
//! CUBIC wins on every random-loss link (16-50% less time) and on the short
//! bottleneck (17%); it loses the long-RTT bottleneck (49% more time, with
//! one more RTO). `TcpConfig::default()` therefore uses CUBIC.
//!
//! All windows are in bytes. The caller reports only ACKs of new data outside
//! recovery to `on_ack`; `now` is the simulated or real time of the ACK.

use std::time::Duration;

use crate::time::Instant;

/// The largest window we ever grow to: 2^30 bytes, the largest window RFC 7323
/// §2.3 lets a peer advertise (shift 14). Growth stops there, so an
/// application-limited sender cannot inflate cwnd without bound.
pub const MAX_WINDOW: usize = 1 << 30;

/// A congestion controller. One per connection; all sizes in bytes.
pub trait CongestionControl: Send + std::fmt::Debug {
    /// The congestion window, cwnd.
    fn window(&self) -> usize;
    /// The slow-start threshold (`usize::MAX` until the first loss).
    fn ssthresh(&self) -> usize;
    /// `acked` bytes of new data were acknowledged, outside loss recovery.
    /// `rtt` is a valid (Karn-clean) RTT sample taken from this ACK, if any.
    fn on_ack(&mut self, now: Instant, acked: usize, rtt: Option<Duration>);
    /// Loss detected by duplicate ACKs or SACK: enter recovery. Call once per
    /// recovery episode. NewReno: RFC 5681 §3.2 ssthresh = max(FlightSize/2,
    /// 2*SMSS), cwnd = ssthresh; CUBIC: RFC 9438 §4.6 with beta 0.7.
    fn on_congestion_event(&mut self, now: Instant, in_flight: usize);
    /// The retransmission timer expired: RFC 5681 §3.1 ssthresh from the
    /// algorithm's reduction (FlightSize/2 for NewReno, RFC 9438 §4.8
    /// FlightSize*0.7 for CUBIC, at least 2*SMSS), cwnd = 1 SMSS (the loss
    /// window).
    fn on_retransmit_timeout(&mut self, now: Instant, in_flight: usize);
    /// The sender MSS (SMSS) changed, normally once after the handshake.
    /// Before any ACK or loss this also resets cwnd to the RFC 6928 initial
    /// window for the new MSS.
    fn set_mss(&mut self, mss: usize);
    /// The algorithm's name, for logs and statistics.
    fn name(&self) -> &'static str;
}

/// Which algorithm [`new_controller`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    NewReno,
    Cubic,
}

/// A boxed controller of the chosen algorithm for a sender MSS of `mss`.
pub fn new_controller(alg: Algorithm, mss: usize) -> Box<dyn CongestionControl> {
    match alg {
        Algorithm::NewReno => Box::new(NewReno::new(mss)),
        Algorithm::Cubic => Box::new(Cubic::new(mss)),
    }
}

/// RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600)).
pub fn initial_window(mss: usize) -> usize {
    mss.saturating_mul(10)
        .min(mss.saturating_mul(2).max(14_600))
}

/// Slow start (RFC 5681 §3.1, equation 2): cwnd += min(N, SMSS) per ACK.
fn slow_start_increase(acked: usize, mss: usize) -> usize {
    acked.min(mss)
}

/// RFC 5681 §3.1 (ssthresh after loss, equation 4), floored at 2*SMSS.
fn halve(in_flight: usize, mss: usize) -> usize {
    (in_flight / 2).max(mss.saturating_mul(2))
}

/// RFC 5681 congestion control as used by NewReno (RFC 6582).
#[derive(Debug, Clone)]
pub struct NewReno {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance.
    bytes_acked: usize,
    /// No ACK or loss seen yet: `set_mss` may still reset the initial window.
    fresh: bool,
}

impl NewReno {
    /// A controller with the RFC 6928 initial window and an arbitrarily high
    /// ssthresh (RFC 5681 §3.1). An `mss` of 0 is treated as 1.
    pub fn new(mss: usize) -> NewReno {
        let mss = mss.max(1);
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            bytes_acked: 0,
            fresh: true,
        }
    }
}

impl CongestionControl for NewReno {
    fn window(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, _now: Instant, acked: usize, _rtt: Option<Duration>) {
        if acked == 0 {
            return;
        }
        self.fresh = false;
        if self.cwnd < self.ssthresh {
            self.cwnd = self
                .cwnd
                .saturating_add(slow_start_increase(acked, self.mss));
        } else {
            // RFC 5681 §3.1 congestion avoidance, in its RECOMMENDED byte
            // counting form: once a full cwnd of bytes has been acknowledged,
            // cwnd grows by one SMSS. This is one SMSS per RTT whatever the
            // peer's ACK pattern (equation 3, SMSS*SMSS/cwnd per ACK, grows
            // half as fast against a delayed-ACK peer).
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
        self.cwnd = self.cwnd.min(MAX_WINDOW);
    }

    fn on_congestion_event(&mut self, _now: Instant, in_flight: usize) {
        self.fresh = false;
        self.ssthresh = halve(in_flight, self.mss);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    fn on_retransmit_timeout(&mut self, _now: Instant, in_flight: usize) {
        self.fresh = false;
        self.ssthresh = halve(in_flight, self.mss);
        self.cwnd = self.mss;
        self.bytes_acked = 0;
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
        if self.fresh {
            self.cwnd = initial_window(self.mss);
        }
    }

    fn name(&self) -> &'static str {
        "newreno"
    }
}

/// RFC 9438 §5.1: C = 0.4 (segments per second cubed).
const CUBIC_C: f64 = 0.4;
/// RFC 9438 §4.6: the multiplicative decrease factor.
const CUBIC_BETA: f64 = 0.7;
/// RFC 9438 §4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta), the
/// Reno-friendly additive increase that matches Reno's average rate.
const CUBIC_ALPHA: f64 = 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA);

/// CUBIC congestion control, RFC 9438. Windows are kept in bytes as `f64` so
/// the fractional per-ACK increases accumulate; the cubic function itself is
/// evaluated in segments as in the RFC.
#[derive(Debug, Clone)]
pub struct Cubic {
    mss: usize,
    cwnd: f64,
    ssthresh: usize,
    /// W_max (bytes): cwnd before the last reduction, less under fast
    /// convergence (§4.7). 0 before the first congestion event.
    w_max: f64,
    /// cwnd_prior (bytes): cwnd just before the last reduction (§4.3).
    cwnd_prior: f64,
    /// K (seconds): time for W_cubic to climb back to W_max (§4.2).
    k: f64,
    /// When the current congestion-avoidance epoch began (t = 0).
    epoch_start: Option<Instant>,
    /// W_est (bytes): the Reno-friendly estimate (§4.3).
    w_est: f64,
    /// The latest RTT sample (RFC 9438 §4.4 uses it to look one RTT ahead).
    rtt: Duration,
    fresh: bool,
}

impl Cubic {
    /// A controller with the RFC 6928 initial window and no congestion
    /// history. An `mss` of 0 is treated as 1.
    pub fn new(mss: usize) -> Cubic {
        let mss = mss.max(1);
        Cubic {
            mss,
            cwnd: initial_window(mss) as f64,
            ssthresh: usize::MAX,
            w_max: 0.0,
            cwnd_prior: 0.0,
            k: 0.0,
            epoch_start: None,
            w_est: 0.0,
            rtt: Duration::ZERO,
            fresh: true,
        }
    }

    /// W_max in bytes (0 before any congestion event).
    pub fn w_max(&self) -> usize {
        self.w_max as usize
    }

    /// K in seconds for the current epoch.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// RFC 9438 §4.2, equation 1: W_cubic(t) = C*(t-K)^3 + W_max, in bytes.
    fn w_cubic(&self, t: f64) -> f64 {
        let mss = self.mss as f64;
        (CUBIC_C * (t - self.k).powi(3)) * mss + self.w_max
    }

    /// Begins a congestion-avoidance epoch at `now` with the current cwnd.
    fn start_epoch(&mut self, now: Instant) {
        self.epoch_start = Some(now);
        if self.cwnd < self.w_max {
            // §4.2, equation 2: K = cbrt((W_max - cwnd_epoch) / C).
            let segments = (self.w_max - self.cwnd) / self.mss as f64;
            self.k = (segments / CUBIC_C).cbrt();
        } else {
            // No congestion seen (or already past W_max): start at the
            // plateau, so growth is convex from here.
            self.k = 0.0;
            self.w_max = self.cwnd;
        }
        self.w_est = self.cwnd;
    }

    /// §4.6 and §4.7: the bookkeeping shared by both kinds of loss. Returns
    /// the new ssthresh.
    fn reduce(&mut self, in_flight: usize) -> usize {
        self.fresh = false;
        // §4.7 fast convergence: a flow that lost before reaching its
        // previous W_max releases bandwidth to newer flows.
        self.w_max = if self.cwnd < self.w_max {
            self.cwnd * (1.0 + CUBIC_BETA) / 2.0
        } else {
            self.cwnd
        };
        self.cwnd_prior = self.cwnd;
        // §4.6: ssthresh = flight_size * beta_cubic, at least 2 segments.
        let ssthresh = (in_flight as f64 * CUBIC_BETA).round() as usize;
        self.ssthresh = ssthresh.max(self.mss.saturating_mul(2));
        self.ssthresh
    }
}

impl CongestionControl for Cubic {
    fn window(&self) -> usize {
        self.cwnd as usize
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, now: Instant, acked: usize, rtt: Option<Duration>) {
        if let Some(rtt) = rtt {
            self.rtt = rtt;
        }
        if acked == 0 {
            return;
        }
        self.fresh = false;
        if (self.cwnd as usize) < self.ssthresh {
            // §4.10: slow start as in RFC 5681.
            self.cwnd += slow_start_increase(acked, self.mss) as f64;
            self.cwnd = self.cwnd.min(MAX_WINDOW as f64);
            return;
        }
        let epoch_start = match self.epoch_start {
            Some(start) => start,
            None => {
                self.start_epoch(now);
                now
            }
        };
        let t = now.saturating_duration_since(epoch_start).as_secs_f64();
        let acked = acked as f64;
        let mss = self.mss as f64;

        // §4.3: W_est += alpha * segments_acked / cwnd (in segments); alpha
        // becomes 1 once W_est has reached cwnd_prior.
        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            CUBIC_ALPHA
        };
        self.w_est += alpha * acked * mss / self.cwnd;

        if self.w_cubic(t) < self.w_est {
            // §4.3: the Reno-friendly region, cwnd follows W_est.
            self.cwnd = self.w_est;
        } else {
            // §4.4, §4.5: aim at W_cubic one RTT ahead, bounded to
            // [cwnd, 1.5 * cwnd]; grow by (target - cwnd)/cwnd per segment.
            let target = self
                .w_cubic(t + self.rtt.as_secs_f64())
                .clamp(self.cwnd, 1.5 * self.cwnd);
            self.cwnd += (target - self.cwnd) / self.cwnd * acked;
        }
        self.cwnd = self.cwnd.min(MAX_WINDOW as f64);
    }

    fn on_congestion_event(&mut self, now: Instant, in_flight: usize) {
        let ssthresh = self.reduce(in_flight);
        self.cwnd = ssthresh as f64;
        // t counts from the congestion event: the connection does not call
        // on_ack during recovery, so the epoch resumes where it should.
        self.start_epoch(now);
    }

    fn on_retransmit_timeout(&mut self, _now: Instant, in_flight: usize) {
        self.reduce(in_flight);
        // §4.8: back to one segment and slow start; a new epoch starts when
        // cwnd next crosses ssthresh.
        self.cwnd = self.mss as f64;
        self.epoch_start = None;
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
        if self.fresh {
            self.cwnd = initial_window(self.mss) as f64;
        }
    }

    fn name(&self) -> &'static str {
        "cubic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const RTT: Duration = Duration::from_millis(100);

    /// Acknowledges one current cwnd's worth of data in MSS-sized ACKs, all
    /// at `now`, and returns the time one RTT later.
    fn one_rtt(cc: &mut dyn CongestionControl, now: Instant) -> Instant {
        let segments = cc.window() / MSS;
        for _ in 0..segments {
            cc.on_ack(now, MSS, Some(RTT));
        }
        now + RTT
    }

    #[test]
    fn initial_window_rfc6928() {
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(536), 5_360);
        assert_eq!(initial_window(1000), 10_000);
        assert_eq!(initial_window(9000), 18_000);
        assert_eq!(NewReno::new(1460).window(), 14_600);
        assert_eq!(Cubic::new(1460).window(), 14_600);
    }

    #[test]
    fn set_mss_resets_only_fresh_window() {
        for alg in [Algorithm::NewReno, Algorithm::Cubic] {
            let mut cc = new_controller(alg, 536);
            cc.set_mss(1460);
            assert_eq!(cc.window(), 14_600, "{}", cc.name());
            cc.on_ack(Instant::ZERO, 1460, None);
            cc.set_mss(1000);
            assert_eq!(cc.window(), 14_600 + 1460, "{}", cc.name());
        }
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        for alg in [Algorithm::NewReno, Algorithm::Cubic] {
            let mut cc = new_controller(alg, MSS);
            let mut now = Instant::ZERO;
            assert_eq!(cc.window(), 10 * MSS);
            now = one_rtt(cc.as_mut(), now);
            assert_eq!(cc.window(), 20 * MSS, "{}", cc.name());
            one_rtt(cc.as_mut(), now);
            assert_eq!(cc.window(), 40 * MSS, "{}", cc.name());
            assert_eq!(cc.ssthresh(), usize::MAX);
        }
    }

    #[test]
    fn slow_start_increase_capped_at_smss_per_ack() {
        let mut cc = NewReno::new(MSS);
        cc.on_ack(Instant::ZERO, 5 * MSS, None);
        assert_eq!(cc.window(), 11 * MSS);
    }

    #[test]
    fn reno_loss_halves_and_ca_grows_one_mss_per_rtt() {
        let mut cc = NewReno::new(MSS);
        let mut now = Instant::ZERO;
        now = one_rtt(&mut cc, now); // 20 MSS
        cc.on_congestion_event(now, 20 * MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.window(), 10 * MSS);
        for expected in 11..=15 {
            now = one_rtt(&mut cc, now);
            assert_eq!(cc.window(), expected * MSS);
        }
    }

    #[test]
    fn reno_ssthresh_floor_is_two_segments() {
        let mut cc = NewReno::new(MSS);
        cc.on_congestion_event(Instant::ZERO, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.window(), 2 * MSS);
    }

    #[test]
    fn rto_resets_to_one_segment() {
        for alg in [Algorithm::NewReno, Algorithm::Cubic] {
            let mut cc = new_controller(alg, MSS);
            let now = one_rtt(cc.as_mut(), Instant::ZERO);
            cc.on_retransmit_timeout(now, 20 * MSS);
            assert_eq!(cc.window(), MSS, "{}", cc.name());
            let expect = if alg == Algorithm::NewReno { 10 } else { 14 };
            assert_eq!(cc.ssthresh(), expect * MSS, "{}", cc.name());
            // Slow start again up to ssthresh.
            cc.on_ack(now, MSS, None);
            assert_eq!(cc.window(), 2 * MSS);
        }
    }

    #[test]
    fn cubic_loss_multiplies_by_beta() {
        let mut cc = Cubic::new(MSS);
        let now = one_rtt(&mut cc, Instant::ZERO); // 20 MSS
        cc.on_congestion_event(now, 20 * MSS);
        assert_eq!(cc.window(), 14 * MSS);
        assert_eq!(cc.ssthresh(), 14 * MSS);
        assert_eq!(cc.w_max(), 20 * MSS);
    }

    #[test]
    fn cubic_fast_convergence_lowers_w_max() {
        let mut cc = Cubic::new(MSS);
        let now = one_rtt(&mut cc, Instant::ZERO); // 20 MSS
        cc.on_congestion_event(now, 20 * MSS); // W_max 20, cwnd 14
        cc.on_congestion_event(now, 14 * MSS); // cwnd 14 < W_max 20
        assert!(cc.w_max().abs_diff(11_900) <= 1, "{}", cc.w_max());
        assert_eq!(cc.window(), 9800);
    }

    /// Grows a CUBIC window to 100 segments, loses, and follows the regrowth
    /// on simulated time: concave up to W_max around K, convex beyond.
    #[test]
    fn cubic_regrows_to_w_max_around_k() {
        let mut cc = Cubic::new(MSS);
        let mut now = Instant::ZERO;
        while cc.window() < 100 * MSS {
            cc.on_ack(now, MSS, Some(RTT));
        }
        let w_max = cc.window() as f64;
        let event = now;
        cc.on_congestion_event(event, cc.window());
        assert_eq!(cc.window(), (w_max * 0.7).round() as usize);
        // K = cbrt(W_max * (1 - beta) / C) in segments.
        let k = (w_max / MSS as f64 * 0.3 / 0.4).cbrt();
        assert!((cc.k() - k).abs() < 1e-9);
        assert!((4.0..4.5).contains(&k));

        let secs = |now: Instant| (now - event).as_secs_f64();
        let mut at_half_k = None;
        let mut at_k = None;
        while secs(now) < 2.0 * k {
            now = one_rtt(&mut cc, now);
            let w = cc.window() as f64;
            if at_half_k.is_none() && secs(now) >= k / 2.0 {
                at_half_k = Some(w);
            }
            if at_k.is_none() && secs(now) >= k {
                at_k = Some(w);
            }
        }
        let (at_half_k, at_k) = (at_half_k.unwrap(), at_k.unwrap());
        // Concave: most of the way back by K/2 (W_cubic(K/2) ~ 0.96 W_max),
        // yet still below the old maximum.
        assert!(at_half_k > 0.9 * w_max && at_half_k < w_max, "{at_half_k}");
        // At K the window is back at the plateau.
        assert!((at_k - w_max).abs() < 0.03 * w_max, "{at_k} vs {w_max}");
        // Convex beyond K: probing above the old maximum.
        assert!(cc.window() as f64 > 1.2 * w_max, "{}", cc.window());
    }

    /// With a small window and a short RTT, Reno would grow faster than the
    /// cubic curve; CUBIC then follows W_est (§4.3).
    #[test]
    fn cubic_reno_friendly_region() {
        let mut cc = Cubic::new(MSS);
        let rtt = Duration::from_millis(10);
        let mut now = Instant::ZERO;
        cc.on_congestion_event(now, 10 * MSS); // W_max 10, cwnd 7 segments
        assert_eq!(cc.window(), 7 * MSS);
        let mut reno_region_seen = false;
        for _ in 0..50 {
            let segments = cc.window() / MSS;
            for _ in 0..segments {
                cc.on_ack(now, MSS, Some(rtt));
            }
            now += rtt;
            let t = (now - Instant::ZERO).as_secs_f64();
            if (cc.window() as f64) > cc.w_cubic(t) + MSS as f64 {
                reno_region_seen = true;
            }
        }
        assert!(reno_region_seen);
        // W_est grows alpha = 0.53 segments per RTT until it reaches
        // cwnd_prior (3 segments, ~6 RTTs), then 1 per RTT (~44 RTTs): ~47
        // segments, far above W_cubic(0.5 s) ~ 8.8 segments.
        let grown = (cc.window() - 7 * MSS) as f64 / MSS as f64;
        assert!((40.0..52.0).contains(&grown), "{grown}");
    }

    #[test]
    fn names() {
        assert_eq!(new_controller(Algorithm::NewReno, MSS).name(), "newreno");
        assert_eq!(new_controller(Algorithm::Cubic, MSS).name(), "cubic");
    }
}
