//! The `meshnode` package's library: the modules the binary's subcommands are built from, visible to the
//! integration tests that drive many nodes in virtual time (`tests/sim_*.rs`).
//!
//! - [`simnet`]: the many-node runtime driving `mesh::node::Node`s over `hal::sim`, virtual or paced time.
//! - [`simulate`]: `meshnode simulate`, both relay policies on one scenario, side by side.
//! - [`demo`]: `meshnode demo`, a paced walk through discovery, sessions, fragmentation, faults and recovery.
//! - [`bench`](mod@bench): `meshnode bench`, protocol-core figures against references.
//! - [`alloc_count`]: the counting global allocator behind every memory figure.
//! - [`store`]: the node's sled store in its data directory: the identity sealed at rest, peers, and the trees the
//!   runtime fills (sessions, nonce reservations, outbox, received ids).
#![deny(unsafe_code)]

pub mod alloc_count;
pub mod bench;
mod bench_store;
pub mod demo;
pub mod simnet;
pub mod simulate;
pub mod store;
