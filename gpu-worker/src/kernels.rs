//! The CUDA kernel sources (`kernels/*.cu`) and the values the host passes
//! them. Kept apart from the CUDA backend so that tests can compile the
//! sources (NVRTC) and run their bodies on the CPU (a C++ compiler) on
//! machines without a GPU.

use mlpow_primitives::{stream, ticket, Hash32, U256};

/// BLAKE3 for the device.
pub const BLAKE3_CUH: &str = include_str!("../kernels/blake3.cuh");
/// Matrix generation and tile hashing.
pub const MINE_CU: &str = include_str!("../kernels/mine.cu");
/// Puzzle v2: noisy operands, the transcript kernel, the correction.
pub const V2_CU: &str = include_str!("../kernels/v2.cu");
/// The fused correction, shared by both transcript kernels (v2.cu includes it).
pub const V2_CORRECTION_CUH: &str = include_str!("../kernels/v2_correction.cuh");
/// Puzzle v2's transcript kernel for Hopper (`wgmma`, sm_90a only; on other
/// architectures its entry traps).
pub const V2_WGMMA_CU: &str = include_str!("../kernels/v2_wgmma.cu");
/// Puzzle v2's chosen-mode commitments (Merkle roots of the operands'
/// t-row blocks), computed where the operands live.
pub const COMMIT_CU: &str = include_str!("../kernels/commit.cu");
/// Operands the caller keeps on the device (a model's CUDA tensors): range
/// checks, pieces cut out of strided matrices, products added into the
/// caller's output, Freivalds' check, a plain fallback product.
pub const DEVICE_CU: &str = include_str!("../kernels/device.cu");
/// The `extern "C"` kernels of [`MINE_CU`], [`V2_CU`], [`V2_WGMMA_CU`],
/// [`COMMIT_CU`] and [`DEVICE_CU`].
pub const KERNELS: [&str; 20] = [
	"mlpow_generate",
	"mlpow_hash_tiles",
	"mlpow2_noisy",
	"mlpow2_column_sums",
	"mlpow2_limbs",
	"mlpow2_slab",
	"mlpow2_transcript",
	"mlpow2_transcript_useful",
	"mlpow2_transcript_wgmma",
	"mlpow2_transcript_wgmma_useful",
	"mlpow2_chunk_cvs",
	"mlpow2_leaves",
	"mlpow2_merkle_level",
	"mlpow2_range",
	"mlpow2_piece",
	"mlpow2_fv_x",
	"mlpow2_fv_bt",
	"mlpow2_fv_part",
	"mlpow2_fv_rows",
	"mlpow_gemm_i8",
];

/// The derive_key context of the salt that `mlpow2_piece` writes into the
/// pieces it cuts from device operands (a secret seed per piece; private
/// to this worker, not consensus: the salt only has to be unpredictable).
pub const CTX_PIECE_SALT: &str = "mlpow worker device piece salt";

/// The int8 limbs (base 128) the fused correction splits `U` and `V`
/// into (kernels/v2.cu, "The fused correction"): both are sums of `k / r`
/// int8 values, so at most `128 k / r` in magnitude; the low limbs take
/// -64..63 each and the top one must hold what remains within -127..127.
/// 2 at every preset, at most 3 (`ChallengeParams::validate` keeps `k <=
/// r * r`, so `k / r <= 128`).
pub fn correction_limbs(k: u32, r: u32) -> u32 {
	let mut bound = 128 * u64::from(k / r.max(1));
	let mut limbs = 1;
	while bound > 127 {
		// After a low limb w mod 128 in -64..63: |(w - limb) / 128| <=
		// (|w| + 64) / 128.
		bound = (bound + 64) / 128;
		limbs += 1;
	}
	limbs
}

/// Which transcript kernel mines puzzle v2 on a device: `mlpow2_transcript`
/// (mma.sync, every architecture) or `mlpow2_transcript_wgmma` (Hopper's
/// warpgroup instruction, 9.0 only). Both compute the same results; the
/// choice is speed, measured on the device (BENCHMARKS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transcript {
	MmaSync,
	Wgmma,
}

impl Transcript {
	/// The environment variable that picks one: `mma` or `wgmma` (unset:
	/// `mma`, until the wgmma kernel has been measured on a device).
	pub const ENV: &'static str = "MLPOW_V2_KERNEL";

