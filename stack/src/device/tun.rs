//! A Linux TUN interface: raw IPv4 packets to and from the kernel.
//!
//! The device must already exist, made persistent and owned by the user
//! by `sudo scripts/setup-tun.sh`; then opening it needs no root. This
//! file holds the device I/O path's only `unsafe`: the `poll(2)` and `fcntl(2)`
//! calls, each with its reasoning.

use std::fmt;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Device, PacketBatch};

/// Linux limits interface names to IFNAMSIZ - 1 bytes.
const MAX_NAME_LEN: usize = 15;

/// An open, persistent TUN device in non-blocking mode, without the
/// packet-information header (IFF_NO_PI): each read or write is one
/// bare IPv4 packet.
#[derive(Debug)]
pub struct TunDevice {
    iface: tun_tap::Iface,
    mtu: usize,
    tx_dropped: AtomicU64,
}

impl TunDevice {
    /// Opens the existing TUN device `name`, which will carry packets of
    /// at most `mtu` bytes (set the device's own MTU to match with
    /// `scripts/setup-tun.sh --mtu`).
    ///
    /// # Errors
    ///
    /// A [`TunError`] whose message says what to run: the device does not
    /// exist, it is not ours or is in use, or the `tun` module is not
    /// loaded.
    pub fn open(name: &str, mtu: usize) -> Result<TunDevice, TunError> {
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
        let iface = tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun)
            .map_err(|e| TunError::from_open(name, e))?;
        set_non_blocking(iface.as_raw_fd()).map_err(|e| TunError::Io(name.to_string(), e))?;
        wait_until_running(name);
        if let Some(kernel_mtu) = kernel_mtu(name) {
            if kernel_mtu != mtu {
                tracing::warn!(
                    "{name} has MTU {kernel_mtu} but the stack was configured for {mtu}; \
                     run sudo scripts/setup-tun.sh --mtu {mtu}"
                );
            }
        }
        Ok(TunDevice {
            iface,
            mtu,
            tx_dropped: AtomicU64::new(0),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.iface.name()
    }

    /// Packets `send` dropped because the kernel's queue was full.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_dropped.load(Ordering::Relaxed)
    }

    /// Waits until the fd is readable or `timeout` passes; true if readable.
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        // Round up so a sub-millisecond timeout still waits; clamp to
        // what poll(2) takes.
        let millis = timeout.as_micros().div_ceil(1000);
        let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
        let mut fds = libc::pollfd {
            fd: self.iface.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `fds` is one valid, initialised pollfd that lives across
        // the call, and we pass nfds = 1 to match; the fd is owned by
        // `self.iface` and open for as long as `self` is.
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
}

impl Device for TunDevice {
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        batch.clear();
        if !self.wait_readable(timeout)? {
            return Ok(0);
        }
        // Read until the kernel has nothing more (EAGAIN) or the batch is
        // full, each packet straight into the batch's buffer.
        loop {
            let pushed = batch.push_with(|buf| match self.iface.recv(buf) {
                Ok(n) => Ok(Some(n)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(e),
            })?;
            if !pushed {
                return Ok(batch.len());
            }
        }
    }

    /// Writes one packet. A full kernel queue (EAGAIN, ENOBUFS) drops the
    /// packet and counts it, as a real NIC would.
    fn send(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            match self.iface.send(packet) {
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

    fn mtu(&self) -> usize {
        self.mtu
    }
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
            TunError::Io(name, e) => write!(f, "cannot open {name}: {e}"),
        }
    }
}

impl std::error::Error for TunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TunError::Io(_, e) => Some(e),
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
    fn rejects_invalid_names_before_touching_the_kernel() {
        for name in ["", "a/b", "sixteen_chars_xx"] {
            assert!(matches!(
                TunDevice::open(name, 1500),
                Err(TunError::InvalidName(_))
            ));
        }
    }
}
