//! A deterministic network of two stacks, for whole-stack tests.
//!
//! Two [`Stack::driven`] stacks, A and B, are joined by a
//! [`MemPair`]; each end sends through a seeded [`FaultInjector`] (loss,
//! duplication, reordering, latency) and records what crosses it with a
//! [`PcapWriter`]. One [`ManualClock`] is the time of everything: no
//! thread runs, nothing sleeps, and the test calls the sockets (in
//! non-blocking mode) between steps.
//!
//! [`Sim::drive_bounded`] alternates: poll both stacks, let the
//! application act, and when neither did anything, jump the clock to the
//! next wakeup (a stack's earliest timer, a link's next held packet, or a
//! time the application asked for). So a run takes as much simulated time
//! as the protocol needs and as little wall time as the work needs, and a
//! seed replays it exactly: the captures are identical byte for byte.

#![allow(dead_code, unreachable_pub)]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use stack::device::fault::{FaultConfig, FaultInjector};
use stack::device::mem::{MemDevice, MemPair};
use stack::device::pcap::PcapWriter;
use stack::tcp::state::State;
use stack::time::{Clock, Instant, ManualClock};
use stack::{Config, Stack, TcpListener, TcpStream};

pub const A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

/// Packets each direction of the memory link holds.
const LINK_DEPTH: usize = 4096;
const MTU: usize = 1500;

/// One end's device: faults on what it sends, and a capture of both
/// directions of its link (what it sent after the faults, and what it
/// received).
pub type Link = FaultInjector<PcapWriter<MemDevice>>;

/// A stack and its end of the link.
pub struct Node {
    pub stack: Stack,
    pub link: Arc<Link>,
    capture: Capture,
}

/// What [`Sim::drive_bounded`]'s application callback did this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The goal is reached: stop driving.
    Done,
    /// It moved bytes: look again before time moves on.
    Busy,
    /// Nothing to do until something arrives.
    Idle,
    /// Nothing to do until something arrives or this time comes.
    Sleep(Instant),
}

pub struct Sim {
    pub clock: Arc<ManualClock>,
    pub a: Node,
    pub b: Node,
}

impl Sim {
    /// Two stacks at A and B over links faulted by `faults` (A's link with
    /// its seed, B's with a seed derived from it); `seed` also keys both
    /// stacks.
    pub fn new(seed: u64, faults: FaultConfig, a: Config, b: Config) -> Sim {
        Sim::with_max_segment(seed, faults, a, b, MTU)
    }

