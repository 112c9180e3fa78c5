//! A deadline for each line of a line-framed stream (JSON-RPC on port
//! 7070), as HTTP has one for its request head: once a line's first byte
//! has arrived, the whole line must arrive within `line` (else the read
//! fails and the connection is closed, counted in `head_timeouts`).
//! Between lines the connection may idle for `idle`. The read timeout is
//! moved to the deadline before each read, so a peer trickling one byte
//! at a time cannot hold the connection by restarting an idle timer.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::services::conn::ReadTimeout;
use crate::services::limits::is_timeout;

/// `stream` with per-line read deadlines; see the module docs.
pub struct LineDeadline<'a, S> {
    stream: &'a mut S,
    line: Duration,
    idle: Duration,
    /// When the line not yet complete started, if one has.
    line_started: Option<Instant>,
    /// A read failed because a line missed its deadline.
    pub timed_out: bool,
}

impl<'a, S: Read + Write + ReadTimeout> LineDeadline<'a, S> {
    /// Lines on `stream` must each complete within `line`; between them
    /// the stream may idle for `idle`.
    pub fn new(stream: &'a mut S, line: Duration, idle: Duration) -> LineDeadline<'a, S> {
        LineDeadline {
            stream,
            line,
            idle,
            line_started: None,
            timed_out: false,
        }
    }

    fn line_timeout(&mut self) -> io::Error {
        self.timed_out = true;
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("a line was not complete within {:?}", self.line),
        )
    }
}

impl<S: Read + Write + ReadTimeout> Read for LineDeadline<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = match self.line_started {
            Some(start) => {
                let left = (start + self.line).saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.line_timeout());
                }
                left.min(self.idle)
            }
            None => self.idle,
        };
        self.stream.set_read_timeout(Some(timeout))?;
        let n = match self.stream.read(buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) && self.line_started.is_some() => {
                return Err(self.line_timeout())
            }
            Err(e) => return Err(e),
        };
        let got = buf.get(..n).unwrap_or(&[]);
        // Only the last newline matters: what follows it is the start of
        // the next line. Searching from the end keeps a flood of bare
        // newlines at one comparison per read.
        match got.iter().rposition(|&b| b == b'\n') {
            Some(i) if i + 1 == got.len() => self.line_started = None,
            Some(_) => self.line_started = Some(Instant::now()),
            None if !got.is_empty() && self.line_started.is_none() => {
                self.line_started = Some(Instant::now());
            }
            None => {}
        }
        Ok(n)
    }
}

impl<S: Write> Write for LineDeadline<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::VecDeque;

    use super::*;

    /// Reads come from a script: bytes, or a timeout after the wait it
    /// was given; records every read timeout set.
    struct Script {
        reads: VecDeque<Option<&'static [u8]>>,
        timeouts: Cell<Vec<Duration>>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.reads.pop_front().flatten() {
                Some(b) => {
                    buf[..b.len()].copy_from_slice(b);
                    Ok(b.len())
                }
                None => Err(io::Error::from(io::ErrorKind::WouldBlock)),
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl ReadTimeout for Script {
        fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
            let mut all = self.timeouts.take();
            all.push(t.unwrap_or_default());
            self.timeouts.set(all);
            Ok(())
        }
    }

    const LINE: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(600);

    fn script(reads: &[Option<&'static [u8]>]) -> Script {
        Script {
            reads: reads.iter().copied().collect(),
            timeouts: Cell::new(Vec::new()),
        }
    }

    #[test]
    fn between_lines_the_idle_timeout_applies_within_a_line_the_deadline() {
        let mut s = script(&[Some(b"{\"a\":1}\n"), Some(b"{\"b\""), Some(b":2}\n")]);
        let mut lines = LineDeadline::new(&mut s, LINE, IDLE);
        let mut buf = [0u8; 64];
        for want in [8, 4, 4] {
            assert_eq!(lines.read(&mut buf).unwrap_or_else(|e| panic!("{e}")), want);
        }
        let t = s.timeouts.take();
        assert_eq!(t[0], IDLE);
        assert_eq!(t[1], IDLE);
        assert!(
            t[2] <= LINE && t[2] > LINE - Duration::from_secs(1),
            "{t:?}"
        );
    }

    #[test]
    fn a_timeout_inside_a_line_is_the_line_deadline() {
        let mut s = script(&[Some(b"{\"partial"), None]);
        let mut lines = LineDeadline::new(&mut s, LINE, IDLE);
        let mut buf = [0u8; 64];
        assert_eq!(lines.read(&mut buf).unwrap_or_else(|e| panic!("{e}")), 9);
        let e = lines.read(&mut buf).map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(lines.timed_out);
    }

    #[test]
    fn a_timeout_between_lines_is_the_idle_timeout() {
        let mut s = script(&[Some(b"\n\n\n"), None]);
        let mut lines = LineDeadline::new(&mut s, LINE, IDLE);
        let mut buf = [0u8; 64];
        assert_eq!(lines.read(&mut buf).unwrap_or_else(|e| panic!("{e}")), 3);
        let e = lines.read(&mut buf).map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(!lines.timed_out);
    }
}
