//! A device wrapper that misbehaves on purpose: seeded loss, duplication,
//! reordering, corruption, latency and delay, so tests can show the stack
//! survives a bad network and a seed reproduces a run.
//!
//! # Which direction
//!
//! Faults apply to packets this device **sends**; received packets pass
//! through untouched. Wrap both ends of a [`super::mem::MemPair`] to fault
//! both directions (each end with its own seed).
//!
//! # Super-segments
//!
//! The injector advertises the wrapped device's `max_segment`, but cuts a
//! super-segment (`Device::send_tso`) into MSS-sized packets itself and
//! sends each through its faults: a loss is one wire packet, never a
//! whole 64 KiB burst.
//!
//! # Time and determinism
//!
//! Every decision comes from a seeded SplitMix64 generator, drawn in a
//! fixed order per packet (loss, duplicate, then per copy corrupt, bit,
//! delay or reorder). The same seed and the same sequence of `send` calls
//! give the same losses, duplicates and corruptions.
//!
//! Held packets (latency, delay, reordering) are released by the
//! injector's [`Clock`]: at a `send` or `recv_batch` of this device, every
//! packet whose release time has come goes out, in release order.
//! [`FaultInjector::next_release`] says when the next one is due, so a
//! simulation with a [`crate::time::ManualClock`] (see
//! [`FaultInjector::with_clock`]) can jump time to it: then the same seed,
//! the same sends and the same clock readings give the same packets in
//! the same order, byte for byte. With the default [`SystemClock`], release
//! times follow the wall clock and the arrival order of held packets
//! depends on thread scheduling.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Device, PacketBatch};
use crate::time::{Clock, Instant, SystemClock};

/// How long a packet chosen for reordering waits for a later packet to
/// overtake it before it is released anyway.
const REORDER_HOLD: Duration = Duration::from_millis(10);

/// What to do to packets. Probabilities are in `[0, 1]`; the default
/// does nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub seed: u64,
    /// Chance a packet is dropped.
    pub loss: f64,
    /// Chance a packet is sent twice.
    pub duplicate: f64,
    /// Chance a packet is held back until a packet sent after it has gone
    /// out (or for 10 ms past its arrival time). Ignored when `delay` is
    /// set: random delays reorder.
    pub reorder: f64,
    /// Every packet arrives this long after it was sent (a link's one-way
    /// latency); delay and reordering add to it. Default zero: packets
    /// not chosen for delay or reordering go out at once.
    pub latency: Duration,
    /// Chance one random bit of a packet is flipped.
    pub corrupt: f64,
    /// Each packet is held for a uniform random time in `min..=max`.
    pub delay: Option<(Duration, Duration)>,
    /// DoS warning: at most this many packets are held for delay or
    /// reordering; when full, the one due first is released early.
    pub max_held: usize,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            latency: Duration::ZERO,
            corrupt: 0.0,
            delay: None,
            max_held: 1024,
        }
    }
}

/// How many packets each fault touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultStats {
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    pub delayed: u64,
}

/// Wraps a [`Device`] and applies a [`FaultConfig`] to what it sends.
pub struct FaultInjector<D: Device> {
    inner: D,
    config: FaultConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl<D: Device + std::fmt::Debug> std::fmt::Debug for FaultInjector<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    rng: SplitMix64,
    /// Sorted by `release_at`; equal times keep their sending order.
    held: Vec<Held>,
    /// Copies put through so far: each copy's sending order.
    sent: u64,
    stats: FaultStats,
}

#[derive(Debug)]
struct Held {
    release_at: Instant,
    /// Released as soon as a packet sent after it has gone out
    /// (reordering).
    after_next: bool,
    /// The copy's place in sending order.
    seq: u64,
    packet: Vec<u8>,
}

