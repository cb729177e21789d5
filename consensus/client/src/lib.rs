//! # mlpow-consensus
//!
//! The node's side of MatMul proof of work:
//! - [`algorithm::MatmulPow`], the `sc_consensus_pow::PowAlgorithm`: reads
//!   the difficulty and the challenge through the runtime API at a block's
//!   parent, verifies seals with `mlpow-primitives`, breaks ties by seal hash;
//! - [`mining::MiningBridge`], which turns `sc-consensus-pow`'s mining handle
//!   into numbered work items for external workers and imports their seals;
//! - [`finality::finalize_below_depth`], the maximum reorg depth;
//! - [`metrics::Metrics`], seal checks counted for Prometheus.
//!
//! The mining RPC in the node is a thin JSON layer over the bridge.

pub mod algorithm;
pub mod finality;
pub mod metrics;
pub mod mining;

pub use algorithm::{MatmulPow, ParentRules};
pub use finality::{finalize_below_depth, DEFAULT_MAX_REORG_DEPTH};
pub use metrics::Metrics;
pub use mining::{MiningBridge, SubmitOutcome, Work};