    /// Like [`Sim::new`], but both devices advertise `max_segment` (see
    /// `MemPair::with_max_segment`): the stacks build TCP super-segments
    /// that the fault injectors cut into MTU-sized packets, so every
    /// fault hits one wire packet.
    pub fn with_max_segment(
        seed: u64,
        faults: FaultConfig,
        a: Config,
        b: Config,
        max_segment: usize,
    ) -> Sim {
        let clock = Arc::new(ManualClock::new(Instant::ZERO));
        let (da, db) = MemPair::with_max_segment(LINK_DEPTH, MTU, max_segment);
        // Not `seed ^ constant`: SplitMix64 steps its state by a
        // constant, so related seeds can give shifted copies of one
        // sequence.
        let b_faults = FaultConfig {
            seed: faults.seed.wrapping_add(0x5851_f42d_4c95_7f2d),
            ..faults.clone()
        };
        let a = Node::new(da, faults, a, &clock, seed);
        let b = Node::new(db, b_faults, b, &clock, seed.wrapping_add(1));
        Sim { clock, a, b }
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Polls A, then B; returns the packets and timers they handled plus
    /// the packets left waiting on the links (polling B may have released
    /// packets to A, and a batch holds only so many).
    pub fn poll(&self) -> usize {
        let a = self.a.stack.poll().expect("poll A");
        let b = self.b.stack.poll().expect("poll B");
        a + b + self.a.waiting() + self.b.waiting()
    }

    /// The earliest time anything in the network is due: a stack's
    /// timer or a packet held on a link.
    pub fn next_wakeup(&self) -> Option<Instant> {
        [
            self.a.stack.poll_at(),
            self.b.stack.poll_at(),
            self.a.link.next_release(),
            self.b.link.next_release(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the network and `app` until `app` says [`Flow::Done`]; returns
    /// the number of steps taken.
    ///
    /// # Panics
    ///
    /// When nothing is left to happen and `app` is not done (a deadlock),
    /// or after `max_steps` steps (a livelock: busy without finishing).
    pub fn drive_bounded(&mut self, max_steps: u64, mut app: impl FnMut(&Sim) -> Flow) -> u64 {
        for step in 0..max_steps {
            let work = self.poll();
            let wake = match app(self) {
                Flow::Done => return step,
                Flow::Busy => continue,
                Flow::Idle => None,
                Flow::Sleep(at) => Some(at),
            };
            if work > 0 {
                continue;
            }
            let next = match (self.next_wakeup(), wake) {
                (Some(x), Some(y)) => x.min(y),
                (x, y) => x.or(y).unwrap_or_else(|| {
                    panic!(
                        "deadlock at {:?}: nothing scheduled and the application is waiting\nA: {:?}\nB: {:?}",
                        self.now(),
                        self.a.stack.sockets(),
                        self.b.stack.sockets(),
                    )
                }),
            };
            if next > self.now() {
                self.clock.set(next);
            }
        }
        panic!(
            "livelock: not done after {max_steps} steps ({:?} simulated)",
            self.now()
        );
    }

    /// Runs the network until `listener` (non-blocking) accepts; returns
    /// the connection, non-blocking too.
    ///
    /// # Panics
    ///
    /// On an accept error other than `WouldBlock`, or as `drive_bounded`.
    pub fn accept(&mut self, max_steps: u64, listener: &TcpListener) -> TcpStream {
        let mut accepted = None;
        self.drive_bounded(max_steps, |_| match listener.accept() {
            Ok((s, _)) => {
                accepted = Some(s);
                Flow::Done
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Flow::Idle,
            Err(e) => panic!("accept: {e}"),
        });
        let stream = accepted.expect("drive_bounded returns once accepted");
        stream.set_nonblocking(true).unwrap();
        stream
    }

    /// Runs the network until `stream` (non-blocking) reads end-of-file;
    /// returns what it read.
    ///
    /// # Panics
    ///
    /// On a read error other than `WouldBlock`, or as `drive_bounded`.
    pub fn read_to_eof(&mut self, max_steps: u64, stream: &TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        self.drive_bounded(max_steps, |_| {
            let mut buf = [0u8; 4096];
            match (&*stream).read(&mut buf) {
                Ok(0) => Flow::Done,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    Flow::Busy
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Flow::Idle,
                Err(e) => panic!("read: {e}"),
            }
        });
        got
    }

    /// SHA-256 over both captures (A's, then B's): equal digests mean the
    /// same packets with the same timestamps, byte for byte.
    pub fn trace_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.a.capture.digest());
        h.update(self.b.capture.digest());
        h.finalize().into()
    }

    /// Bytes captured at A and at B.
    pub fn captured(&self) -> (u64, u64) {
        (self.a.capture.len(), self.b.capture.len())
    }

    /// The TCP data A and B each put on the wire.
    pub fn tallies(&self) -> (Tally, Tally) {
        (self.a.capture.tally(), self.b.capture.tally())
    }
}

impl Node {
    /// Packets delivered to this end and not yet received.
    fn waiting(&self) -> usize {
        self.link.inner().inner().pending()
    }

    fn new(
        dev: MemDevice,
        faults: FaultConfig,
        config: Config,
        clock: &Arc<ManualClock>,
        seed: u64,
    ) -> Node {
        let capture = Capture::new(config.addr);
        let clock: Arc<dyn Clock> = clock.clone();
        let pcap = PcapWriter::new(dev, capture.clone())
            .expect("pcap header")
            .with_clock(Arc::clone(&clock));
        let link = Arc::new(FaultInjector::new(pcap, faults).with_clock(Arc::clone(&clock)));
        let stack = Stack::driven(Arc::clone(&link), config, clock, seed).expect("driven stack");
        Node {
            stack,
            link,
            capture,
        }
    }
}

/// A pcap sink that keeps a running SHA-256 and a length, not the bytes
/// (a 10 MiB transfer captures tens of megabytes), and tallies the TCP
/// data its own end sent ([`Tally`]).
#[derive(Clone)]
struct Capture(Arc<Mutex<CaptureState>>);

struct CaptureState {
    sha: Sha256,
    len: u64,
    /// The address of this capture's end: packets from it were sent.
    own: Ipv4Addr,
    /// The pcap file header (the first write) has gone by.
    header_seen: bool,
    tally: Tally,
}

impl Sim {
    /// A opens a connection to B's port 9000; both send `len` bytes of
    /// [`stream_bytes`] and close, each reads to the end, within
    /// `max_steps`. Asserts both streams arrive exact.
    pub fn exchange(&mut self, len: usize, max_steps: u64) {
        let listener =
            stack::TcpListener::bind(&self.b.stack, (self.b.stack.addr(), 9000)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let client = TcpStream::connect_nonblocking(&self.a.stack, on_b(9000)).unwrap();
        let mut a = Pump::new(client, stream_bytes(0xa0, len));
        let mut b: Option<Pump> = None;
        self.drive_bounded(max_steps, |sim| {
            if b.is_none() {
                match listener.accept() {
                    Ok((s, _)) => b = Some(Pump::new(s, stream_bytes(0xb0, len))),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("accept: {e}"),
                }
            }
            let mut busy = a.pump(sim.now());
            if let Some(b) = &mut b {
                busy |= b.pump(sim.now());
            }
            match (a.finished(), b.as_ref().is_some_and(Pump::finished)) {
                (true, true) => Flow::Done,
                _ if busy => Flow::Busy,
                _ => Flow::Idle,
            }
        });
        let b = b.unwrap();
        assert_eq!(a.got.len(), len);
        assert!(a.got == stream_bytes(0xb0, len), "B -> A bytes differ");
        assert_eq!(b.got.len(), len);
        assert!(b.got == stream_bytes(0xa0, len), "A -> B bytes differ");
    }
}

/// The TCP data one end put on the wire (after its fault injector: lost
/// packets are not in it, duplicates are twice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Packets with a TCP payload.
    pub data_packets: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Payload bytes at or below the highest sequence number sent before
    /// them: retransmissions, plus injected duplicates and reorderings.
    pub resent_bytes: u64,
    /// The largest TCP payload of one wire packet.
    pub max_payload: usize,
    /// The end of the highest data sent so far (one connection per run).
    high: Option<u32>,
}

impl Tally {
    /// Counts one IPv4 packet sent by this end.
    fn packet(&mut self, ip: &[u8]) {
        let Some(&vihl) = ip.first() else { return };
        let ihl = usize::from(vihl & 0x0f) * 4;
        if ip.len() < ihl + 20 || ip[9] != 6 {
            return;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let tcp = &ip[ihl..total];
        let doff = usize::from(tcp[12] >> 4) * 4;
        let len = tcp.len().saturating_sub(doff);
        if len == 0 {
            return;
        }
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let end = seq.wrapping_add(len as u32);
        self.data_packets += 1;
        self.payload_bytes += len as u64;
        self.max_payload = self.max_payload.max(len);
        let fresh = match self.high {
            None => len,
            // Sequence arithmetic (RFC 9293 §3.4): how far `end` passes
            // the highest end so far.
            Some(high) => usize::try_from(end.wrapping_sub(high) as i32)
                .unwrap_or(0)
                .min(len),
        };
        self.resent_bytes += (len - fresh) as u64;
        if fresh > 0 {
            self.high = Some(end);
        }
    }
}

impl Capture {
    fn new(own: Ipv4Addr) -> Capture {
        Capture(Arc::new(Mutex::new(CaptureState {
            sha: Sha256::new(),
            len: 0,
            own,
            header_seen: false,
            tally: Tally::default(),
        })))
    }

    fn digest(&self) -> [u8; 32] {
        self.0.lock().sha.clone().finalize().into()
    }

    fn len(&self) -> u64 {
        self.0.lock().len
    }

    fn tally(&self) -> Tally {
        self.0.lock().tally
    }
}

impl Write for Capture {
    /// The pcap writer hands over the file header first, then whole
    /// records at each flush point.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut c = self.0.lock();
        c.sha.update(buf);
        c.len += buf.len() as u64;
        if !c.header_seen {
            c.header_seen = true;
            return Ok(buf.len());
        }
        let own = c.own.octets();
        let mut rest = buf;
        // Record header: seconds, microseconds, captured and original
        // lengths, native endian.
        while rest.len() >= 16 {
            let caplen = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
            let Some(packet) = rest.get(16..16 + caplen) else {
                break;
            };
            if packet.get(12..16) == Some(&own[..]) {
                c.tally.packet(packet);
            }
            rest = &rest[16 + caplen..];
        }
        assert!(rest.is_empty(), "a pcap record split across writes");
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One side of a bulk transfer over a non-blocking stream: writes `out`
/// then shuts down its write side, and reads until end-of-file.
pub struct Pump {
    pub stream: TcpStream,
    out: Vec<u8>,
    written: usize,
    write_shut: bool,
    pub got: Vec<u8>,
    pub eof: bool,
    /// Reads are held off until this time (a stalled reader).
    pub read_from: Instant,
}

impl Pump {
    pub fn new(stream: TcpStream, out: Vec<u8>) -> Pump {
        stream.set_nonblocking(true).expect("non-blocking");
        Pump {
            stream,
            out,
            written: 0,
            write_shut: false,
            got: Vec::new(),
            eof: false,
            read_from: Instant::ZERO,
        }
    }

    /// Everything written and shut down, and end-of-file read.
    pub fn finished(&self) -> bool {
        self.write_shut && self.eof
    }

    /// Writes and reads what it can without blocking; true if it moved
    /// anything.
    ///
    /// # Panics
    ///
    /// On any error but `WouldBlock`.
    pub fn pump(&mut self, now: Instant) -> bool {
        // A close in SYN-SENT would abandon the connection (RFC 9293
        // §3.10.4), so wait for the handshake as a blocking connect would.
        if self.stream.state() == State::SynSent {
            return false;
        }
        let mut moved = false;
        while self.written < self.out.len() {
            match (&self.stream).write(&self.out[self.written..]) {
                Ok(n) => {
                    self.written += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        if self.written == self.out.len() && !self.write_shut {
            self.stream.shutdown(Shutdown::Write).expect("shutdown");
            self.write_shut = true;
            moved = true;
        }
        let mut buf = [0u8; 64 * 1024];
        while !self.eof && now >= self.read_from {
            match (&self.stream).read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
            moved = true;
        }
        moved
    }
}

/// A stream of `len` bytes where byte i is (i mod 251) XOR `salt`.
pub fn stream_bytes(salt: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i % 251) as u8) ^ salt).collect()
}

/// The address of `port` on B.
pub fn on_b(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(B, port)
}

/// A duration as simulated time since the start.
pub fn at(d: Duration) -> Instant {
    Instant::ZERO + d
}
