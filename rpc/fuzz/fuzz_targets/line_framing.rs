//! Fuzz target: any bytes, delivered in reads of fuzzer-chosen sizes,
//! through `LineReader`. Every frame obeys the framing's contract (a line
//! is non-empty, has no newline, does not start with whitespace and is at
//! most the limit), the lines are exactly those of a simple model when no
//! line is oversize, and compaction moves at most as many bytes as came in
//! (the framing's cost is linear, issue 12).

#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use rpc::framing::{Frame, LineReader};

const MAX_LINE: usize = 64;

/// Reads `data` in pieces whose sizes cycle through `sizes`.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = match self.sizes.get(self.turn % self.sizes.len().max(1)) {
            Some(&s) => usize::from(s).max(1),
            None => 4096,
        };
        self.turn += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The lines the framing should give when none is over the limit.
fn model(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for raw in data.split(|&b| b == b'\n') {
        let start = raw
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(raw.len());
        let mut line = &raw[start..];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        if !line.is_empty() {
            out.push(line.to_vec());
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let split = usize::from(input.first().copied().unwrap_or(0) % 8);
    let (sizes, data) = input
        .get(1..)
        .unwrap_or_default()
        .split_at(split.min(input.len().saturating_sub(1)));
    let mut src = Pieces {
        data,
        sizes,
        turn: 0,
    };
    let mut reader = LineReader::new(MAX_LINE);
    let mut lines = Vec::new();
    let mut oversize = false;
    while let Some(frame) = reader
        .read_frame(&mut src)
        .expect("reads from memory never fail")
    {
        match frame {
            Frame::Line(line) => {
                assert!(!line.is_empty());
                assert!(!line.contains(&b'\n'));
                assert!(!line[0].is_ascii_whitespace());
                assert!(line.len() <= MAX_LINE);
                lines.push(line);
            }
            Frame::Oversize => oversize = true,
        }
    }
    assert!(reader.bytes_moved() <= data.len() as u64);
    // Leading whitespace does not count toward the limit, so a line that
    // only its indentation made long is still a line: compare only when
    // no raw line is over the limit.
    let long_raw = data.split(|&b| b == b'\n').any(|l| l.len() > MAX_LINE);
    if !oversize && !long_raw {
        assert_eq!(lines, model(data));
    }
});
