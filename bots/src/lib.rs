//! Headless LiveKit participants for sfu-harness.
//!
//! A bot speaks LiveKit's signal protocol itself ([`signal`]), runs real `webrtc` peer
//! connections ([`peer`]), publishes synthetic media whose payload measures itself
//! ([`media`]) and reports everything it sees as events ([`sink`]) on the run's clock.
//! It never uses the `livekit` SDK crate (that downloads libwebrtc at build time).

pub mod bot;
pub mod camera;
pub mod gate;
pub mod ice;
pub mod lean;
pub mod media;
pub mod media_tasks;
pub mod peer;
pub mod reconnect;
pub mod session;
pub mod signal;
pub mod sink;
pub mod token;
pub mod video;

pub use bot::{BotConfig, Command, run, run_gated};
pub use sink::EventSink;
