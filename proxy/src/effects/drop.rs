//! `ws-drop`: reset every live connection at once.
//!
//! Why a reset and not a close: the fault models the path losing the connection (a load
//! balancer restarting, NAT state expiring), which a client sees as `ECONNRESET`, not as
//! an orderly end of stream. Both sockets are reset so the SFU also sees the loss at once
//! instead of holding a half-dead participant until its own timeout.
//!
//! Mechanism: applying `Drop` bumps the state's drop epoch; each connection remembers the
//! epoch it was accepted under and its control future ends it when the epoch moves.

use tokio::net::TcpStream;

/// Makes closing `stream` send RST instead of FIN. Zero linger never blocks on drop, so
/// it is safe on the runtime's threads (a non-zero linger would not be).
pub(crate) fn arm_reset(stream: &TcpStream) {
    // Failure leaves a plain close, still a cut; nothing better to do with the error.
    let _ = stream.set_zero_linger();
}
