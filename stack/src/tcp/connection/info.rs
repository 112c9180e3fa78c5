//! What the application may look at without changing anything: a
//! [`TcpInfo`] report, what Linux's `getsockopt(TCP_INFO)` gives, and
//! [`Connection::peek`], a read that leaves the bytes in place (`recv`
//! with `MSG_PEEK`).
//!
//! Every quantity is read from the part that owns it (the RTT estimator,
//! congestion control, the sequence spaces, the counters); nothing here
//! keeps state of its own.

use std::time::Duration;

use super::Connection;
use crate::tcp::congestion::MAX_WINDOW;
use crate::tcp::error::RecvError;
use crate::tcp::state::State;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// One connection's transport state at one moment, as Linux's
/// `struct tcp_info` reports it. Sizes are in bytes (Linux counts `cwnd`,
/// `unacked` and `in_flight` in segments: divide by `snd_mss`, or see
/// [`TcpInfo::cwnd_segments`]); where a quantity counts sequence space (a
/// SYN or FIN occupies one number), the field says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpInfo {
    /// The RFC 9293 state (`tcpi_state`).
    pub state: State,
    /// The smoothed RTT (RFC 6298 SRTT, `tcpi_rtt`); `None` before the
    /// first sample.
    pub srtt: Option<Duration>,
    /// The RTT variation (RFC 6298 RTTVAR, `tcpi_rttvar`); zero before the
    /// first sample.
    pub rttvar: Duration,
    /// The retransmission timeout in force, back-off included
    /// (`tcpi_rto`).
    pub rto: Duration,
    /// Retransmission timeouts in a row without progress (`tcpi_backoff`).
    pub rto_backoffs: u32,
    /// Payload bytes in a full-sized segment we send, after the peer's MSS,
    /// the path MTU and our fixed options (`tcpi_snd_mss`).
    pub snd_mss: usize,
    /// The MSS our SYN advertised (`tcpi_advmss`).
    pub advmss: usize,
    /// The congestion window, in bytes (`tcpi_snd_cwnd` is in segments).
    pub cwnd: usize,
    /// The slow-start threshold in bytes; `None` while it is still the
    /// initial "arbitrarily high" value of RFC 5681 §3.1 (Linux reports
    /// `TCP_INFINITE_SSTHRESH` then).
    pub ssthresh: Option<usize>,
    /// Sequence space estimated to be in the network: RFC 6675's `pipe`
    /// during SACK-based recovery, else SND.NXT - SND.UNA (after a
    /// timeout's go-back that is only what was resent since, as Linux
    /// counts everything before it lost).
    pub in_flight: usize,
    /// Sequence space sent and not yet acknowledged, SND.MAX - SND.UNA
    /// (RFC 5681's FlightSize; `tcpi_unacked` counts it in segments).
    pub unacked: usize,
    /// Segments sent again, SYNs included (`tcpi_total_retrans`).
    pub retransmits: u64,
    /// Payload bytes sent, retransmissions included (`tcpi_bytes_sent`).
    pub bytes_sent: u64,
    /// Payload bytes sent again (`tcpi_bytes_retrans`).
    pub bytes_retransmitted: u64,
    /// Payload bytes the peer acknowledged (`tcpi_bytes_acked`).
    pub bytes_acked: u64,
    /// Payload bytes received in order (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// The rate the peer received our data at, in bytes per second
    /// (`tcpi_delivery_rate`): bytes acknowledged over the last interval
    /// of about one SRTT (see `connection/delivery.rs`). 0 before the
    /// first interval ends; kept through idle pauses, as Linux keeps its
    /// last sample.
    pub delivery_rate: u64,
    /// Bytes queued and not yet acknowledged (`SIOCOUTQ`).
    pub send_queue: usize,
    /// Bytes ready to read (`SIOCINQ`).
    pub recv_queue: usize,
    /// The peer's window in bytes, scaled (`tcpi_snd_wnd`).
    pub peer_window: usize,
    /// The window we last advertised, in bytes (`tcpi_rcv_wnd`).
    pub recv_window: usize,
    /// SACK was negotiated (`TCPI_OPT_SACK`).
    pub sack: bool,
    /// Timestamps were negotiated (`TCPI_OPT_TIMESTAMPS`).
    pub timestamps: bool,
    /// (our shift, the peer's shift) when window scaling is in use
    /// (`tcpi_rcv_wscale`, `tcpi_snd_wscale`).
    pub window_scale: Option<(u8, u8)>,
}

