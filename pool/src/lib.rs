//! # mlpow-pool
//!
//! A mining pool: it mines through its node as the block author, hands its
//! miners jobs over the mlpow Stratum protocol (`consensus/STRATUM.md`),
//! verifies every share at the miner's share difficulty (one tile), and
//! submits the shares that are blocks to its node at once.
//!
//! - [`jobs`]: work from the node as jobs, which are stale, which shares
//!   were seen;
//! - [`server`]: miners' connections, the protocol's checks in order, and
//!   the pool's policy toward hostile miners;
//! - [`vardiff`]: each connection's share difficulty;
//! - [`prefixes`]: the nonce prefixes that keep miners apart;
//! - [`ledger`]: shares, blocks and what each address is owed, on disk
//!   (PPLNS, credited once a block is final);
//! - [`payout`]: transfers to the addresses owed, signed with the pool's key;
//! - [`node`]: the node connection;
//! - [`stats`]: per-worker counts, the JSON status and Prometheus metrics.

pub mod jobs;
pub mod ledger;
pub mod node;
pub mod payout;
pub mod prefixes;
pub mod server;
pub mod stats;
pub mod vardiff;
