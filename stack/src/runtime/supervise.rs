//! Supervision of the stack's own threads. A panic on the RX or timer
//! thread must not stop packet processing while every blocked call waits
//! forever. So each pass of those threads runs under [`catch`]: a panic is
//! caught, logged and counted (`thread_panics`), and the thread goes on
//! with the stack's state intact. Only what it was working on is given up:
//! the batch in hand, and the connection being handled, which may be half
//! updated, is reset ([`reset_poisoned`]). After
//! `Config::max_thread_panics` panics the stack shuts down instead, so
//! every waiting call fails with "the stack was shut down".

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::stats::bump;
use crate::tcp::ConnError;

use super::socket::{Entry, TcpSocket};
use super::{tx, Inner};

/// Runs `pass` of `thread`; `None` when it panicked (then logged and
/// counted, and the stack shut down if that was one panic too many).
pub(crate) fn catch<R>(inner: &Inner, thread: &str, pass: impl FnOnce() -> R) -> Option<R> {
    let payload = match panic::catch_unwind(AssertUnwindSafe(pass)) {
        Ok(r) => return Some(r),
        Err(payload) => payload,
    };
    let panics = inner.stats.thread_panics.fetch_add(1, Ordering::Relaxed) + 1;
    let limit = u64::from(inner.config.max_thread_panics);
    tracing::error!(
        thread,
        panics,
        limit,
        "panic caught on a stack thread: {}",
        message(payload.as_ref())
    );
    if panics >= limit {
        tracing::error!("{panics} panics on the stack's threads: shutting the stack down");
        inner.shutdown();
    }
    None
}

fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Marks `sock` as poisoned if its handling unwinds, so [`reset_poisoned`]
/// resets it once the panic is caught. Marking is all the drop does: no
/// connection code runs during the unwind.
pub(crate) struct PoisonOnUnwind<'a>(pub(crate) &'a TcpSocket);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

/// After a caught panic: resets every connection whose handling panicked
/// (its state may break its own invariants) and wakes its waiters. If
/// even the reset panics, the connection is taken out of the table.
pub(crate) fn reset_poisoned(inner: &Inner) {
    let poisoned: Vec<Arc<TcpSocket>> = inner
        .entries()
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::Tcp(sock) if sock.poisoned.swap(false, Ordering::Relaxed) => Some(sock),
            _ => None,
        })
        .collect();
    for sock in poisoned {
        bump(&inner.stats.tcp_poisoned_reset);
        let mut st = sock.state.lock();
        let reset = panic::catch_unwind(AssertUnwindSafe(|| {
            if !st.conn.is_closed() {
                st.conn.abort_with(ConnError::Aborted);
            }
            inner.after_activity(&sock, &mut st);
        }));
        if reset.is_err() {
            inner.forget(&sock, &mut st);
        }
        drop(st);
        sock.notify();
    }
    tx::flush(inner);
}
