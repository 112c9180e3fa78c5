//! How a blocking call waits between the [`attempt`](super::attempt)s of
//! its operation: on the socket's condition variable, under the call's
//! deadline and the socket's non-blocking flag. The attempt decides
//! everything else (what is ready, which error), so the blocking and the
//! async API cannot drift apart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant as StdInstant;

use parking_lot::{Condvar, MutexGuard};

use super::attempt::Step;

/// Why a blocking call stopped waiting without a result.
pub(crate) enum GaveUp {
    /// The socket is in non-blocking mode and the attempt had to wait.
    NonBlocking,
    /// The deadline passed, and an attempt after it still had to wait.
    TimedOut,
}

/// Runs `attempt` until it is ready, waiting on `cond` (whose mutex
/// `guard` holds) between tries: the result, or why it gave up with the
/// guard still held (so the caller may act under the lock, as a timed-out
/// connect aborts).
///
/// `nonblocking` is read before each wait, as a flag another handle may
/// set. After the deadline passes the attempt runs once more, so what
/// arrived by the deadline is still taken.
pub(crate) fn wait_for<'a, S, T>(
    cond: &Condvar,
    mut guard: MutexGuard<'a, S>,
    until: Option<StdInstant>,
    nonblocking: &AtomicBool,
    mut attempt: impl FnMut(MutexGuard<'a, S>) -> Step<MutexGuard<'a, S>, T>,
) -> Result<std::io::Result<T>, (MutexGuard<'a, S>, GaveUp)> {
    loop {
        guard = match attempt(guard) {
            Step::Ready(r) => return Ok(r),
            Step::Wait(g) => g,
        };
        if nonblocking.load(Ordering::Relaxed) {
            return Err((guard, GaveUp::NonBlocking));
        }
        match until {
            Some(t) => {
                if cond.wait_until(&mut guard, t).timed_out() {
                    return match attempt(guard) {
                        Step::Ready(r) => Ok(r),
                        Step::Wait(g) => Err((g, GaveUp::TimedOut)),
                    };
                }
            }
            None => cond.wait(&mut guard),
        }
    }
}

/// [`wait_for`], with giving up as the `WouldBlock` error `std` returns
/// ("`what` would block", "`what` timed out").
pub(crate) fn wait_or_block<'a, S, T>(
    what: &str,
    cond: &Condvar,
    guard: MutexGuard<'a, S>,
    until: Option<StdInstant>,
    nonblocking: &AtomicBool,
    attempt: impl FnMut(MutexGuard<'a, S>) -> Step<MutexGuard<'a, S>, T>,
) -> std::io::Result<T> {
    match wait_for(cond, guard, until, nonblocking, attempt) {
        Ok(r) => r,
        Err((_, GaveUp::NonBlocking)) => Err(super::would_block(what)),
        Err((_, GaveUp::TimedOut)) => Err(super::timed_out(what)),
    }
}
