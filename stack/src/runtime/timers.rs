//! The timer thread: one heap of deadlines for all connections.
//!
//! A connection's next deadline comes from `poll_timeout`; after any
//! activity the runtime pushes it here if it is earlier than the one the
//! socket already has in the heap. Entries are never removed early: when
//! an entry fires, the socket is asked again, and a deadline that moved
//! later is simply pushed anew. So each connection costs about one heap
//! operation per timer interval, not one per segment.
//!
//! The fragment reassembler's timeout (`reasm`) is a deadline in the
//! same heap, armed the same way.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::stats::bump;
use crate::time::{Instant, SystemClock};

use super::socket::TcpSocket;
use super::supervise::{self, PoisonOnUnwind};
use super::Inner;

/// How long the thread sleeps with nothing scheduled before it looks at
/// the shutdown flag again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

#[derive(Default)]
pub(crate) struct Timers {
    heap: Mutex<BinaryHeap<Deadline>>,
    cond: Condvar,
}

struct Deadline {
    at: Instant,
    target: Target,
}

/// What a deadline is for.
enum Target {
    Socket(Weak<TcpSocket>),
    /// The fragment reassembler's oldest datagram.
    Reassembly,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Deadline {}
impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Deadline {
    /// Reversed, so the max-heap pops the earliest deadline first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.at.cmp(&self.at)
    }
}

impl Timers {
    pub(crate) fn schedule(&self, at: Instant, socket: Weak<TcpSocket>) {
        self.push(Deadline {
            at,
            target: Target::Socket(socket),
        });
    }

    /// Arms the reassembler's deadline (see `reasm`).
    pub(crate) fn schedule_reassembly(&self, at: Instant) {
        self.push(Deadline {
            at,
            target: Target::Reassembly,
        });
    }

    fn push(&self, deadline: Deadline) {
        let at = deadline.at;
        let mut heap = self.heap.lock();
        let earliest = heap.peek().is_none_or(|top| at < top.at);
        heap.push(deadline);
        drop(heap);
        if earliest {
            self.cond.notify_one();
        }
    }

    /// The earliest deadline in the heap. It may be stale (the socket's
    /// deadline moved later, or the socket is gone): firing it then does
    /// nothing but look again.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.lock().peek().map(|d| d.at)
    }

    /// Wakes the timer thread so it sees the shutdown flag. Taking the
    /// heap's lock first means the thread is either waiting (and gets the
    /// signal) or has yet to check the flag, never in between.
    pub(crate) fn wake(&self) {
        let _heap = self.heap.lock();
        self.cond.notify_all();
    }
}

/// The timer thread's loop. Only a threaded stack has one, and its clock
/// is the system clock: `clock` turns deadlines into std instants to wait
/// for.
pub(crate) fn run(inner: &Inner, clock: &SystemClock) {
    let timers = &inner.timers;
    loop {
        if supervise::catch(inner, "stack-timers", || fire_due(inner, inner.now())).is_none() {
            supervise::reset_poisoned(inner);
        }
        // The shutdown flag and the next deadline are read under the
        // heap's lock, which `schedule` and `wake` take to notify: a
        // deadline or a shutdown that comes after this read wakes the wait.
        let mut heap = timers.heap.lock();
        if inner.shutdown.load(Ordering::SeqCst) {
            return;
        }
        match heap.peek().map(|d| d.at) {
            Some(at) if at <= inner.now() => {}
            Some(at) => {
                let wake_at = clock.to_std(at);
                timers.cond.wait_until(&mut heap, wake_at);
            }
            None => {
                timers.cond.wait_for(&mut heap, IDLE_WAIT);
            }
        }
    }
}

/// Fires the deadlines due at `now`: one pass of the timer thread, and
/// of a driven stack's `poll`. At most as many as the heap held on entry:
/// a timer that keeps re-arming itself at `now` is fired again at the
/// next call rather than spinning here. Returns how many fired.
pub(crate) fn fire_due(inner: &Inner, now: Instant) -> usize {
    let budget = inner.timers.heap.lock().len();
    let mut fired = 0;
    while fired < budget {
        let due = {
            let mut heap = inner.timers.heap.lock();
            match heap.peek() {
                Some(d) if d.at <= now => heap.pop(),
                _ => None,
            }
        };
        let Some(due) = due else { break };
        fire(inner, due, now);
        fired += 1;
    }
    fired
}

fn fire(inner: &Inner, due: Deadline, now: Instant) {
    let socket = match due.target {
        Target::Socket(socket) => socket,
        Target::Reassembly => return super::reasm::expire(inner, now, due.at),
    };
    let Some(sock) = socket.upgrade() else {
        return;
    };
    let _poison = PoisonOnUnwind(&sock);
    let mut st = sock.state.lock();
    if st.armed == Some(due.at) {
        st.armed = None;
    }
    if st.conn.poll_timeout().is_some_and(|t| t <= now) {
        st.conn.handle_timeout(now);
    }
    if st.orphan_deadline.is_some_and(|t| t <= now) && !st.conn.is_closed() {
        st.orphan_deadline = None;
        st.conn.abort();
        bump(&inner.stats.tcp_orphans_reset);
    }
    inner.finish_activity(&sock, st);
}
