//! TCP discard (RFC 863): read and throw away everything the peer sends.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of the one buffer a discard connection uses.
pub const BUF_SIZE: usize = 16 * 1024;

/// Reads from `stream` until end of stream, dropping the data, and returns
/// how many bytes were discarded. Nothing is ever written. The buffer is
/// allocated at the first byte, so an idle connection costs little.
///
/// # Errors
/// Any read error (the deadlines' among them).
pub async fn serve<S: AsyncRead + Unpin>(mut stream: S) -> io::Result<u64> {
    let mut first = [0u8; 1];
    if stream.read(&mut first).await? == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; BUF_SIZE];
    let mut total = 1u64;
    loop {
        match stream.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn discards_everything_and_writes_nothing() {
        let (ours, mut theirs) = tokio::io::duplex(4096);
        let server = tokio::spawn(serve(ours));
        theirs.write_all(&[9u8; 40_000]).await.expect("write");
        theirs.shutdown().await.expect("shutdown");
        assert_eq!(server.await.expect("join").expect("discard"), 40_000);
        let mut rest = Vec::new();
        theirs.read_to_end(&mut rest).await.expect("read");
        assert!(rest.is_empty());
    }
}
