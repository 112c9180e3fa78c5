//! A Linux TUN interface: raw IPv4 and IPv6 packets to and from the
//! kernel.
//!
//! The device must already exist, made persistent and owned by the user
//! by `sudo scripts/setup-tun.sh`; then opening it needs no root. This
//! file holds the device I/O path's only `unsafe`: the `poll(2)`,
//! `fcntl(2)` and `ioctl(2)` calls, each with its reasoning.
//!
//! Two ways to attach, chosen per open (the device itself is the same):
//! - plain (`IFF_TUN | IFF_NO_PI`, through `tun-tap`): one read or write
//!   per packet of at most the MTU, checksums computed by each side;
//! - offload (`IFF_VNET_HDR` as well, through our own ioctls): every
//!   packet is preceded by a [`VirtioNetHdr`], and with `TUNSETOFFLOAD`
//!   granted the kernel takes TCP super-segments of up to 64 KiB with a
//!   partial checksum in one write (and segments them itself, or not at
//!   all when it delivers locally), and hands us its own super-segments,
//!   unchecksummed, in one read. This is how a userspace stack over TUN
//!   avoids a system call per 1448-byte segment. IPv4 (`TUN_F_TSO4`) and
//!   IPv6 (`TUN_F_TSO6`) super-segments are granted separately; the
//!   receive metadata ([`RxMeta`]) is the same for both.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::gso::{self, IpVersion, TcpSuperSegment};
use super::vnet::{self, VirtioNetHdr};
use super::{Device, PacketBatch, RxChecksum, RxMeta};

/// Linux limits interface names to IFNAMSIZ - 1 bytes.
const MAX_NAME_LEN: usize = 15;

/// The largest IPv4 packet, and so the largest super-segment either way.
/// An IPv6 packet may be 40 bytes longer (its payload length does not
/// count the fixed header), but the kernel builds super-segments of at
/// most 64 KiB in all (`GSO_LEGACY_MAX_SIZE`, less room for headers), and
/// one bound for both families keeps [`Device::max_segment`] simple.
const MAX_SUPER_SEGMENT: usize = 0xffff;

/// The offset of the checksum in a TCP header (the vnet `csum_offset`).
const TCP_CHECKSUM_OFFSET: u16 = 16;

/// The TCP flag CWR (RFC 3168 §6.1.2), which makes a super-segment ECN.
const TCP_CWR: u8 = 0x80;

/// The most header bytes a super-segment has: IPv4 60 + TCP 60 (IPv6
/// has 40 + 60).
const MAX_HEADERS: usize = 120;

/// Whether to ask the kernel for checksum and segmentation offload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offload {
    /// Ask for checksum offload and TSO for IPv4 and IPv6; take what is
    /// granted, and attach plainly (as [`Offload::Off`]) if not even
    /// checksum offload is.
    Auto,
    /// Require checksum offload and TSO for IPv4: opening fails if the
    /// kernel refuses either. TSO for IPv6 is asked for too, and used
    /// when granted; without it IPv6 super-segments are segmented in
    /// software.
    On,
    /// A plain header-less attach, exactly as [`TunDevice::open`].
    Off,
}

/// What the kernel granted with `TUNSETOFFLOAD`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offloads {
    /// `TUN_F_CSUM`: packets in either direction may carry a partial
    /// checksum (virtio-net `NEEDS_CSUM`).
    pub csum: bool,
    /// `TUN_F_TSO4`: IPv4 TCP super-segments in either direction.
    pub tso4: bool,
    /// `TUN_F_TSO6`: IPv6 TCP super-segments in either direction.
    pub tso6: bool,
}

impl Offloads {
    /// Whether the kernel takes (and may hand us) TCP super-segments of
    /// this IP version.
    fn tso(&self, version: IpVersion) -> bool {
        match version {
            IpVersion::V4 => self.tso4,
            IpVersion::V6 => self.tso6,
        }
    }
}

impl fmt::Display for Offloads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.csum, self.tso4, self.tso6) {
            (true, true, true) => "checksum + TSO4 + TSO6",
            (true, true, false) => "checksum + TSO4",
            (true, false, true) => "checksum + TSO6",
            (true, false, false) => "checksum only",
            // TSO without checksum offload cannot be granted.
            (false, _, _) => "none",
        })
    }
}

/// The fd behind a [`TunDevice`].
#[derive(Debug)]
enum Link {
    /// Attached with `IFF_TUN | IFF_NO_PI` by `tun-tap`.
    Plain(tun_tap::Iface),
    /// Attached with `IFF_VNET_HDR` as well, by [`attach_vnet`].
    Vnet(File),
}

impl AsRawFd for Link {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Link::Plain(iface) => iface.as_raw_fd(),
            Link::Vnet(file) => file.as_raw_fd(),
        }
    }
}

