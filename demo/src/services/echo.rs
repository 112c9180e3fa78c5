//! TCP echo (RFC 862): every byte received is sent back, until the peer
//! closes its side.

use std::io::{self, Read, Write};

/// Size of the one buffer an echo connection uses.
pub const BUF_SIZE: usize = 16 * 1024;

/// Copies everything read from `stream` back to it until end of stream, and
/// returns the number of bytes echoed.
///
/// RFC 862: "Once a connection is established any data received is sent
/// back. This continues until the calling user terminates the connection."
/// The caller then shuts down the write side (or drops the stream), which
/// sends our FIN after the last echoed byte.
///
/// # Errors
/// Any read or write error other than `Interrupted`.
pub fn serve<S: Read + Write>(mut stream: S) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stream.write_all(buf.get(..n).unwrap_or(&[]))?;
        total += n as u64;
    }
    stream.flush()?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::testutil::Duplex;

    #[test]
    fn echoes_every_byte_until_eof() {
        let input: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
        let mut d = Duplex::new(input.clone());
        assert_eq!(serve(&mut d).expect("echo"), input.len() as u64);
        assert_eq!(d.output, input);
    }
}