impl TcpInfo {
    /// The congestion window in full-sized segments, Linux's unit for
    /// `tcpi_snd_cwnd`.
    pub fn cwnd_segments(&self) -> usize {
        self.cwnd / self.snd_mss.max(1)
    }
}

impl Connection {
    /// The connection's [`TcpInfo`] at `now`.
    ///
    /// `now` is not read yet; it is there for values that age.
    pub fn info(&self, now: Instant) -> TcpInfo {
        let _ = now;
        let sack_recovery = self.loss.in_recovery() && self.opts.sack();
        let in_flight = if sack_recovery {
            self.pipe()
        } else {
            self.snd.flight()
        };
        let srtt = self.rtt.srtt();
        let ssthresh = self.cc.ssthresh();
        TcpInfo {
            state: self.state,
            srtt,
            rttvar: self.rtt.rttvar(),
            rto: self.rtt.rto(),
            rto_backoffs: self.backoff.retransmits(),
            snd_mss: self.payload_mss(),
            advmss: usize::from(self.config.mss),
            cwnd: self.cc.window(),
            ssthresh: (ssthresh < MAX_WINDOW).then_some(ssthresh),
            in_flight,
            unacked: self.snd.outstanding(),
            retransmits: self.stats.segs_retransmitted,
            bytes_sent: self.stats.bytes_sent,
            bytes_retransmitted: self.stats.bytes_retransmitted,
            bytes_acked: self.bytes_acked(),
            bytes_received: self.stats.bytes_received,
            delivery_rate: self.delivery.rate(),
            send_queue: self.send_queue(),
            recv_queue: self.recv_queue(),
            peer_window: self.snd.wnd(),
            recv_window: self.rcv.window(),
            sack: self.sack_enabled(),
            timestamps: self.timestamps_enabled(),
            window_scale: self.window_scale(),
        }
    }

    /// Like [`recv`](Self::recv), but the bytes stay to be read again:
    /// `Ok(0)` with a non-empty `buf` means nothing yet (would block).
    ///
    /// # Errors
    ///
    /// As `recv`: `Finished` once the peer's FIN has been read past,
    /// `Conn` when the connection failed, `InvalidState` when it was
    /// closed locally without a FIN.
    pub fn peek(&self, buf: &mut [u8]) -> Result<usize, RecvError> {
        if let Some(e) = self.error {
            return Err(RecvError::Conn(e));
        }
        let n = self.rcv.buf().peek(buf);
        self.read_outcome(n, buf.is_empty())
    }

    /// Payload bytes acknowledged: see [`acked_payload`].
    fn bytes_acked(&self) -> u64 {
        if !self.snd.syn_acked() {
            return 0;
        }
        let unacked = self.snd.outstanding().min(self.snd.buf().len()) as u64;
        let first_sends = self
            .stats
            .bytes_sent
            .saturating_sub(self.stats.bytes_retransmitted);
        acked_payload(
            self.snd.iss(),
            self.snd.una(),
            self.snd.fin_acked(),
            first_sends.saturating_sub(unacked),
        )
    }
}

/// Payload bytes acknowledged once SND.UNA has reached `una` (our SYN
/// acknowledged, and our FIN if `fin_acked`). SND.UNA's distance from the
/// first data byte is exact but wraps every 4 GiB; `approx`, the payload
/// sent for the first time less what is unacknowledged, picks the lap. It
/// drifts from the truth only by a zero-window probe byte now and then,
/// far less than the 2 GiB that would pick the wrong lap.
fn acked_payload(iss: SeqNumber, una: SeqNumber, fin_acked: bool, approx: u64) -> u64 {
    let first = iss + 1;
    let mut lap = una.0.wrapping_sub(first.0);
    if fin_acked {
        lap = lap.wrapping_sub(1);
    }
    nearest_in_lap(lap, approx)
}

