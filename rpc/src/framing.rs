//! Newline-delimited framing: one JSON text per line on a byte stream.
//!
//! Like mini-redis's `Connection`, finding a frame is two steps: a cheap
//! [`check_line`] that only asks "has a whole line arrived?" (`Incomplete`
//! is the normal state of a stream, not an error), and then the JSON parse,
//! which happens elsewhere (in the server or client) on a complete line.
//!
//! DoS bound: a line may be at most `max_line` bytes (default
//! [`DEFAULT_MAX_LINE`], 1 MiB); the buffer never holds more than
//! `max_line + READ_CHUNK` bytes. A longer line is reported once as
//! [`Frame::Oversize`] and the rest of it, up to the next newline, is
//! discarded, so the connection stays usable.

use std::io::{self, Read, Write};

/// Default maximum line length: 1 MiB.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// Bytes asked of the stream per `read` call.
const READ_CHUNK: usize = 8 * 1024;

/// The answer of the cheap completeness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A line of this many bytes, newline included, is at the front.
    Complete(usize),
    /// No newline yet: read more.
    Incomplete,
}

/// Is there a whole line at the front of `buf`?
pub fn check_line(buf: &[u8]) -> Check {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) => Check::Complete(i + 1),
        None => Check::Incomplete,
    }
}

/// One unit read off the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A line without its `\n` (or `\r\n`).
    Line(Vec<u8>),
    /// A line longer than the limit was skipped; the peer should be told.
    Oversize,
}

/// Reads [`Frame`]s from a byte stream, keeping partial lines between reads.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline (avoids rescanning
    /// a long partial line on every small read).
    scanned: usize,
    max_line: usize,
    /// Inside an oversize line: drop bytes until the next newline.
    discarding: bool,
}

impl LineReader {
    /// A reader that accepts lines of at most `max_line` bytes (newline excluded).
    pub fn new(max_line: usize) -> LineReader {
        LineReader {
            buf: Vec::new(),
            scanned: 0,
            max_line,
            discarding: false,
        }
    }

    /// The next frame, reading from `r` as needed. `Ok(None)` at end of
    /// stream; an unterminated last line is still returned as a line.
    ///
    /// # Errors
    ///
    /// Any error of `r.read` other than `Interrupted`.
    pub fn read_frame<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<Option<Frame>> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if let Some(frame) = self.next_buffered() {
                return Ok(Some(frame));
            }
            let n = match r.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(self.finish());
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    /// A frame from what is already buffered, if there is one.
    fn next_buffered(&mut self) -> Option<Frame> {
        loop {
            let unscanned = self.buf.get(self.scanned..).unwrap_or_default();
            match check_line(unscanned) {
                Check::Complete(n) => {
                    let len = self.scanned + n;
                    let line: Vec<u8> = self.buf.drain(..len).collect();
                    self.scanned = 0;
                    if std::mem::take(&mut self.discarding) {
                        // The tail of an oversize line: already reported.
                        continue;
                    }
                    if len - 1 > self.max_line {
                        return Some(Frame::Oversize);
                    }
                    return Some(Frame::Line(trim_newline(line)));
                }
                Check::Incomplete if self.discarding => {
                    self.buf.clear();
                    self.scanned = 0;
                    return None;
                }
                Check::Incomplete if self.buf.len() > self.max_line => {
                    self.buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Some(Frame::Oversize);
                }
                Check::Incomplete => {
                    self.scanned = self.buf.len();
                    return None;
                }
            }
        }
    }

    /// End of stream: hand out an unterminated last line.
    fn finish(&mut self) -> Option<Frame> {
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        if std::mem::take(&mut self.discarding) || rest.is_empty() {
            return None;
        }
        Some(Frame::Line(trim_newline(rest)))
    }
}

fn trim_newline(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

/// Writes `body` and a newline as one write, then flushes.
///
/// # Errors
///
/// Any error of the writer.
pub fn write_line<W: Write + ?Sized>(w: &mut W, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.extend_from_slice(body);
    out.push(b'\n');
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut r = LineReader::new(max);
        let mut src = input;
        let mut out = Vec::new();
        while let Some(f) = r.read_frame(&mut src).unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn check_line_reports_incomplete_without_newline() {
        assert_eq!(check_line(b"{\"a\":1"), Check::Incomplete);
        assert_eq!(check_line(b"ab\ncd"), Check::Complete(3));
    }

    #[test]
    fn splits_coalesced_lines_and_strips_crlf() {
        assert_eq!(
            frames(b"a\r\nb\nc", 10),
            vec![line("a"), line("b"), line("c")]
        );
    }

    #[test]
    fn line_of_exactly_max_is_accepted_one_more_is_oversize() {
        assert_eq!(frames(b"abcd\n", 4), vec![line("abcd")]);
        assert_eq!(frames(b"abcde\nok\n", 4), vec![Frame::Oversize, line("ok")]);
    }

    #[test]
    fn oversize_without_newline_in_buffer_discards_to_next_newline() {
        let mut input = vec![b'x'; 3 * READ_CHUNK];
        input.extend_from_slice(b"\nnext\n");
        assert_eq!(frames(&input, 100), vec![Frame::Oversize, line("next")]);
    }

    #[test]
    fn oversize_at_end_of_stream_yields_nothing_more() {
        let input = vec![b'x'; 2 * READ_CHUNK];
        assert_eq!(frames(&input, 100), vec![Frame::Oversize]);
    }
}
