//! The CUDA backend: one lane per GPU, each with its own context, two
//! streams and device buffers.
//!
//! Per batch of nonces, all on the device (consensus/SPEC.md, "What a miner
//! does"):
//! 1. `mlpow_generate` writes every nonce's activations `A` (BLAKE3 XOF);
//! 2. cuBLASLt multiplies them by the epoch's weights with int8 tensor cores
//!    (IMMA, the TN layout: both operands k-contiguous), exact i32 results;
//! 3. `mlpow_hash_tiles` hashes every tile of the product and appends the
//!    winners to a small buffer, the only thing copied back.
//!
//! The weights `Bt` are generated on the device when the weights seed
//! changes and stay resident for the epoch. Batches alternate between two
//! streams with their own buffers, so one batch's hashing overlaps the next
//! one's GEMM. Every winner is re-verified on the host with
//! `mlpow-primitives` before it is reported: a seal that fails is a device
//! or kernel fault, and the lane stops with an error rather than submit it.
//!
//! Libraries are loaded at run time (cudarc's dynamic loading): the NVIDIA
//! driver (`libcuda.so.1`), NVRTC (`libnvrtc.so.13` or `.12`) and cuBLASLt
//! (`libcublasLt.so.13` or `.12`). Each is probed before first use, because
//! cudarc panics on a missing library; a missing one is a clear error here.
//!
//! Puzzle v2 has its own pipeline, [`v2`]: noise, noisy operands and one
//! transcript kernel (kernels/v2.cu) that multiplies, folds and hashes, with
//! the tensor cores driven by `mma.sync`; cuBLASLt stays as the benchmark's
//! yardstick.
//!
//! The files: [`device`] finds GPUs and compiles the kernels; [`lane`] is a
//! GPU's mining pipeline; [`v2`] its puzzle v2 pipeline; [`commit`] the
//! chosen-mode commitments of device matrices; [`operand`] describes the
//! matrices a caller lends from device memory and [`inproc`] launches the
//! kernels that work on them; [`launch`] holds the kernel-launch helpers;
//! [`gemm`] wraps cuBLASLt.

mod commit;
mod device;
mod gemm;
mod inproc;
mod lane;
mod launch;
pub mod operand;
mod v2;

pub use device::{compile_kernels, devices, DeviceInfo};
pub use inproc::{
	call::{DeviceOutcome, DevicePlan, DeviceRhs, MinedPiece},
	weight::DeviceWeight,
};
pub use lane::{lanes, CudaLane};
#[cfg(feature = "test-hooks")]
pub use v2::V2Debug;

/// Winners kept per batch. At any sane difficulty a batch has none or one;
/// more than this means the difficulty is far below the batch's ticket
/// count, and the extra winners are dropped (logged).
pub(crate) const WINNER_CAPACITY: u32 = 256;

/// cuBLASLt's scratch space; its heuristics pick kernels that fit.
const GEMM_WORKSPACE: usize = 32 << 20;

/// Threads per block for both kernels (each thread is independent).
const THREADS: u32 = 256;
