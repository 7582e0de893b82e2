//! meshnode protocol core: `no_std` + `alloc`, sans-IO.
//!
//! This crate holds everything that decides what goes on air and what is accepted from it, and nothing that
//! touches the outside world: no clocks, sockets, threads or files. Time enters as [`time::Instant`] arguments,
//! randomness as seeds at construction. The same code therefore runs under tokio with a real radio, under the
//! simulator in virtual time, and in unit tests with a hand-fed clock.
//!
//! Modules, bottom up:
//! - [`time`]: our own `Instant` / `Duration` (milliseconds since an arbitrary epoch).
//! - [`identity`]: static keys, node ids derived from them, fingerprints.
//! - [`wire`]: frames on air (header view + kind bodies), see `mesh/PROTOCOL.md`.
//! - [`link`]: fragmentation of frames into GATT-sized packets and reassembly, per link.
//! - [`session`]: Noise XX handshakes, transport with explicit nonces and a replay window, rekey, limits,
//!   renewal, identity pinning, the session table.
//! - [`channel`]: password channels: Argon2id channel keys and sealed CHANNEL frames.
//! - [`route`]: neighbours, duplicate cache, relay policy, routes, acks and retries, the outbox.
//! - [`node`]: the state machine that ties them together: inputs in, actions and events out.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod channel;
pub mod identity;
pub mod link;
pub mod node;
pub mod route;
pub mod session;
pub mod time;
pub mod wire;
