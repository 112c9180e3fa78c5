//! The TUN device's own ceiling, for `scripts/bench-tun.sh`: two TUN
//! devices and a userspace relay that copies every packet from one to the
//! other, so that two kernels (a client behind one device, a server behind
//! the other) talk through nothing but TUN reads and writes.
//!
//!   tun_relay --mode plain|vnet|tun-rs --a tunA --netns-a NS_A \
//!             --b tunB --netns-b NS_B [--mtu 1500]
//!
//! Both devices must exist (`ip tuntap add`), each in its namespace (a
//! `/run/netns` name; without `--netns-*` the relay's own). The relay
//! attaches to each from a thread inside its namespace, says `ready` on
//! stderr, and copies until killed, one thread per direction. (Attaching
//! first and moving a device to another namespace afterwards does not
//! work: the moved device stops handing its packets to the fd.)
//!
//! Modes:
//! - `plain`: our device layer without a virtio-net header
//!   (`TunDevice::open_with(.., Offload::Off)`): one `read` and one `write`
//!   per packet of at most the MTU.
//! - `vnet`: our device layer with `IFF_VNET_HDR` and `TUNSETOFFLOAD`
//!   (checksum + TSO4) on both devices (`Offload::On`): the kernels'
//!   super-segments of up to 64 KiB are read whole and written whole
//!   (`Device::send_tso` with the `gso_size` they came with, the checksum
//!   left partial), so one `read` and one `write` move up to 64 KiB.
//! - `tun-rs`: the `tun-rs` crate with its offload on: `recv_multiple`
//!   splits each super-segment into MTU-sized packets in userspace and
//!   `send_multiple` coalesces a batch of them again before writing (its
//!   GSO/GRO path, as wireguard-go does it).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stack::device::tun::{Offload, TunDevice};
use stack::device::{Device, PacketBatch, RxChecksum};

/// Packets read per `recv_batch`.
const BATCH: usize = 64;
/// How often a direction reports what it moved.
const REPORT_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Vnet,
    TunRs,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut mode = None;
    let mut a = None;
    let mut b = None;
    let mut ns_a = None;
    let mut ns_b = None;
    let mut mtu = 1500usize;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match (args[i].as_str(), value) {
            ("--mode", Some(v)) => {
                mode = match v.as_str() {
                    "plain" => Some(Mode::Plain),
                    "vnet" => Some(Mode::Vnet),
                    "tun-rs" => Some(Mode::TunRs),
                    _ => return usage(&format!("unknown mode '{v}'")),
                }
            }
            ("--a", Some(v)) => a = Some(v),
            ("--b", Some(v)) => b = Some(v),
            ("--netns-a", Some(v)) => ns_a = Some(v),
            ("--netns-b", Some(v)) => ns_b = Some(v),
            ("--mtu", Some(v)) => match v.parse() {
                Ok(m) if (576..=65535).contains(&m) => mtu = m,
                _ => return usage(&format!("bad --mtu '{v}'")),
            },
            ("-h" | "--help", _) => {
                println!("usage: tun_relay --mode plain|vnet|tun-rs --a TUN --b TUN [--mtu N]");
                return ExitCode::SUCCESS;
            }
            (other, _) => return usage(&format!("unknown or incomplete argument '{other}'")),
        }
        i += 2;
    }
    let (Some(mode), Some(a), Some(b)) = (mode, a, b) else {
        return usage("--mode, --a and --b are required");
    };
    let a = Endpoint {
        dev: a,
        netns: ns_a,
    };
    let b = Endpoint {
        dev: b,
        netns: ns_b,
    };
    let run = match mode {
        Mode::Plain => relay_ours(&a, &b, mtu, Offload::Off),
        Mode::Vnet => relay_ours(&a, &b, mtu, Offload::On),
        Mode::TunRs => relay_tun_rs(&a, &b, mtu),
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tun_relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("tun_relay: {msg} (see --help)");
    ExitCode::from(2)
}

/// A device and the namespace it is in.
struct Endpoint {
    dev: String,
    netns: Option<String>,
}

impl Endpoint {
    /// Runs `open` on a thread inside this endpoint's namespace (the
    /// relay's own if none), and returns what it opened: an fd, once
    /// open, keeps working from any namespace.
    fn open_in<T: Send>(&self, open: impl FnOnce(&str) -> io::Result<T> + Send) -> io::Result<T> {
        let ns = match &self.netns {
            None => return open(&self.dev),
            Some(name) => File::open(format!("/run/netns/{name}"))
                .map_err(|e| io::Error::new(e.kind(), format!("netns {name}: {e}")))?,
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns(2) with an open namespace fd (owned by `ns`,
                // alive across the call) and CLONE_NEWNET changes only this
                // thread's network namespace, and this thread ends when
                // `open` returns; no memory of ours is touched.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
                open(&self.dev)
            })
            .join()
            .map_err(|_| io::Error::other("the opening thread panicked"))?
        })
    }
}

/// What one direction has moved, reported now and then.
struct Meter {
    name: &'static str,
    packets: AtomicU64,
    bytes: AtomicU64,
    last: Instant,
}

impl Meter {
    fn new(name: &'static str) -> Meter {
        Meter {
            name,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last: Instant::now(),
        }
    }

    /// Counts a batch; `dropped` is the writing device's count of
    /// packets it dropped on a full kernel queue, if it keeps one.
    fn add(&mut self, packets: u64, bytes: u64, dropped: Option<u64>) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.last.elapsed() >= REPORT_EVERY {
            self.last = Instant::now();
            let p = self.packets.load(Ordering::Relaxed);
            let b = self.bytes.load(Ordering::Relaxed);
            let dropped = dropped.map_or(String::new(), |d| format!(", {d} dropped on write"));
            eprintln!(
                "tun_relay: {}: {p} packets, {b} bytes, {} bytes per packet{dropped}",
                self.name,
                b / p.max(1)
            );
        }
    }
}