/// An open, persistent TUN device in non-blocking mode, without the
/// packet-information header (IFF_NO_PI): each read or write is one
/// bare IPv4 or IPv6 packet, preceded by a virtio-net header when opened with
/// offload.
#[derive(Debug)]
pub struct TunDevice {
    link: Link,
    name: String,
    mtu: usize,
    offloads: Offloads,
    tx_dropped: AtomicU64,
    rx_truncated: AtomicU64,
}

impl TunDevice {
    /// Opens the existing TUN device `name`, which will carry packets of
    /// at most `mtu` bytes (set the device's own MTU to match with
    /// `scripts/setup-tun.sh --mtu`), without offload.
    ///
    /// # Errors
    ///
    /// A [`TunError`] whose message says what to run: the device does not
    /// exist, it is not ours or is in use, or the `tun` module is not
    /// loaded.
    pub fn open(name: &str, mtu: usize) -> Result<TunDevice, TunError> {
        TunDevice::open_with(name, mtu, Offload::Off)
    }

    /// Opens the existing TUN device `name` as [`TunDevice::open`] does,
    /// asking the kernel for checksum and segmentation offload as
    /// `offload` says. [`TunDevice::offloads`] tells what was granted.
    ///
    /// # Errors
    ///
    /// As [`TunDevice::open`]; and with [`Offload::On`],
    /// [`TunError::OffloadRefused`] when the kernel does not grant both
    /// checksum offload and TSO.
    pub fn open_with(name: &str, mtu: usize, offload: Offload) -> Result<TunDevice, TunError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains(['/', '\0']) {
            return Err(TunError::InvalidName(name.to_string()));
        }
        if !Path::new("/dev/net/tun").exists() {
            return Err(TunError::NoTunModule);
        }
        // Opening a name that does not exist would, as root, create a
        // transient device that vanishes when we exit. We want the
        // persistent one the set-up script made, so check first.
        if !interface_exists(name) {
            return Err(TunError::NotFound(name.to_string()));
        }
        let (link, offloads) = attach(name, offload)?;
        wait_until_running(name);
        if let Some(kernel_mtu) = kernel_mtu(name) {
            if kernel_mtu != mtu {
                tracing::warn!(
                    "{name} has MTU {kernel_mtu} but the stack was configured for {mtu}; \
                     run sudo scripts/setup-tun.sh --mtu {mtu}"
                );
            }
        }
        tracing::info!("{name}: offloads granted by the kernel: {offloads}");
        Ok(TunDevice {
            link,
            name: name.to_string(),
            mtu,
            offloads,
            tx_dropped: AtomicU64::new(0),
            rx_truncated: AtomicU64::new(0),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the kernel granted: all false for a plain attach.
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// Whether packets carry a virtio-net header (an offload attach).
    pub fn has_vnet_hdr(&self) -> bool {
        matches!(self.link, Link::Vnet(_))
    }

    /// Packets `send` dropped because the kernel's queue was full.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_dropped.load(Ordering::Relaxed)
    }

    /// Packets received longer than the batch's buffers (and so cut
    /// short): the batch was not sized with [`Device::max_packet`].
    pub fn rx_truncated(&self) -> u64 {
        self.rx_truncated.load(Ordering::Relaxed)
    }

    /// Waits until the fd is readable or `timeout` passes; true if readable.
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        // Round up so a sub-millisecond timeout still waits; clamp to
        // what poll(2) takes.
        let millis = timeout.as_micros().div_ceil(1000);
        let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
        let mut fds = libc::pollfd {
            fd: self.link.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `fds` is one valid, initialised pollfd that lives across
        // the call, and we pass nfds = 1 to match; the fd is owned by
        // `self.link` and open for as long as `self` is.
        let ready = unsafe { libc::poll(&mut fds, 1, millis) };
        if ready < 0 {
            let err = io::Error::last_os_error();
            // A signal cut the wait short: report "nothing yet".
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            };
        }
        Ok(ready > 0)
    }

