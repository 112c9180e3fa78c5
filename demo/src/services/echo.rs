//! TCP echo (RFC 862): every byte received is sent back, until the peer
//! closes its side.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The buffer an echo connection starts with: small, so that thousands of
/// idle connections cost little.
pub const FIRST_BUF: usize = 2 * 1024;

/// The most it grows to, for a peer that sends in bulk.
pub const BUF_SIZE: usize = 64 * 1024;

/// Copies everything read from `stream` back to it until end of stream, and
/// returns the number of bytes echoed. The buffer is allocated at the first
/// byte and grows while reads fill it.
///
/// RFC 862: "Once a connection is established any data received is sent
/// back. This continues until the calling user terminates the connection."
///
/// # Errors
/// Any read or write error (the deadlines' among them).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> io::Result<u64> {
    let mut buf = Vec::new();
    let mut total = 0u64;
    loop {
        if buf.is_empty() {
            // Wait for the first byte without a buffer.
            let mut first = [0u8; 1];
            if stream.read(&mut first).await? == 0 {
                break;
            }
            stream.write_all(&first).await?;
            total += 1;
            buf = vec![0u8; FIRST_BUF];
            continue;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stream.write_all(buf.get(..n).unwrap_or(&[])).await?;
        total += n as u64;
        if n == buf.len() && buf.len() < BUF_SIZE {
            buf.resize(buf.len() * 4, 0);
        }
    }
    stream.flush().await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    #[tokio::test]
    async fn echoes_every_byte_until_eof() {
        let input: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8).collect();
        let (ours, theirs) = tokio::io::duplex(10_000);
        let server = tokio::spawn(serve(ours));
        let sent = input.clone();
        let (mut rd, mut wr) = tokio::io::split(theirs);
        let writer = tokio::spawn(async move {
            wr.write_all(&sent).await.expect("write");
            wr.shutdown().await.expect("shutdown");
        });
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.expect("read");
        writer.await.expect("writer");
        assert_eq!(
            server.await.expect("join").expect("echo"),
            input.len() as u64
        );
        assert_eq!(got, input);
    }
}