	/// The kernel's entry point for seeded mining.
	pub fn entry(self) -> &'static str {
		match self {
			Self::MmaSync => "mlpow2_transcript",
			Self::Wgmma => "mlpow2_transcript_wgmma",
		}
	}

	/// Its entry point for a useful nonce (the same body with the fused
	/// correction; the seeded entry leaves it out and holds fewer
	/// registers).
	pub fn useful_entry(self) -> &'static str {
		match self {
			Self::MmaSync => "mlpow2_transcript_useful",
			Self::Wgmma => "mlpow2_transcript_wgmma_useful",
		}
	}

	/// The kernels a device of capability `cc` can run.
	pub fn available(cc: (i32, i32)) -> Vec<Self> {
		if cc == (9, 0) {
			vec![Self::MmaSync, Self::Wgmma]
		} else {
			vec![Self::MmaSync]
		}
	}

	/// The kernel `setting` (the value of [`Self::ENV`], if set) names, for
	/// a device of capability `cc`; an error says why it cannot be used.
	pub fn choose(setting: Option<&str>, cc: (i32, i32)) -> anyhow::Result<Self> {
		let chosen = match setting.map(str::trim) {
			None | Some("") | Some("mma") => Self::MmaSync,
			Some("wgmma") => Self::Wgmma,
			Some(other) => anyhow::bail!("{}={other:?}: give mma or wgmma", Self::ENV),
		};
		anyhow::ensure!(
			Self::available(cc).contains(&chosen),
			"{}=wgmma needs a Hopper GPU (compute capability 9.0); this one is {}.{}",
			Self::ENV,
			cc.0,
			cc.1
		);
		Ok(chosen)
	}
}

/// The oldest GPUs mined on: compute capability 7.5 (Turing) is the first
/// with int8 tensor cores that cuBLASLt's IMMA kernels use.
pub const MIN_COMPUTE_CAPABILITY: (i32, i32) = (7, 5);

/// Every kernel as one source: [`V2_WGMMA_CU`] with `v2.cu` pasted in place
/// of its `#include`, `mine.cu` and [`V2_CORRECTION_CUH`] in place of
/// v2.cu's, and `blake3.cuh` in place of mine.cu's; then [`COMMIT_CU`] and
/// [`DEVICE_CU`], whose only
/// include, mine.cu, is already above (dropped, as its include guard would
/// skip it). NVRTC compiles one string and cannot open files.
pub fn source() -> String {
	let mine = MINE_CU.replacen("#include \"blake3.cuh\"", BLAKE3_CUH, 1);
	let v2 = V2_CU.replacen("#include \"mine.cu\"", &mine, 1).replacen(
		"#include \"v2_correction.cuh\"",
		V2_CORRECTION_CUH,
		1,
	);
	let above = |src: &str| src.replacen("#include \"mine.cu\"", "// mine.cu: above", 1);
	V2_WGMMA_CU.replacen("#include \"v2.cu\"", &v2, 1) + "\n" + &above(COMMIT_CU) + "\n" + &above(DEVICE_CU)
}

/// NVRTC's virtual architecture for compute capability `cc`. Hopper (9.0)
/// gets the architecture-specific `compute_90a`: `wgmma.mma_async` (the
/// Hopper transcript kernel) exists only there, not in `compute_90`. PTX
/// for an `a` target runs on exactly that architecture, which is all a 9.0
/// device needs; every other capability gets its plain, forward-compatible
/// `compute_XY`, where the wgmma kernel's entry only traps.
pub fn nvrtc_arch(cc: (i32, i32)) -> String {
	let suffix = if cc == (9, 0) { "a" } else { "" };
	format!("compute_{}{}{suffix}", cc.0, cc.1)
}

/// NVRTC options for a device of compute capability `cc`: PTX for its
/// virtual architecture ([`nvrtc_arch`]), which the driver compiles for the
/// exact GPU.
pub fn nvrtc_options(cc: (i32, i32)) -> Vec<String> {
	vec![format!("--gpu-architecture={}", nvrtc_arch(cc)), "--std=c++17".into(), "-default-device".into()]
}

/// Eight 32-bit words passed to a kernel by value (`struct Words8`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Words8(pub [u32; 8]);

// SAFETY: a plain `#[repr(C)]` array of u32, the layout of `struct Words8`.
unsafe impl cudarc::driver::DeviceRepr for Words8 {}

impl Words8 {
	/// 32 bytes as BLAKE3 reads them: little-endian words.
	pub fn le(bytes: &Hash32) -> Self {
		Self(core::array::from_fn(|w| u32::from_le_bytes(bytes[4 * w..4 * w + 4].try_into().expect("4 bytes"))))
	}

	/// The key BLAKE3's derive_key mode hashes material with: the hash of
	/// the context string (computed once on the host; the device only ever
	/// hashes material).
	pub fn context_key(context: &str) -> Self {
		Self::le(&blake3::hazmat::hash_derive_key_context(context))
	}

	/// The target for `difficulty` as 8 big-endian words, most significant
	/// first, as `b3_meets_target` compares; `None` for difficulty 0.
	pub fn target_be(difficulty: U256) -> Option<Self> {
		let target = ticket::target(difficulty)?.to_big_endian();
		Some(Self(core::array::from_fn(|w| u32::from_be_bytes(target[4 * w..4 * w + 4].try_into().expect("4 bytes")))))
	}
}