    /// Reads one packet into `buf`: its length and metadata, or `None`
    /// when the kernel has nothing more.
    fn read_one(&self, buf: &mut [u8]) -> io::Result<Option<(usize, RxMeta)>> {
        let read = match &self.link {
            Link::Plain(iface) => iface.recv(buf).map(|n| (n, RxMeta::default())),
            Link::Vnet(file) => {
                // Header and packet in one readv(2), the packet straight
                // into the batch's buffer.
                let mut hdr = [0u8; vnet::HDR_LEN];
                let mut bufs = [IoSliceMut::new(&mut hdr), IoSliceMut::new(buf)];
                (&*file).read_vectored(&mut bufs).map(|n| {
                    let meta = VirtioNetHdr::parse(&hdr)
                        .map(|h| rx_meta(&h))
                        .unwrap_or_default();
                    (n.saturating_sub(vnet::HDR_LEN), meta)
                })
            }
        };
        match read {
            Ok((n, meta)) => {
                if n > buf.len() {
                    // The kernel reports the whole length but copied only
                    // what fit; the IPv4 length check will drop it.
                    self.rx_truncated.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some((n, meta)))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes one packet with `write`, retrying on EINTR. A full kernel
    /// queue (EAGAIN, ENOBUFS) drops the packet and counts it, as a real
    /// NIC would.
    fn write_retrying(&self, mut write: impl FnMut() -> io::Result<usize>) -> io::Result<()> {
        loop {
            match write() {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    self.tx_dropped.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes one packet given as `parts` (virtio-net header first) with
    /// one writev(2). A TUN write is one packet and is never split: the
    /// kernel takes all of it or fails.
    fn write_vnet(&self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        match &self.link {
            Link::Vnet(file) => self.write_retrying(|| (&*file).write_vectored(parts)),
            // Offloads are granted only with a vnet header, so no caller
            // gets here; say so rather than write a header as data.
            Link::Plain(_) => Err(io::Error::other(
                "a virtio-net header on a device attached without one",
            )),
        }
    }

    /// Hands a super-segment to the kernel in one write: the virtio-net
    /// header and packet headers of [`offload_headers`], then the payload
    /// straight from the caller's buffer. The kernel completes the
    /// checksum, and segments the packet only if it must (it delivers it
    /// to a local socket whole).
    fn write_offloaded(&self, seg: &TcpSuperSegment<'_>, mss: u16) -> io::Result<()> {
        let mut headers = [0u8; MAX_HEADERS];
        let (hdr, headers_len) = offload_headers(seg, mss, &mut headers);
        self.write_vnet(&[
            IoSlice::new(&hdr.to_bytes()),
            IoSlice::new(&headers[..headers_len]),
            IoSlice::new(seg.payload()),
        ])
    }
}

/// What goes before the payload of a super-segment handed to the kernel
/// whole: a partial TCP checksum (`NEEDS_CSUM`, from `csum_start`, the
/// TCP header: 40 for IPv6) and, when the payload spans more than one
/// segment, `gso_type` TCPV4 or TCPV6 (with ECN if it carries CWR) and
/// `gso_size` = `mss`. Writes the packet's IP and TCP headers, with the
/// partial checksum and (IPv4 only) the header checksum filled in, into
/// `headers` and returns the virtio-net header and how many bytes it
/// wrote.
fn offload_headers(
    seg: &TcpSuperSegment<'_>,
    mss: u16,
    headers: &mut [u8; MAX_HEADERS],
) -> (VirtioNetHdr, usize) {
    let headers_len = seg.headers_len();
    // invariant: the IP header is at most 60 bytes (IPv4 with options;
    // IPv6's is 40) and TCP's at most 60, checked by parse.
    let out = &mut headers[..headers_len];
    out.copy_from_slice(&seg.packet()[..headers_len]);
    let ip_len = seg.ip_header_len();
    let tcpv = match seg.version() {
        IpVersion::V4 => {
            // The kernel checks the IPv4 header checksum of what it
            // receives.
            gso::fill_ipv4_checksum(&mut out[..ip_len]);
            vnet::GSO_TCPV4
        }
        // IPv6 has no header checksum (RFC 8200 §3); the payload length
        // stays the super-segment's, which the kernel adjusts per piece.
        IpVersion::V6 => vnet::GSO_TCPV6,
    };
    let check = ip_len + usize::from(TCP_CHECKSUM_OFFSET);
    out[check..check + 2].copy_from_slice(&seg.partial_checksum().to_be_bytes());

    let segmented = seg.payload().len() > usize::from(mss);
    let gso_type = match (segmented, seg.tcp_flags() & TCP_CWR != 0) {
        (false, _) => vnet::GSO_NONE,
        (true, false) => tcpv,
        (true, true) => tcpv | vnet::GSO_ECN,
    };
    // invariant: headers_len <= 120 and ip_len <= 60 fit in u16.
    let hdr = VirtioNetHdr {
        flags: vnet::F_NEEDS_CSUM,
        gso_type,
        hdr_len: headers_len as u16,
        gso_size: if segmented { mss } else { 0 },
        csum_start: ip_len as u16,
        csum_offset: TCP_CHECKSUM_OFFSET,
    };
    (hdr, headers_len)
}

/// The receive metadata a virtio-net header carries.
fn rx_meta(hdr: &VirtioNetHdr) -> RxMeta {
    let checksum = if hdr.needs_csum() {
        RxChecksum::Partial
    } else if hdr.data_valid() {
        RxChecksum::Verified
    } else {
        RxChecksum::Unverified
    };
    RxMeta {
        checksum,
        gso_size: hdr.gso(),
    }
}

impl Device for TunDevice {
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        batch.clear();
        if !self.wait_readable(timeout)? {
            return Ok(0);
        }
        // Read until the kernel has nothing more (EAGAIN) or the batch is
        // full, each packet straight into the batch's buffer.
        while batch.push_with_meta(|buf| self.read_one(buf))? {}
        Ok(batch.len())
    }

    /// Writes one packet with complete checksums (behind an all-zero
    /// virtio-net header when offloading). A full kernel queue (EAGAIN,
    /// ENOBUFS) drops the packet and counts it, as a real NIC would.
    fn send(&self, packet: &[u8]) -> io::Result<()> {
        match &self.link {
            Link::Plain(iface) => self.write_retrying(|| iface.send(packet)),
            Link::Vnet(_) => {
                let hdr = VirtioNetHdr::PLAIN.to_bytes();
                self.write_vnet(&[IoSlice::new(&hdr), IoSlice::new(packet)])
            }
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn max_packet(&self) -> usize {
        // Either grant lets the kernel hand us super-segments.
        if self.offloads.tso4 || self.offloads.tso6 {
            MAX_SUPER_SEGMENT
        } else {
            self.mtu
        }
    }

    fn max_segment(&self) -> usize {
        self.max_packet()
    }

    /// With TSO granted for the packet's IP version (TSO4 or TSO6), one
    /// write of the whole super-segment (see `write_offloaded`); with
    /// checksum offload only, one write with a partial checksum if it is
    /// a single segment; otherwise segmented in software.
    fn send_tso(&self, packet: &[u8], mss: u16) -> io::Result<()> {
        if mss == 0 {
            return Err(gso::GsoError::ZeroMss.into());
        }
        let seg = TcpSuperSegment::parse(packet)?;
        let single = seg.payload().len() <= usize::from(mss);
        if self.offloads.tso(seg.version()) || (self.offloads.csum && single) {
            self.write_offloaded(&seg, mss)
        } else {
            gso::segment(seg.packet(), mss, |p| self.send(p))
        }
    }
}

/// Attaches to `name` as `offload` says: an offload attach with what the
/// kernel grants, or a plain one.
fn attach(name: &str, offload: Offload) -> Result<(Link, Offloads), TunError> {
    Ok(match offload {
        Offload::Off => (attach_plain(name)?, Offloads::default()),
        Offload::On | Offload::Auto => match attach_vnet(name) {
            Ok((file, granted)) if granted.csum && granted.tso4 => (Link::Vnet(file), granted),
            Ok((_, granted)) if offload == Offload::On => {
                return Err(TunError::OffloadRefused(
                    name.to_string(),
                    io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("the kernel granted {granted}, not checksum + TSO4"),
                    ),
                ));
            }
            Ok((file, granted)) if granted.csum => {
                tracing::warn!("{name}: the kernel granted checksum offload but not TSO4");
                (Link::Vnet(file), granted)
            }
            Ok((file, _)) => {
                // A header on every packet buys nothing without
                // offload; detach and attach plainly.
                drop(file);
                tracing::warn!("{name}: the kernel refused offload; attaching without it");
                (attach_plain(name)?, Offloads::default())
            }
            Err(VnetError::Open(e)) => return Err(e),
            Err(VnetError::Refused(e)) if offload == Offload::On => {
                return Err(TunError::OffloadRefused(name.to_string(), e));
            }
            Err(VnetError::Refused(e)) => {
                tracing::warn!("{name}: no virtio-net header ({e}); attaching without offload");
                (attach_plain(name)?, Offloads::default())
            }
        },
    })
}

/// Attaches to `name` with `tun-tap`: no packet information, no
/// virtio-net header.
fn attach_plain(name: &str) -> Result<Link, TunError> {
    let iface = retry_busy(|| tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun))
        .map_err(|e| TunError::from_open(name, e))?;
    let fd = iface.as_raw_fd();
    set_non_blocking(fd).map_err(|e| TunError::Io(name.to_string(), e))?;
    // Offloads are the device's, not the attachment's: a previous offload
    // attach leaves them on, and the kernel would then hand this
    // header-less reader unchecksummed super-segments. Turn them off;
    // a kernel without TUNSETOFFLOAD never had them on.
    if let Err(e) = tun_set_offload(fd, 0) {
        tracing::debug!("{name}: clearing offloads: {e}");
    }
    Ok(Link::Plain(iface))
}

/// How long an attach retries while the device is busy.
const BUSY_WAIT: Duration = Duration::from_millis(500);

/// Runs `attach` until it does not fail with EBUSY, for at most
/// [`BUSY_WAIT`].
///
/// A TUN device takes one attachment at a time, and closing ours does
/// not free it while a child process forked meanwhile (by any thread of
/// this process) still holds a copy of the fd until its `exec` closes
/// it. So a re-attach right after a close, as `Offload::Auto`'s fallback
/// and any reopen do, can briefly find the device busy.
fn retry_busy<T>(mut attach: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let start = std::time::Instant::now();
    loop {
        match attach() {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < BUSY_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Why an offload attach failed.
enum VnetError {
    /// Opening or attaching failed as a plain attach would have: report
    /// it as it is.
    Open(TunError),
    /// The kernel does not do virtio-net headers as we need them.
    Refused(io::Error),
}

/// Attaches to `name` with `IFF_TUN | IFF_NO_PI | IFF_VNET_HDR`, sets the
/// header to 10 little-endian bytes and negotiates offload: checksum,
/// TSO4 and TSO6, else checksum and TSO4, else checksum alone, else none.
fn attach_vnet(name: &str) -> Result<(File, Offloads), VnetError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .map_err(|e| VnetError::Open(TunError::from_open(name, e)))?;
    let fd = file.as_raw_fd();
    let features = tun_get_features(fd).map_err(VnetError::Refused)?;
    if features & libc::IFF_VNET_HDR as libc::c_uint == 0 {
        return Err(VnetError::Refused(io::Error::new(
            io::ErrorKind::Unsupported,
            "the TUN driver has no IFF_VNET_HDR",
        )));
    }
    let flags = libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR;
    retry_busy(|| tun_set_iff(fd, name, flags as libc::c_short))
        .map_err(|e| VnetError::Open(TunError::from_open(name, e)))?;
    // 10 bytes, the legacy `struct virtio_net_hdr`: the 12-byte variant
    // adds only `num_buffers`, which serves virtio's mergeable receive
    // buffers and which TUN writes as 0 and ignores. It is also the
    // default, but a persistent device keeps what the last attach set.
    tun_set_int(fd, libc::TUNSETVNETHDRSZ, vnet::HDR_LEN as libc::c_int)
        .map_err(VnetError::Refused)?;
    // Legacy headers are in the host's byte order; ask for little-endian
    // so `vnet` can be fixed to it. A little-endian host has it anyway.
    if let Err(e) = tun_set_int(fd, libc::TUNSETVNETLE, 1) {
        if cfg!(target_endian = "big") {
            return Err(VnetError::Refused(e));
        }
    }
    // TUNSETOFFLOAD grants all the bits asked for or fails (EINVAL), so
    // ask for less each time. With TSO6 the kernel hands us IPv6 TCP
    // super-segments too (gso_type TCPV6, NEEDS_CSUM): the receive path
    // reads the same metadata from them as from IPv4's (`rx_meta`).
    const ASKS: [Offloads; 3] = [
        Offloads {
            csum: true,
            tso4: true,
            tso6: true,
        },
        Offloads {
            csum: true,
            tso4: true,
            tso6: false,
        },
        Offloads {
            csum: true,
            tso4: false,
            tso6: false,
        },
    ];
    let offloads = ASKS
        .into_iter()
        .find(|ask| tun_set_offload(fd, offload_flags(ask)).is_ok())
        .unwrap_or_default();
    Ok((file, offloads))
}

/// The `TUN_F_*` bits that ask for `offloads`.
fn offload_flags(offloads: &Offloads) -> libc::c_uint {
    let mut flags = 0;
    if offloads.csum {
        flags |= libc::TUN_F_CSUM;
    }
    if offloads.tso4 {
        flags |= libc::TUN_F_TSO4;
    }
    if offloads.tso6 {
        flags |= libc::TUN_F_TSO6;
    }
    flags
}

/// Puts the fd in non-blocking mode. (tun-tap's own `set_non_blocking`
/// needs its `libc` feature, which the workspace turns off with its
/// default features.)
fn set_non_blocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL on an fd we own (open for the whole call) takes no
    // pointer argument and only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; F_SETFL takes an integer flag argument.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How long `open` waits for the kernel to activate the link.
const ACTIVATION_WAIT: Duration = Duration::from_secs(2);

/// Waits (bounded) until the kernel reports the link running.
///
/// Attaching to a TUN device turns its carrier on, but the kernel swaps
/// the link's "noop" queueing discipline, which drops every packet, for a
/// real one only later, from its link-watch work. Packets the kernel
/// sends before that are lost, so a `ping` right after start-up would
/// miss its first reply. IFF_RUNNING is set by the same work.
fn wait_until_running(name: &str) {
    let start = std::time::Instant::now();
    while start.elapsed() < ACTIVATION_WAIT {
        match interface_flags(name) {
            Some(flags) if flags & libc::IFF_RUNNING != 0 => return,
            None => return,
            Some(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    tracing::warn!(
        "{name} is not running after {ACTIVATION_WAIT:?}; is it up? (ip link set {name} up)"
    );
}

/// `struct ifreq` for the SIOCGIF* ioctls: the name, then a 24-byte union
/// of which we read a `short` (flags) or an `int` (MTU) at its start.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: [u8; 24],
}

/// Reads an interface attribute with `ioctl(request)` on a UDP socket in
/// this thread's namespace; `None` if the interface or socket is missing.
fn interface_ioctl(name: &str, request: libc::c_ulong) -> Option<[u8; 24]> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return None;
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: [0; 24],
    };
    for (dst, &b) in req.name.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    let sock = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    // SAFETY: ioctl(2) with a SIOCGIF* request on an open socket fd owned by
    // `sock`; the kernel reads the NUL-terminated name from and writes at
    // most sizeof(struct ifreq) = 40 bytes into `req`, which is exactly
    // that size and lives for the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, &mut req as *mut IfReq) };
    (rc == 0).then_some(req.data)
}

fn interface_flags(name: &str) -> Option<libc::c_int> {
    let data = interface_ioctl(name, libc::SIOCGIFFLAGS)?;
    Some(libc::c_int::from(i16::from_ne_bytes([data[0], data[1]])))
}

/// The device's MTU as the kernel has it, if it can be read.
fn kernel_mtu(name: &str) -> Option<usize> {
    let data = interface_ioctl(name, libc::SIOCGIFMTU)?;
    usize::try_from(i32::from_ne_bytes([data[0], data[1], data[2], data[3]])).ok()
}

/// Whether an interface called `name` exists in this thread's network
/// namespace. (`/sys/class/net` would show the namespace /sys was mounted
/// in, which is wrong for a thread that joined another with `setns`.)
fn interface_exists(name: &str) -> bool {
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: if_nametoindex(3) reads the NUL-terminated string owned by
    // `c_name`, alive for the call, and returns 0 when there is no such
    // interface.
    unsafe { libc::if_nametoindex(c_name.as_ptr()) != 0 }
}

/// The IFF_* flags this kernel's TUN driver supports (TUNGETFEATURES).
fn tun_get_features(fd: RawFd) -> io::Result<libc::c_uint> {
    let mut features: libc::c_uint = 0;
    // SAFETY: TUNGETFEATURES writes one unsigned int through the pointer,
    // which points at `features`, alive and writable for the call; `fd` is
    // an open /dev/net/tun descriptor owned by the caller.
    let rc = unsafe { libc::ioctl(fd, libc::TUNGETFEATURES as _, &mut features) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(features)
}

/// Attaches `fd` to the TUN device `name` with IFF_* `flags` (TUNSETIFF).
fn tun_set_iff(fd: RawFd, name: &str, flags: libc::c_short) -> io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: [0; 24],
    };
    for (dst, &b) in req.name.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    // ifr_flags is a short at the start of the union.
    req.data[..2].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads (and writes back the name into) one struct
    // ifreq through the pointer; `req` is exactly sizeof(struct ifreq) =
    // 40 bytes, NUL-terminated (the name is at most IFNAMSIZ - 1 bytes),
    // and lives for the call; `fd` is an open /dev/net/tun descriptor.
    let rc = unsafe { libc::ioctl(fd, libc::TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets an integer-valued TUN attribute passed by pointer; `request` is
/// TUNSETVNETHDRSZ or TUNSETVNETLE.
fn tun_set_int(fd: RawFd, request: libc::Ioctl, value: libc::c_int) -> io::Result<()> {
    debug_assert!(request == libc::TUNSETVNETHDRSZ || request == libc::TUNSETVNETLE);
    let mut value = value;
    // SAFETY: both requests read one int through the pointer, which points
    // at `value`, alive for the call; `fd` is an open TUN descriptor.
    let rc = unsafe { libc::ioctl(fd, request as _, &mut value as *mut libc::c_int) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks for the TUN_F_* offloads `flags` (TUNSETOFFLOAD); the kernel
/// grants all of them or fails.
fn tun_set_offload(fd: RawFd, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value, not through a
    // pointer, so no memory of ours is touched; `fd` is an open TUN
    // descriptor owned by the caller.
    let rc = unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD as _, libc::c_ulong::from(flags)) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Why a TUN device could not be opened, with what to do about it.
#[derive(Debug)]
pub enum TunError {
    /// No interface of that name exists.
    NotFound(String),
    /// The device exists but is owned by another user or held open by
    /// another process (EPERM, EACCES, EBUSY).
    NotPermitted(String),
    /// `/dev/net/tun` is missing: the kernel module is not loaded.
    NoTunModule,
    /// Not a valid Linux interface name.
    InvalidName(String),
    /// Offload was required ([`Offload::On`]) but the kernel refused it.
    OffloadRefused(String, io::Error),
    /// Any other failure.
    Io(String, io::Error),
}

impl TunError {
    fn from_open(name: &str, err: io::Error) -> TunError {
        match err.raw_os_error() {
            Some(libc::EPERM | libc::EACCES | libc::EBUSY) => {
                TunError::NotPermitted(name.to_string())
            }
            Some(libc::ENODEV | libc::ENXIO) => TunError::NotFound(name.to_string()),
            Some(libc::ENOENT) => TunError::NoTunModule,
            _ => TunError::Io(name.to_string(), err),
        }
    }

    fn kind(&self) -> io::ErrorKind {
        match self {
            TunError::NotFound(_) | TunError::NoTunModule => io::ErrorKind::NotFound,
            TunError::NotPermitted(_) => io::ErrorKind::PermissionDenied,
            TunError::InvalidName(_) => io::ErrorKind::InvalidInput,
            TunError::OffloadRefused(..) => io::ErrorKind::Unsupported,
            TunError::Io(_, e) => e.kind(),
        }
    }
}

impl fmt::Display for TunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunError::NotFound(name) => {
                write!(f, "{name} not found: run sudo scripts/setup-tun.sh")?;
                if name != "tun0" {
                    write!(f, " --dev {name}")?;
                }
                Ok(())
            }
            TunError::NotPermitted(name) => write!(
                f,
                "cannot open {name}: it is not owned by you or is in use; run sudo \
                 scripts/setup-tun.sh (it makes {name} owned by $SUDO_USER)"
            ),
            TunError::NoTunModule => f.write_str(
                "/dev/net/tun is missing: load the tun kernel module with sudo modprobe tun",
            ),
            TunError::InvalidName(name) => write!(
                f,
                "{name:?} is not a valid interface name (1 to {MAX_NAME_LEN} bytes, no '/')"
            ),
            TunError::OffloadRefused(name, e) => write!(
                f,
                "cannot open {name} with offload: {e}; open it with offload auto or off"
            ),
            TunError::Io(name, e) => write!(f, "cannot open {name}: {e}"),
        }
    }
}

impl std::error::Error for TunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TunError::Io(_, e) | TunError::OffloadRefused(_, e) => Some(e),
            _ => None,
        }
    }
}

impl From<TunError> for io::Error {
    fn from(err: TunError) -> io::Error {
        io::Error::new(err.kind(), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_names_the_setup_script() {
        let err = TunDevice::open("doesnotexist0", 1500).unwrap_err();
        let msg = err.to_string();
        if Path::new("/dev/net/tun").exists() {
            assert!(matches!(err, TunError::NotFound(_)), "{err:?}");
            assert_eq!(
                msg,
                "doesnotexist0 not found: run sudo scripts/setup-tun.sh --dev doesnotexist0"
            );
        } else {
            assert!(msg.contains("modprobe tun"), "{msg}");
        }
        // The check must not have created a transient device.
        assert!(!Path::new("/sys/class/net/doesnotexist0").exists());
        let io_err = io::Error::from(err);
        assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
        assert_eq!(io_err.to_string(), msg);
    }

    #[test]
    fn messages_tell_the_user_what_to_run() {
        assert_eq!(
            TunError::NotFound("tun0".into()).to_string(),
            "tun0 not found: run sudo scripts/setup-tun.sh"
        );
        assert_eq!(
            TunError::NotPermitted("tun0".into()).to_string(),
            "cannot open tun0: it is not owned by you or is in use; run sudo \
             scripts/setup-tun.sh (it makes tun0 owned by $SUDO_USER)"
        );
        assert!(TunError::NoTunModule.to_string().contains("modprobe tun"));
        let denied = io::Error::from(TunError::from_open(
            "tun0",
            io::Error::from_raw_os_error(libc::EBUSY),
        ));
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
        assert!(denied.to_string().contains("setup-tun.sh"));
    }

    #[test]
    fn vnet_flags_become_receive_metadata() {
        let partial = VirtioNetHdr {
            flags: vnet::F_NEEDS_CSUM,
            gso_type: vnet::GSO_TCPV4,
            hdr_len: 52,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        assert_eq!(
            rx_meta(&partial),
            RxMeta {
                checksum: RxChecksum::Partial,
                gso_size: Some(1448),
            }
        );
        let valid = VirtioNetHdr {
            flags: vnet::F_DATA_VALID,
            ..VirtioNetHdr::PLAIN
        };
        assert_eq!(rx_meta(&valid).checksum, RxChecksum::Verified);
        assert_eq!(rx_meta(&valid).gso_size, None);
        assert_eq!(rx_meta(&VirtioNetHdr::PLAIN), RxMeta::default());
    }

    #[test]
    fn offloads_and_refusal_read_well() {
        let all = Offloads {
            csum: true,
            tso4: true,
            tso6: true,
        };
        assert_eq!(all.to_string(), "checksum + TSO4 + TSO6");
        let v4 = Offloads { tso6: false, ..all };
        assert_eq!(v4.to_string(), "checksum + TSO4");
        let v6 = Offloads { tso4: false, ..all };
        assert_eq!(v6.to_string(), "checksum + TSO6");
        let csum = Offloads {
            tso4: false,
            tso6: false,
            ..all
        };
        assert_eq!(csum.to_string(), "checksum only");
        assert_eq!(Offloads::default().to_string(), "none");
        let err = TunError::OffloadRefused(
            "tun0".into(),
            io::Error::new(io::ErrorKind::Unsupported, "no TSO4"),
        );
        assert_eq!(
            err.to_string(),
            "cannot open tun0 with offload: no TSO4; open it with offload auto or off"
        );
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn tcpv6_super_segments_get_the_same_receive_metadata() {
        // What the kernel hands us with TSO6 granted: an IPv6 TCP
        // super-segment, checksum partial from the TCP header at 40.
        let partial = VirtioNetHdr {
            flags: vnet::F_NEEDS_CSUM,
            gso_type: vnet::GSO_TCPV6,
            hdr_len: 72,
            gso_size: 1428,
            csum_start: 40,
            csum_offset: 16,
        };
        assert_eq!(
            rx_meta(&partial),
            RxMeta {
                checksum: RxChecksum::Partial,
                gso_size: Some(1428),
            }
        );
        let ecn = VirtioNetHdr {
            gso_type: vnet::GSO_TCPV6 | vnet::GSO_ECN,
            ..partial
        };
        assert_eq!(rx_meta(&ecn), rx_meta(&partial));
    }

    #[test]
    fn each_offload_asks_for_its_flag() {
        let all = Offloads {
            csum: true,
            tso4: true,
            tso6: true,
        };
        assert_eq!(
            offload_flags(&all),
            libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6
        );
        assert_eq!(
            offload_flags(&Offloads { tso6: false, ..all }),
            libc::TUN_F_CSUM | libc::TUN_F_TSO4
        );
        assert_eq!(offload_flags(&Offloads::default()), 0);
        assert!(all.tso(IpVersion::V4) && all.tso(IpVersion::V6));
        let v4 = Offloads { tso6: false, ..all };
        assert!(v4.tso(IpVersion::V4) && !v4.tso(IpVersion::V6));
    }

    /// A super-segment of `payload` bytes over IPv6 (fd00::2 to fd00::1)
    /// or IPv4, with a 20-byte TCP header, CWR if `cwr`, and checksums
    /// left zero.
    fn packet(v6: bool, payload: usize, cwr: bool) -> Vec<u8> {
        use etherparse::PacketBuilder;
        let ip = if v6 {
            let mut src = [0u8; 16];
            src[0] = 0xfd;
            let mut dst = src;
            src[15] = 2;
            dst[15] = 1;
            PacketBuilder::ipv6(src, dst, 64)
        } else {
            PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        };
        let mut b = ip.tcp(40000, 5001, 1, 1024).ack(1);
        if cwr {
            b = b.cwr();
        }
        let mut out = Vec::new();
        b.write(&mut out, &vec![7; payload]).unwrap();
        let ip_len = if v6 { 40 } else { 20 };
        out[ip_len + 16..ip_len + 18].fill(0);
        if !v6 {
            out[10..12].fill(0);
        }
        out
    }

    #[test]
    fn v6_super_segment_is_offloaded_as_tcpv6_from_byte_40() {
        let p = packet(true, 3 * 1428 + 5, false);
        let seg = TcpSuperSegment::parse(&p).unwrap();
        let mut headers = [0u8; MAX_HEADERS];
        let (hdr, len) = offload_headers(&seg, 1428, &mut headers);
        assert_eq!(
            hdr,
            VirtioNetHdr {
                flags: vnet::F_NEEDS_CSUM,
                gso_type: vnet::GSO_TCPV6,
                hdr_len: 60,
                gso_size: 1428,
                csum_start: 40,
                csum_offset: 16,
            }
        );
        assert_eq!(len, 60);
        // The IPv6 header goes as it was (no checksum to fill); the TCP
        // checksum field holds the pseudo-header's partial sum.
        assert_eq!(headers[..40], p[..40]);
        assert_eq!(
            u16::from_be_bytes([headers[56], headers[57]]),
            seg.partial_checksum()
        );
        assert_eq!(headers[40..56], p[40..56]);

        let ecn = packet(true, 2 * 1428, true);
        let seg = TcpSuperSegment::parse(&ecn).unwrap();
        let (hdr, _) = offload_headers(&seg, 1428, &mut headers);
        assert_eq!(hdr.gso_type, vnet::GSO_TCPV6 | vnet::GSO_ECN);

        // One segment's worth: checksum offload only, no GSO.
        let small = packet(true, 1428, false);
        let seg = TcpSuperSegment::parse(&small).unwrap();
        let (hdr, _) = offload_headers(&seg, 1428, &mut headers);
        assert_eq!((hdr.gso_type, hdr.gso_size), (vnet::GSO_NONE, 0));
        assert_eq!((hdr.flags, hdr.csum_start), (vnet::F_NEEDS_CSUM, 40));
    }

    #[test]
    fn v4_super_segment_is_offloaded_as_tcpv4_with_its_header_checksum() {
        let p = packet(false, 3 * 1460, false);
        let seg = TcpSuperSegment::parse(&p).unwrap();
        let mut headers = [0u8; MAX_HEADERS];
        let (hdr, len) = offload_headers(&seg, 1460, &mut headers);
        assert_eq!(
            hdr,
            VirtioNetHdr {
                flags: vnet::F_NEEDS_CSUM,
                gso_type: vnet::GSO_TCPV4,
                hdr_len: 40,
                gso_size: 1460,
                csum_start: 20,
                csum_offset: 16,
            }
        );
        assert_eq!(len, 40);
        assert_eq!(crate::wire::checksum::checksum(&headers[..20]), 0);
        assert_eq!(
            u16::from_be_bytes([headers[36], headers[37]]),
            seg.partial_checksum()
        );
    }

    #[test]
    fn rejects_invalid_names_before_touching_the_kernel() {
        for name in ["", "a/b", "sixteen_chars_xx"] {
            assert!(matches!(
                TunDevice::open(name, 1500),
                Err(TunError::InvalidName(_))
            ));
            assert!(matches!(
                TunDevice::open_with(name, 1500, Offload::On),
                Err(TunError::InvalidName(_))
            ));
        }
    }
}