/// The number nearest `approx` whose low 32 bits are `lap`.
fn nearest_in_lap(lap: u32, approx: u64) -> u64 {
    const LAP: u64 = 1 << 32;
    let here = (approx & !(LAP - 1)) | u64::from(lap);
    [here.checked_sub(LAP), Some(here), here.checked_add(LAP)]
        .into_iter()
        .flatten()
        .min_by_key(|&c| c.abs_diff(approx))
        .unwrap_or(here)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tcp::config::DEFAULT_PEER_MSS;
    use crate::tcp::congestion::initial_window;
    use crate::tcp::error::ConnError;
    use crate::tcp::tests::*;
    use crate::tcp::TcpConfig;
    use crate::wire::tcp::{TcpOptions, TcpRepr, Timestamps};

    fn millis(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    // ---- Tests for the SYN-SENT state -------------------------------------

    #[test]
    fn test_syn_sent_info_is_the_configured_start() {
        let config = cfg();
        let c = syn_sent_with(&config);
        let info = c.info(ms(0));
        let mss = usize::from(DEFAULT_PEER_MSS);
        assert_eq!(info.state, State::SynSent);
        assert_eq!(info.srtt, None);
        assert_eq!(info.rttvar, Duration::ZERO);
        assert_eq!(info.rto, config.initial_rto);
        assert_eq!(info.rto_backoffs, 0);
        // No SYN from the peer yet: RFC 9293 §3.7.1's default MSS.
        assert_eq!(info.snd_mss, mss);
        assert_eq!(info.advmss, usize::from(config.mss));
        assert_eq!(info.cwnd, initial_window(mss));
        assert_eq!(info.ssthresh, None);
        // The SYN is the flight: one sequence number.
        assert_eq!((info.in_flight, info.unacked), (1, 1));
        assert_eq!(
            (info.retransmits, info.bytes_sent, info.bytes_acked),
            (0, 0, 0)
        );
        assert_eq!(info.delivery_rate, 0);
        assert_eq!((info.send_queue, info.recv_queue), (0, 0));
        assert!(!info.sack && !info.timestamps);
        assert_eq!(info.window_scale, None);
    }

    #[test]
    fn test_syn_sent_retransmission_counts_and_backs_off() {
        let config = cfg();
        let mut c = syn_sent_with(&config);
        c.handle_timeout(ms(1000));
        recv!(c, time 1000, SYN, seq LOCAL_ISS, ack 0);
        let info = c.info(ms(1000));
        assert_eq!(info.retransmits, 1);
        assert_eq!(info.rto_backoffs, 1);
        assert_eq!(info.rto, config.initial_rto * 2);
    }

    // ---- Tests for the ESTABLISHED state ----------------------------------

    /// ESTABLISHED by active open: SYN at t=0, the SYN-ACK (MSS 1460) at
    /// t=100, so one RTT sample of 100 ms.
    fn established_after_100ms() -> Connection {
        let mut c = syn_sent();
        let syn_ack = TcpRepr {
            flags: SYN | ACK,
            ack: SeqNumber(L),
            ..SYN_TEMPL
        };
        send!(c, time 100, syn_ack);
        assert_eq!(c.state(), State::Established);
        recv!(c, time 100, ACK, seq L, ack R);
        c
    }

    #[test]
    fn test_established_info_after_the_handshake() {
        let c = established_after_100ms();
        let info = c.info(ms(100));
        assert_eq!(info.state, State::Established);
        // RFC 6298 §2.2: SRTT <- R, RTTVAR <- R/2, RTO <- SRTT + 4*RTTVAR.
        assert_eq!(info.srtt, Some(millis(100)));
        assert_eq!(info.rttvar, millis(50));
        assert_eq!(info.rto, millis(300));
        assert_eq!(info.snd_mss, 1460);
        // RFC 6928: ten segments of the peer's MSS.
        assert_eq!(info.cwnd, 10 * 1460);
        assert_eq!(info.cwnd_segments(), 10);
        assert_eq!(info.ssthresh, None);
        assert_eq!((info.in_flight, info.unacked), (0, 0));
        assert_eq!(info.bytes_acked, 0);
        assert_eq!(info.peer_window, 0xffff);
        assert_eq!(info.recv_window, RECV_BUF);
        assert_eq!(info.delivery_rate, 0);
    }

    #[test]
    fn test_established_passive_info_has_the_handshake_sample() {
        // The fixture's handshake ACK came at once: an RTT sample of 0,
        // and the RTO floors at `min_rto`.
        let c = established();
        let info = c.info(ms(0));
        assert_eq!(info.state, State::Established);
        assert_eq!(info.srtt, Some(Duration::ZERO));
        assert_eq!(info.rto, cfg().min_rto);
        assert_eq!(info.cwnd, 10 * 1460);
        assert_eq!((info.in_flight, info.unacked, info.bytes_acked), (0, 0, 0));
    }

    #[test]
    fn test_established_info_counts_data_in_flight_and_acked() {
        let mut c = established_after_100ms();
        assert_eq!(c.send(&[7; 3000]), Ok(3000));
        let sent = drain(&mut c, 200);
        assert_eq!(sent.len(), 3, "1460 + 1460 + 80");
        let info = c.info(ms(200));
        assert_eq!((info.in_flight, info.unacked), (3000, 3000));
        assert_eq!(info.send_queue, 3000);
        assert_eq!(info.bytes_sent, 3000);
        assert_eq!(info.bytes_acked, 0);
        // Nothing acknowledged yet: no interval measured.
        assert_eq!(info.delivery_rate, 0);

        // The first two segments are acknowledged 100 ms later: a second
        // RTT sample of 100 ms, and slow start grows cwnd by one MSS per
        // ACK (RFC 5681 §3.1).
        send!(c, time 300, seg(ACK, R, L + 2920));
        let info = c.info(ms(300));
        assert_eq!(info.srtt, Some(millis(100)));
        assert_eq!(info.rttvar, millis(50) * 3 / 4);
        assert_eq!((info.in_flight, info.unacked), (80, 80));
        assert_eq!(info.bytes_acked, 2920);
        assert_eq!(info.send_queue, 80);
        assert_eq!(info.cwnd, 11 * 1460);
        assert_eq!(info.retransmits, 0);

        send!(c, time 310, seg(ACK, R, L + 3000));
        let info = c.info(ms(310));
        assert_eq!(info.bytes_acked, 3000);
        assert_eq!((info.in_flight, info.send_queue), (0, 0));
        assert_eq!(info.delivery_rate, 0, "an interval is one SRTT long");

        // 10,000 more bytes, acknowledged at 410: the interval that began
        // with the ACK at 300 now spans 110 ms and 10,080 bytes.
        assert_eq!(c.send(&[7; 10_000]), Ok(10_000));
        drain(&mut c, 310);
        send!(c, time 410, seg(ACK, R, L + 13_000));
        assert_eq!(c.info(ms(410)).delivery_rate, 10_080 * 1_000_000 / 110_000);
    }

    #[test]
    fn test_established_info_after_a_retransmission_timeout() {
        let mut c = established_after_100ms();
        assert_eq!(c.send(&[7; 1000]), Ok(1000));
        drain(&mut c, 200);
        c.handle_timeout(ms(500));
        let resent = drain(&mut c, 500);
        assert_eq!(resent.len(), 1);
        let info = c.info(ms(500));
        assert_eq!(info.retransmits, 1);
        assert_eq!(info.bytes_retransmitted, 1000);
        assert_eq!(info.bytes_sent, 2000);
        assert_eq!(info.rto_backoffs, 1);
        assert_eq!(info.rto, millis(600));
        // RFC 5681 §3.1 equation 4 after a timeout: one segment, and
        // ssthresh = max(FlightSize / 2, 2*SMSS).
        assert_eq!(info.cwnd, 1460);
        assert_eq!(info.ssthresh, Some(2 * 1460));
        send!(c, time 600, seg(ACK, R, L + 1000));
        let info = c.info(ms(600));
        assert_eq!(info.bytes_acked, 1000);
        assert_eq!(info.rto_backoffs, 0);
    }

    #[test]
    fn test_established_info_reports_negotiated_options() {
        let config = TcpConfig {
            sack: true,
            timestamps: true,
            window_scaling: true,
            recv_buffer: 1 << 20,
            ..cfg()
        };
        let syn = TcpRepr {
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some(Timestamps { tsval: 1, tsecr: 0 }),
                ..NO_OPTIONS
            },
            ..SYN_TEMPL
        };
        let c = syn_received_with(&config, &syn);
        let info = c.info(ms(0));
        assert_eq!(info.state, State::SynReceived);
        assert!(info.sack && info.timestamps);
        assert_eq!(info.window_scale.map(|(_, peer)| peer), Some(7));
        // RFC 7323 §3: the timestamps option's 12 bytes leave 1448.
        assert_eq!(info.snd_mss, 1448);
        assert_eq!(info.cwnd, 10 * 1448);
    }

    // ---- peek -------------------------------------------------------------

    #[test]
    fn test_established_peek_leaves_the_bytes_to_read() {
        let mut c = established();
        let mut buf = [0u8; 4];
        assert_eq!(c.peek(&mut buf), Ok(0));
        send!(c, time 1, data(R, L, b"abcdef"));
        assert_eq!(c.peek(&mut buf), Ok(4));
        assert_eq!(&buf, b"abcd");
        assert_eq!(c.peek(&mut buf), Ok(4));
        assert_eq!(c.recv_queue(), 6);
        let mut all = [0u8; 8];
        assert_eq!(c.recv(&mut all), Ok(6));
        assert_eq!(&all[..6], b"abcdef");
    }

    #[test]
    fn test_close_wait_peek_reports_the_end_after_the_data() {
        let c = close_wait();
        assert_eq!(c.peek(&mut [0; 4]), Err(RecvError::Finished));
        assert_eq!(c.peek(&mut []), Ok(0));
    }

    #[test]
    fn test_established_peek_reports_a_reset() {
        let mut c = established();
        send!(c, time 1, data(R, L, b"abc"));
        send!(c, time 2, seg(RST, R + 3, 0));
        assert_eq!(c.peek(&mut [0; 4]), Err(RecvError::Conn(ConnError::Reset)));
    }

    // ---- Helpers ------------------------------------------------------------

    #[test]
    fn acked_payload_is_exact_past_2_and_4_gib() {
        const GIB: u64 = 1 << 30;
        let iss = SeqNumber(u32::MAX - 100);
        let at = |acked: u64| iss + 1 + (acked % (1 << 32)) as usize;
        assert_eq!(acked_payload(iss, iss + 1, false, 0), 0);
        for acked in [1000, 3 * GIB, 5 * GIB + 7, 9 * GIB] {
            // The estimate may be off a little either way.
            for approx in [acked - 10, acked, acked + 10] {
                assert_eq!(acked_payload(iss, at(acked), false, approx), acked);
            }
            // Our FIN takes one sequence number after the data.
            assert_eq!(acked_payload(iss, at(acked) + 1, true, acked), acked);
        }
    }

    #[test]
    fn nearest_in_lap_places_the_low_32_bits_near_the_estimate() {
        const LAP: u64 = 1 << 32;
        assert_eq!(nearest_in_lap(5, 3), 5);
        assert_eq!(nearest_in_lap(5, LAP + 7), LAP + 5);
        // Either side of a lap boundary.
        assert_eq!(nearest_in_lap(u32::MAX, LAP + 2), LAP - 1);
        assert_eq!(nearest_in_lap(1, LAP - 2), LAP + 1);
        assert_eq!(nearest_in_lap(0, 0), 0);
        assert_eq!(nearest_in_lap(u32::MAX, u64::MAX), u64::MAX);
    }
}
