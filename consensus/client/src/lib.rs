//! # mlpow-consensus
//!
//! The node's side of MatMul proof of work:
//! - [`algorithm::MatmulPow`], the `sc_consensus_pow::PowAlgorithm`: reads
//!   the difficulty and the challenge through the runtime API at a block's
//!   parent, verifies seals with `mlpow-primitives`, keeps the first-seen
//!   block at equal work;
//! - [`verifier::SealVerifier`], the import queue's verifier: the seal is
//!   checked before the body is touched, and a bad one costs the peer;
//! - [`mining::MiningBridge`], which turns `sc-consensus-pow`'s mining handle
//!   into numbered work items for external workers and imports their seals;
//! - [`finality::finalize_below_depth`], the maximum reorg depth, applied
//!   only in sync, on a chain with the spec's minimum work, and not while a
//!   fork a peer claims is being weighed ([`forks::PendingForks`]);
//! - [`sync::VerifiedSync`], the sync oracle that mining and finality ask:
//!   behind only on verified progress, never on peers' claims alone;
//! - [`metrics::Metrics`], seal checks counted for Prometheus;
//! - [`test_switches`], what debug builds let tests do on development
//!   chains (a hostile node, a test clock, a slow importer).
//!
//! The mining RPC in the node is a thin JSON layer over the bridge.

pub mod algorithm;
pub mod finality;
pub mod forks;
pub mod metrics;
pub mod mining;
pub mod sync;
pub mod test_switches;
pub mod verifier;

pub use algorithm::{MatmulPow, ParentRules};
pub use finality::{finalize_below_depth, FinalityRules, DEFAULT_FINALITY_SETTLE, DEFAULT_MAX_REORG_DEPTH};
pub use forks::PendingForks;
pub use metrics::Metrics;
pub use mining::{MiningBridge, SubmitOutcome, Work};
pub use sync::VerifiedSync;
pub use verifier::SealVerifier;
