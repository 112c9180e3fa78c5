//! TCP discard (RFC 863): read and throw away everything the peer sends.

use std::io::{self, Read, Write};

/// Size of the one buffer a discard connection uses.
pub const BUF_SIZE: usize = 16 * 1024;

/// Reads from `stream` until end of stream, dropping the data, and returns
/// how many bytes were discarded. Nothing is ever written.
///
/// # Errors
/// Any read error other than `Interrupted`.
pub fn serve<S: Read + Write>(mut stream: S) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::testutil::Duplex;

    #[test]
    fn discards_everything_and_writes_nothing() {
        let mut d = Duplex::new(vec![9u8; 40_000]);
        assert_eq!(serve(&mut d).expect("discard"), 40_000);
        assert!(d.output.is_empty());
    }
}