/// The three derive_key contexts the kernels use, as keys.
#[derive(Clone, Copy, Debug)]
pub struct ContextKeys {
	pub weights: Words8,
	pub activations: Words8,
	pub tile: Words8,
}

impl ContextKeys {
	pub fn new() -> Self {
		Self {
			weights: Words8::context_key(stream::CTX_WEIGHTS),
			activations: Words8::context_key(stream::CTX_ACTIVATIONS),
			tile: Words8::context_key(stream::CTX_TILE_KEY),
		}
	}
}

impl Default for ContextKeys {
	fn default() -> Self {
		Self::new()
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	/// The limb count covers every value the sums can take: each value of
	/// `-128 k/r ..= 128 k/r`, split as kernels/v2.cu's `mlpow2_limbs_one`
	/// splits it, leaves a top limb within -127..127 and the low ones within
	/// -64..63, and they add back up; one limb fewer does not cover it.
	#[test]
	fn the_correction_limbs_cover_every_column_sum() {
		let split = |mut w: i64, limbs: u32| -> Option<Vec<i64>> {
			let mut out = Vec::new();
			for l in 0..limbs {
				let limb = if l + 1 == limbs { w } else { ((w + 64) & 127) - 64 };
				w = (w - limb) / 128;
				out.push(limb);
			}
			let top_ok = out.last().is_some_and(|t| t.abs() <= 127);
			let low_ok = out[..out.len() - 1].iter().all(|l| (-64..=63).contains(l));
			(top_ok && low_ok).then_some(out)
		};
		for (k, r) in [(64, 32), (4096, 64), (4096, 32), (1 << 16, 32), (1 << 16, 128), (2048, 128)] {
			let limbs = correction_limbs(k, r);
			let bound = 128 * i64::from(k / r);
			for w in -bound..=bound {
				let parts = split(w, limbs).unwrap_or_else(|| panic!("k {k} r {r}: {w} in {limbs} limbs"));
				let back = parts.iter().rev().fold(0i64, |acc, l| acc * 128 + l);
				assert_eq!(back, w);
			}
			assert!(limbs == 1 || split(bound, limbs - 1).is_none() || split(-bound, limbs - 1).is_none());
		}
		assert_eq!(correction_limbs(4096, 64), 2, "the GPU preset");
	}

	#[test]
	fn the_bundled_source_has_no_includes_left_and_every_kernel() {
		let src = source();
		assert!(!src.contains("#include \""), "NVRTC cannot open the files of quoted includes");
		for k in KERNELS {
			assert!(src.contains(&format!("void {k}(")), "{k}");
		}
	}

	#[test]
	fn the_transcript_kernel_is_chosen_by_name_and_wgmma_only_on_hopper() {
		assert_eq!(Transcript::choose(None, (8, 0)).unwrap(), Transcript::MmaSync);
		assert_eq!(Transcript::choose(Some("mma"), (9, 0)).unwrap(), Transcript::MmaSync);
		assert_eq!(Transcript::choose(Some("wgmma"), (9, 0)).unwrap(), Transcript::Wgmma);
		let why = Transcript::choose(Some("wgmma"), (8, 9)).unwrap_err().to_string();
		assert!(why.contains("9.0") && why.contains("8.9"), "{why}");
		let why = Transcript::choose(Some("tensor"), (9, 0)).unwrap_err().to_string();
		assert!(why.contains("mma or wgmma"), "{why}");
		for kernel in Transcript::available((9, 0)) {
			assert!(KERNELS.contains(&kernel.entry()));
		}
	}

	#[test]
	fn only_hopper_compiles_for_its_architecture_specific_target() {
		assert!(nvrtc_options((9, 0)).contains(&"--gpu-architecture=compute_90a".to_string()));
		for cc in [(7, 5), (8, 0), (8, 6), (8, 9), (10, 0), (12, 0)] {
			assert_eq!(nvrtc_options(cc)[0], format!("--gpu-architecture=compute_{}{}", cc.0, cc.1));
		}
	}

	#[test]
	fn target_words_are_the_big_endian_target() {
		assert_eq!(Words8::target_be(U256::one()), Some(Words8([u32::MAX; 8])));
		assert_eq!(Words8::target_be(U256::zero()), None);
		let t = Words8::target_be(U256::from(2u64)).unwrap();
		assert_eq!(t.0[0], 0x7fff_ffff);
		assert_eq!(t.0[7], u32::MAX);
	}

	#[test]
	fn words_are_little_endian_like_blake3_reads_bytes() {
		let mut bytes = [0u8; 32];
		bytes[0] = 1;
		bytes[31] = 0x80;
		let w = Words8::le(&bytes);
		assert_eq!(w.0[0], 1);
		assert_eq!(w.0[7], 0x8000_0000);
	}
}
