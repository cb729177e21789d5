//! Puzzle v2: tickets from the product of any 7-bit matrices, noised and
//! transcribed (SPEC.md, "Puzzle v2"), after Komargodski, Schen and
//! Weinstein, *Proofs of Useful Work from Arbitrary Matrix Multiplication*
//! (arXiv 2504.09971).
//!
//! - [`noise`]: seeds, seeded matrices, and the rank-`r` noise;
//! - [`commit`]: Merkle commitments to row blocks, and their paths;
//! - [`transcript`]: the chunked running sums, their fold, the ticket;
//! - [`tickets`]: a nonce's tickets screened sixteen at a time;
//! - [`fused`]: the whole noisy product with every tile's transcript in one pass;
//! - [`seal`]: the v2 seal and its openings;
//! - [`verify`](mod@verify): one seal, one tile;
//! - [`mine`]: the reference miner;
//! - [`denoise`]: removing a nonce's noise, so the miner keeps the exact product.

pub mod commit;
pub mod denoise;
pub mod fused;
pub mod mine;
pub mod noise;
mod paired;
pub mod seal;
pub mod tickets;
pub mod transcript;
pub mod verify;

pub use mine::{Buffers, Job, JobError, Miner, Winner};
pub use noise::Mode;
pub use verify::verify_v2;