impl<D: Device> FaultInjector<D> {
    /// Faults `inner` by `config`, timing held packets by the wall clock.
    pub fn new(inner: D, config: FaultConfig) -> Self {
        FaultInjector {
            inner,
            state: Mutex::new(State {
                rng: SplitMix64(config.seed),
                held: Vec::new(),
                sent: 0,
                stats: FaultStats::default(),
            }),
            config,
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// Times held packets by `clock` instead of the wall clock (a
    /// [`crate::time::ManualClock`] for simulations). Call it before the
    /// first `send`: held packets keep the times of the clock they were
    /// held under.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn stats(&self) -> FaultStats {
        self.state.lock().stats
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Packets currently held for latency, delay or reordering.
    pub fn held(&self) -> usize {
        self.state.lock().held.len()
    }

    /// When the earliest held packet is due, by this injector's clock;
    /// `None` when nothing is held. A simulation advances its clock to it
    /// and then calls `send` or `recv_batch`, which release it.
    pub fn next_release(&self) -> Option<Instant> {
        self.state.lock().held.first().map(|h| h.release_at)
    }

    /// Sends every held packet now, in release order.
    ///
    /// # Errors
    ///
    /// An I/O error from the wrapped device.
    pub fn flush(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        for held in std::mem::take(&mut state.held) {
            self.inner.send(&held.packet)?;
        }
        Ok(())
    }

    /// Sends the held packets whose time has come; returns when the next
    /// one is due.
    fn release_due(&self, state: &mut State, now: Instant) -> io::Result<Option<Instant>> {
        let due = state.held.partition_point(|h| h.release_at <= now);
        for held in state.held.drain(..due).collect::<Vec<_>>() {
            self.emit(state, &held.packet, held.seq, held.after_next)?;
        }
        Ok(state.held.first().map(|h| h.release_at))
    }

    /// Holds `packet` until `release_at`, releasing the earliest held
    /// packet first if the queue is full.
    fn hold(&self, state: &mut State, held: Held) -> io::Result<()> {
        if self.config.max_held == 0 {
            return self.emit(state, &held.packet, held.seq, held.after_next);
        }
        if state.held.len() >= self.config.max_held {
            let first = state.held.remove(0);
            self.emit(state, &first.packet, first.seq, first.after_next)?;
        }
        let at = state
            .held
            .partition_point(|h| h.release_at <= held.release_at);
        state.held.insert(at, held);
        Ok(())
    }

    /// Sends copy number `seq`; unless it was itself held for reordering,
    /// the packets held for reordering that were sent before it follow it:
    /// it has overtaken them.
    fn emit(&self, state: &mut State, packet: &[u8], seq: u64, after_next: bool) -> io::Result<()> {
        self.inner.send(packet)?;
        if after_next || !state.held.iter().any(|h| h.after_next && h.seq < seq) {
            return Ok(());
        }
        let (overtaken, rest): (Vec<Held>, Vec<Held>) = std::mem::take(&mut state.held)
            .into_iter()
            .partition(|h| h.after_next && h.seq < seq);
        state.held = rest;
        for held in overtaken {
            self.inner.send(&held.packet)?;
        }
        Ok(())
    }
}

impl<D: Device> Device for FaultInjector<D> {
    /// Receives from the wrapped device unchanged, but releases held
    /// packets whose time has come first, and wakes in time to release
    /// the next: the wait is cut at the next release time. The timeout
    /// itself is real time (the wrapped device blocks for real).
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        let until = std::time::Instant::now().checked_add(timeout);
        loop {
            let now = self.clock.now();
            let next = {
                let mut state = self.state.lock();
                self.release_due(&mut state, now)?
            };
            let remaining = match until {
                Some(d) => d.saturating_duration_since(std::time::Instant::now()),
                None => timeout,
            };
            let wait = match next {
                Some(at) => remaining.min(at - now),
                None => remaining,
            };
            let n = self.inner.recv_batch(batch, wait)?;
            if n > 0 || wait >= remaining {
                return Ok(n);
            }
        }
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        let now = self.clock.now();
        let cfg = &self.config;
        let mut state = self.state.lock();
        self.release_due(&mut state, now)?;
        if state.rng.chance(cfg.loss) {
            state.stats.lost += 1;
            return Ok(());
        }
        let copies = if state.rng.chance(cfg.duplicate) {
            state.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let seq = state.sent;
            state.sent += 1;
            let mut copy = None;
            if state.rng.chance(cfg.corrupt) && !packet.is_empty() {
                let bit = state.rng.below(packet.len() as u64 * 8) as usize;
                let mut p = packet.to_vec();
                if let Some(byte) = p.get_mut(bit / 8) {
                    *byte ^= 1 << (bit % 8);
                }
                copy = Some(p);
                state.stats.corrupted += 1;
            }
            let arrival = now + cfg.latency;
            let held = if let Some((min, max)) = cfg.delay {
                let span = max.saturating_sub(min).as_nanos();
                let extra = state.rng.below(u64::try_from(span).unwrap_or(u64::MAX));
                state.stats.delayed += 1;
                Some((arrival + min + Duration::from_nanos(extra), false))
            } else if state.rng.chance(cfg.reorder) {
                state.stats.reordered += 1;
                Some((arrival + REORDER_HOLD, true))
            } else if !cfg.latency.is_zero() {
                Some((arrival, false))
            } else {
                None
            };
            match held {
                Some((release_at, after_next)) => {
                    let packet = copy.unwrap_or_else(|| packet.to_vec());
                    let held = Held {
                        release_at,
                        after_next,
                        seq,
                        packet,
                    };
                    self.hold(&mut state, held)?;
                }
                None => self.emit(&mut state, copy.as_deref().unwrap_or(packet), seq, false)?,
            }
        }
        Ok(())
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn max_packet(&self) -> usize {
        self.inner.max_packet()
    }

    fn max_segment(&self) -> usize {
        self.inner.max_segment()
    }

    // `send_tso` stays the default on purpose: the super-segment is cut
    // into MSS-sized packets in software and each goes through `send`
    // above, so loss, duplication and reordering hit single wire packets,
    // as they do on a real link behind a NIC that segments.
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough to
/// pick faults.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`. Always draws, so the sequence of draws
    /// does not depend on the configured probabilities.
    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a float in [0, 1).
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    /// A value in `0..n` (0 when `n` is 0); the modulo bias is negligible
    /// for picking bits and delays.
    fn below(&mut self, n: u64) -> u64 {
        let x = self.next_u64();
        x.checked_rem(n).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::mem::{MemDevice, MemPair};
    use crate::time::ManualClock;
    use crate::wire::{ipv4::Ipv4Repr, udp::UdpRepr};
    use std::net::Ipv4Addr;

    const N: u32 = 10_000;

    fn faulty(config: FaultConfig) -> (FaultInjector<MemDevice>, MemDevice) {
        let (a, b) = MemPair::new(2 * N as usize + 16, 1500);
        (FaultInjector::new(a, config), b)
    }

    fn send_numbered(dev: &impl Device, n: u32) {
        for i in 0..n {
            dev.send(&i.to_be_bytes()).unwrap();
        }
    }

    fn drain(dev: &MemDevice) -> Vec<Vec<u8>> {
        let mut batch = PacketBatch::new(256, 1500);
        let mut out = Vec::new();
        while dev.recv_batch(&mut batch, Duration::ZERO).unwrap() > 0 {
            out.extend(batch.iter().map(<[u8]>::to_vec));
        }
        out
    }

    fn numbers(packets: &[Vec<u8>]) -> Vec<u32> {
        packets
            .iter()
            .map(|p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
            .collect()
    }

    fn lossy_run(seed: u64) -> Vec<u32> {
        let (a, b) = faulty(FaultConfig {
            seed,
            loss: 0.3,
            ..FaultConfig::default()
        });
        send_numbered(&a, 1000);
        numbers(&drain(&b))
    }

    #[test]
    fn default_config_changes_nothing() {
        let (a, b) = faulty(FaultConfig::default());
        send_numbered(&a, 100);
        assert_eq!(numbers(&drain(&b)), (0..100).collect::<Vec<_>>());
        assert_eq!(a.stats(), FaultStats::default());
    }

    #[test]
    fn same_seed_same_drops() {
        let first = lossy_run(7);
        assert_eq!(lossy_run(7), first);
        assert_ne!(lossy_run(8), first);
    }

    #[test]
    fn loss_rate_within_tolerance() {
        let (a, b) = faulty(FaultConfig {
            seed: 42,
            loss: 0.2,
            ..FaultConfig::default()
        });
        send_numbered(&a, N);
        let got = drain(&b).len() as u64;
        // Binomial(10000, 0.2): sd = 40, so +-400 is 10 sd.
        assert!((7600..=8400).contains(&got), "{got} arrived");
        assert_eq!(a.stats().lost, u64::from(N) - got);
    }

    #[test]
    fn duplicates_arrive_twice() {
        let (a, b) = faulty(FaultConfig {
            seed: 3,
            duplicate: 0.5,
            ..FaultConfig::default()
        });
        send_numbered(&a, 1000);
        let got = numbers(&drain(&b));
        let dups = a.stats().duplicated;
        assert!((400..=600).contains(&dups), "{dups}");
        assert_eq!(got.len() as u64, 1000 + dups);
        // Each copy follows its original directly, and order is kept.
        let mut dedup = got.clone();
        dedup.dedup();
        assert_eq!(dedup, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn corruption_is_caught_by_checksums() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 2);
        let udp = UdpRepr {
            src_port: 40000,
            dst_port: 7,
            payload: b"a payload worth protecting",
        };
        let ip = Ipv4Repr {
            src,
            dst,
            protocol: crate::wire::udp::PROTOCOL,
            ttl: 64,
            payload_len: udp.buffer_len(),
        };
        let mut packet = vec![0u8; ip.buffer_len()];
        ip.emit(&mut packet).unwrap();
        udp.emit(src, dst, &mut packet[20..]).unwrap();

        let (a, b) = faulty(FaultConfig {
            seed: 11,
            corrupt: 1.0,
            ..FaultConfig::default()
        });
        for _ in 0..1000 {
            a.send(&packet).unwrap();
        }
        let got = drain(&b);
        assert_eq!(got.len(), 1000);
        assert_eq!(a.stats().corrupted, 1000);
        for p in &got {
            let diff: u32 = p
                .iter()
                .zip(&packet)
                .map(|(x, y)| (x ^ y).count_ones())
                .sum();
            assert_eq!(diff, 1, "exactly one bit flipped");
            let accepted = Ipv4Repr::parse(p)
                .and_then(|(ip, payload)| UdpRepr::parse(ip.src, ip.dst, payload, true));
            assert!(accepted.is_err(), "corruption slipped through: {p:02x?}");
        }
    }

    #[test]
    fn delayed_packets_all_arrive() {
        let (a, b) = faulty(FaultConfig {
            seed: 5,
            delay: Some((Duration::from_millis(1), Duration::from_millis(20))),
            ..FaultConfig::default()
        });
        send_numbered(&a, 200);
        assert_eq!(a.stats().delayed, 200);
        assert!(a.held() > 0);
        // Only the injector's own recv calls release held packets: a
        // receive with a long timeout must still wake to release them.
        let mut scratch = PacketBatch::new(4, 64);
        let started = std::time::Instant::now();
        a.recv_batch(&mut scratch, Duration::from_millis(100))
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(a.held(), 0);
        let mut got = numbers(&drain(&b));
        got.sort_unstable();
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn reordering_keeps_every_packet() {
        let (a, b) = faulty(FaultConfig {
            seed: 9,
            reorder: 0.2,
            ..FaultConfig::default()
        });
        send_numbered(&a, 1000);
        a.flush().unwrap();
        let got = numbers(&drain(&b));
        assert!(a.stats().reordered > 100);
        assert_ne!(got, (0..1000).collect::<Vec<_>>());
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    }

    fn manual(config: FaultConfig) -> (FaultInjector<MemDevice>, MemDevice, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Instant::ZERO));
        let (a, b) = faulty(config);
        (a.with_clock(clock.clone()), b, clock)
    }

    #[test]
    fn latency_releases_by_the_injected_clock_in_order() {
        let (a, b, clock) = manual(FaultConfig {
            latency: Duration::from_millis(5),
            ..FaultConfig::default()
        });
        send_numbered(&a, 3);
        clock.advance(Duration::from_millis(1));
        send_numbered(&a, 2);
        assert_eq!(a.next_release(), Some(Instant::from_millis(5)));
        // However long the wall clock runs, simulated time has not come.
        let mut scratch = PacketBatch::new(4, 64);
        a.recv_batch(&mut scratch, Duration::from_millis(5))
            .unwrap();
        assert_eq!((a.held(), drain(&b).len()), (5, 0));
        clock.set(Instant::from_millis(5));
        a.recv_batch(&mut scratch, Duration::ZERO).unwrap();
        assert_eq!(numbers(&drain(&b)), vec![0, 1, 2]);
        assert_eq!(a.next_release(), Some(Instant::from_millis(6)));
        clock.set(Instant::from_millis(6));
        a.recv_batch(&mut scratch, Duration::ZERO).unwrap();
        assert_eq!(numbers(&drain(&b)), vec![0, 1]);
        assert_eq!(a.next_release(), None);
    }

    #[test]
    fn reordered_packet_follows_the_next_one_sent_after_it() {
        let (a, b, clock) = manual(FaultConfig {
            seed: 1,
            reorder: 0.3,
            latency: Duration::from_millis(2),
            ..FaultConfig::default()
        });
        for i in 0..200u32 {
            a.send(&i.to_be_bytes()).unwrap();
            clock.advance(Duration::from_micros(100));
        }
        while let Some(at) = a.next_release() {
            clock.set(at);
            a.recv_batch(&mut PacketBatch::new(1, 64), Duration::ZERO)
                .unwrap();
        }
        let got = numbers(&drain(&b));
        assert!(a.stats().reordered > 30);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..200).collect::<Vec<_>>());
        // Packets 100 us apart and a 10 ms hold: every reordered packet is
        // overtaken by a later one, and no other packet is. So the packets
        // that arrive after a higher-numbered one are exactly the
        // reordered ones.
        let mut highest = None;
        let mut late = 0;
        for &n in &got {
            if highest.is_some_and(|h| h > n) {
                late += 1;
            }
            highest = highest.max(Some(n));
        }
        assert_eq!(late, a.stats().reordered);
    }

    #[test]
    fn same_seed_and_clock_give_the_same_arrival_order() {
        let run = |seed| {
            let (a, b, clock) = manual(FaultConfig {
                seed,
                loss: 0.1,
                duplicate: 0.1,
                reorder: 0.2,
                delay: Some((Duration::from_millis(1), Duration::from_millis(9))),
                ..FaultConfig::default()
            });
            for i in 0..500u32 {
                a.send(&i.to_be_bytes()).unwrap();
                clock.advance(Duration::from_micros(300));
            }
            while let Some(at) = a.next_release() {
                clock.set(at);
                a.recv_batch(&mut PacketBatch::new(1, 64), Duration::ZERO)
                    .unwrap();
            }
            numbers(&drain(&b))
        };
        let first = run(3);
        assert_eq!(run(3), first);
        assert_ne!(run(4), first);
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_ne!(sorted, first, "random delays reorder");
    }

    #[test]
    fn held_queue_is_bounded() {
        let (a, b) = faulty(FaultConfig {
            delay: Some((Duration::from_secs(10), Duration::from_secs(10))),
            max_held: 4,
            ..FaultConfig::default()
        });
        send_numbered(&a, 10);
        assert_eq!(a.held(), 4);
        // The earliest were pushed out early, in order.
        assert_eq!(numbers(&drain(&b)), (0..6).collect::<Vec<_>>());
    }
}
