//! Running code inside a named network namespace (`ip netns add NAME`).
//!
//! A TUN device is found by name in the network namespace of the thread
//! that opens it, and a socket belongs to the namespace of the thread that
//! creates it. Once open, either keeps working from any thread. So the
//! stack can own a `tun0` that lives in a private namespace, and a test
//! can create kernel sockets on the far side of it, without the whole
//! process leaving its own namespace.
//!
//! Test support, not part of the stack's API: it exists only with the
//! `test-support` feature, which the workspace's real-TUN tests enable
//! through their dev-dependencies.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path as FsPath;
use std::path::Path;
use std::process::Command;

/// Runs `f` on a new thread that has joined the network namespace `name`
/// (as created by `ip netns add`, at `/var/run/netns/NAME`) and returns
/// what it returned. The calling thread's namespace is untouched.
///
/// # Errors
///
/// When the namespace does not exist or `setns(2)` fails (it needs
/// `CAP_SYS_ADMIN`, in practice root).
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let path = Path::new("/var/run/netns").join(name);
    let ns = File::open(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "network namespace {name} not found at {}: {e}",
                path.display()
            ),
        )
    })?;
    let worker = std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || -> io::Result<T> {
            // SAFETY: setns(2) with a valid, open namespace fd (owned by
            // `ns`, alive for the call) and CLONE_NEWNET; it changes only
            // this thread's network namespace and touches no memory of ours.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot enter network namespace: {e} (this needs root)"),
                ));
            }
            Ok(f())
        })?;
    worker
        .join()
        .map_err(|_| io::Error::other("the thread inside the namespace panicked"))?
}

/// Whether this process can make network namespaces with TUN devices in
/// them, as the real-TUN tests and `scripts/setup-tun.sh --netns` do: it
/// needs root, `ip` (iproute2) and `/dev/net/tun`. `Err` says what is
/// missing.
///
/// # Errors
///
/// A sentence naming each missing prerequisite.
pub fn check_privileges() -> Result<(), String> {
    let root = is_root();
    let has_ip = Command::new("ip").arg("-V").output().is_ok();
    let has_tun = FsPath::new("/dev/net/tun").exists();
    if root && has_ip && has_tun {
        return Ok(());
    }
    Err(format!(
        "needs root, iproute2 and /dev/net/tun (root={root}, ip={has_ip}, tun={has_tun})"
    ))
}

/// The effective uid is 0: the third field of `Uid:` in /proc/self/status.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
