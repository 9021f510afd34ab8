//! Provisioning: the container engine, the SFU nodes and the network sites a run needs.

pub mod docker;
pub mod livekit;
pub mod nft;
pub mod site;
