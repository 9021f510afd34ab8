//! Provisioning: the container engine and the SFU nodes a run needs.

pub mod docker;
pub mod livekit;
pub mod nft;
