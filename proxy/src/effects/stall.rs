//! `ws-stall`: a black hole on the signal path.
//!
//! Why read and discard rather than stop reading: a stopped reader lets TCP flow control
//! push back on the sender, which a client can notice (its writes block); a black hole
//! swallows everything, and the only symptom is silence — what a client's ping timeout
//! exists to catch. Live connections check the stall per read in their pumps
//! (`crate::conn`); connections that arrive during one are drained here.

use std::sync::atomic::AtomicU64;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::stats;

/// Reads and discards until the peer closes or fails. Never writes, never forwards.
pub(crate) async fn black_hole<R: AsyncRead + Unpin>(reader: &mut R, discarded: &AtomicU64) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = reader.read(&mut buf).await {
        stats::add(discarded, n);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    #[tokio::test]
    async fn black_hole_counts_everything_until_eof() {
        let discarded = AtomicU64::new(0);
        black_hole(&mut [7u8; 10_000].as_slice(), &discarded).await;
        assert_eq!(discarded.load(Relaxed), 10_000);
    }
}