/// Relays between `a` and `b` through our own device layer.
fn relay_ours(a: &Endpoint, b: &Endpoint, mtu: usize, offload: Offload) -> io::Result<()> {
    let open =
        |name: &str| -> io::Result<TunDevice> { Ok(TunDevice::open_with(name, mtu, offload)?) };
    let dev_a = a.open_in(open)?;
    let dev_b = b.open_in(open)?;
    let (a, b) = (&a.dev, &b.dev);
    eprintln!(
        "tun_relay: ours, {a} <-> {b}: offloads {} / {}; ready",
        dev_a.offloads(),
        dev_b.offloads()
    );
    std::thread::scope(|s| {
        let ab = s.spawn(|| forward_ours(&dev_a, &dev_b, Meter::new("a->b")));
        let ba = s.spawn(|| forward_ours(&dev_b, &dev_a, Meter::new("b->a")));
        let first = ab.join();
        let second = ba.join();
        match (first, second) {
            (Ok(r1), Ok(r2)) => r1.and(r2),
            _ => Err(io::Error::other("a relay thread panicked")),
        }
    })
}

/// Copies every packet `from` reads to `to`, forever.
fn forward_ours(from: &TunDevice, to: &TunDevice, mut meter: Meter) -> io::Result<()> {
    let mut batch = PacketBatch::new(BATCH, from.max_packet());
    loop {
        let n = from.recv_batch(&mut batch, Duration::from_millis(200))?;
        if n == 0 {
            continue;
        }
        let mut bytes = 0u64;
        for (packet, meta) in batch.iter_with_meta() {
            bytes += packet.len() as u64;
            let sent = match (meta.gso_size, meta.checksum) {
                // A super-segment: on as one, with its segment size.
                (Some(mss), _) => to.send_tso(packet, mss),
                // One segment with a partial checksum (the sending kernel
                // left it to the device): on with the checksum still
                // partial. Only TCP is partial here (send_tso parses it
                // as TCP; anything else is dropped and counted below).
                (None, RxChecksum::Partial) => to.send_tso(packet, u16::MAX),
                // Complete checksums: on as it is.
                (None, _) => to.send(packet),
            };
            if let Err(e) = sent {
                if e.kind() == io::ErrorKind::InvalidInput {
                    // Not a packet send_tso takes (see above): drop it.
                    continue;
                }
                return Err(e);
            }
        }
        meter.add(n as u64, bytes, Some(to.tx_dropped()));
    }
}

/// Relays between `a` and `b` through the tun-rs crate with offload.
fn relay_tun_rs(a: &Endpoint, b: &Endpoint, mtu: usize) -> io::Result<()> {
    let open = |name: &str| {
        tun_rs::DeviceBuilder::new()
            .name(name)
            .with(|builder| {
                builder.offload(true);
            })
            .build_sync()
            .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))
    };
    let dev_a = a.open_in(open)?;
    let dev_b = b.open_in(open)?;
    let (a, b) = (&a.dev, &b.dev);
    eprintln!(
        "tun_relay: tun-rs, {a} <-> {b}: TCP offload {} / {}; ready",
        dev_a.tcp_gso(),
        dev_b.tcp_gso()
    );
    std::thread::scope(|s| {
        let ab = s.spawn(|| forward_tun_rs(&dev_a, &dev_b, mtu, Meter::new("a->b")));
        let ba = s.spawn(|| forward_tun_rs(&dev_b, &dev_a, mtu, Meter::new("b->a")));
        let first = ab.join();
        let second = ba.join();
        match (first, second) {
            (Ok(r1), Ok(r2)) => r1.and(r2),
            _ => Err(io::Error::other("a relay thread panicked")),
        }
    })
}

/// Copies every packet `from` reads to `to` the way tun-rs's offload API
/// is meant to be used: split on receive, coalesce on send.
fn forward_tun_rs(
    from: &tun_rs::SyncDevice,
    to: &tun_rs::SyncDevice,
    mtu: usize,
    mut meter: Meter,
) -> io::Result<()> {
    const HDR: usize = tun_rs::VIRTIO_NET_HDR_LEN;
    // Room for a whole packet behind the header (a coalesced one may grow
    // to 64 KiB, which the capacity allows without reallocating).
    let slot_len = HDR + mtu;
    let mut original = vec![0u8; HDR + 65535];
    let mut bufs: Vec<Vec<u8>> = (0..tun_rs::IDEAL_BATCH_SIZE)
        .map(|_| {
            let mut v = Vec::with_capacity(HDR + 65535);
            v.resize(slot_len, 0);
            v
        })
        .collect();
    let mut sizes = vec![0usize; tun_rs::IDEAL_BATCH_SIZE];
    let mut gro = tun_rs::GROTable::default();
    loop {
        // Blocks for the next packet; splits a super-segment into up to
        // IDEAL_BATCH_SIZE packets, each behind HDR bytes of room.
        let n = from.recv_multiple(&mut original, &mut bufs, &mut sizes, HDR)?;
        let mut bytes = 0u64;
        for (buf, &size) in bufs.iter_mut().zip(&sizes).take(n) {
            buf.truncate(HDR + size);
            buf[..HDR].fill(0);
            bytes += size as u64;
        }
        to.send_multiple(&mut gro, &mut bufs[..n], HDR)?;
        for buf in bufs.iter_mut().take(n) {
            buf.resize(slot_len, 0);
        }
        meter.add(n as u64, bytes, None);
    }
}
