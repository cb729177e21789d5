//! Seeds and the matrices they expand into.
//!
//! Every seed and every matrix comes from BLAKE3 in `derive_key` mode, one
//! context string per purpose (SPEC.md, "Hash functions"). Matrices are the
//! extendable output (XOF) of that mode: element `(r, c)` of a matrix with
//! row length `k` is byte `r * k + c` of its stream, read as a two's-complement
//! `i8`. BLAKE3's output is seekable in 64-byte blocks, so a verifier generates
//! just the `t` rows it needs and a GPU generates any block in parallel.

use crate::Hash32;
use blake3::hazmat::HasherExt;

/// Context for the per-epoch weights seed.
pub const CTX_WEIGHTS_SEED: &str = "mlpow v1 weights seed";
/// Context for the per-header job seed.
pub const CTX_JOB_SEED: &str = "mlpow v1 job seed";
/// Context for the weights stream `Bt` (`n x k`).
pub const CTX_WEIGHTS: &str = "mlpow v1 weights";
/// Context for the activations stream `A` (`m x k`) of one nonce.
pub const CTX_ACTIVATIONS: &str = "mlpow v1 activations";
/// Context for the per-tile digest key.
pub const CTX_TILE_KEY: &str = "mlpow v1 tile key";

fn hasher(context: &str) -> blake3::Hasher {
	blake3::Hasher::new_derive_key(context)
}

/// The weights seed of an epoch: `derive_key(CTX_WEIGHTS_SEED, anchor || epoch_index as u64 LE)`,
/// where `anchor` is the hash of the block before the epoch's first block.
/// The pallet computes it once per epoch; nothing about the weights can be
/// known before the anchor block exists.
pub fn weights_seed(anchor: &Hash32, epoch_index: u64) -> Hash32 {
	let mut h = hasher(CTX_WEIGHTS_SEED);
	h.update(anchor);
	h.update(&epoch_index.to_le_bytes());
	*h.finalize().as_bytes()
}

/// The job seed binds the header being sealed (its `pre_hash`: parent,
/// extrinsics, author digest) to the epoch's weights:
/// `derive_key(CTX_JOB_SEED, pre_hash || weights_seed)`.
pub fn job_seed(pre_hash: &Hash32, weights_seed: &Hash32) -> Hash32 {
	let mut h = hasher(CTX_JOB_SEED);
	h.update(pre_hash);
	h.update(weights_seed);
	*h.finalize().as_bytes()
}

/// A positioned reader over one matrix's byte stream.
pub struct MatrixStream {
	reader: blake3::OutputReader,
	k: u64,
}

impl MatrixStream {
	/// The weights `Bt` of an epoch: XOF of `derive_key(CTX_WEIGHTS, weights_seed)`.
	pub fn weights(weights_seed: &Hash32, k: u32) -> Self {
		let mut h = hasher(CTX_WEIGHTS);
		h.update(weights_seed);
		Self { reader: h.finalize_xof(), k: k as u64 }
	}

	/// The activations `A` of one nonce: XOF of
	/// `derive_key(CTX_ACTIVATIONS, job_seed || nonce as u64 LE)`.
	pub fn activations(job_seed: &Hash32, nonce: u64, k: u32) -> Self {
		let mut h = hasher(CTX_ACTIVATIONS);
		h.update(job_seed);
		h.update(&nonce.to_le_bytes());
		Self { reader: h.finalize_xof(), k: k as u64 }
	}

	/// Fills `out` with consecutive elements starting at row `first_row`,
	/// column 0 (so `out.len() / k` whole rows when the length is a multiple
	/// of `k`). Total: the position is at most `2^32 * 2^32`, within `u64`.
	pub fn read_rows(&mut self, first_row: u32, out: &mut [i8]) {
		self.reader.set_position(first_row as u64 * self.k);
		self.reader.fill(as_bytes_mut(out));
	}
}

/// Views an `i8` buffer as bytes; the stream's bytes *are* the elements.
fn as_bytes_mut(v: &mut [i8]) -> &mut [u8] {
	// SAFETY: i8 and u8 have the same size, alignment and validity (every bit
	// pattern is valid for both); the returned slice borrows `v` exclusively.
	unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len()) }
}

/// A pre-hashed `derive_key` context, for hot loops that derive many keys.
pub(crate) struct Context(blake3::hazmat::ContextKey);

impl Context {
	pub(crate) fn new(context: &str) -> Self {
		Self(blake3::hazmat::hash_derive_key_context(context))
	}

	/// Exactly `blake3::derive_key(context, parts.concat())`.
	pub(crate) fn derive(&self, parts: &[&[u8]]) -> Hash32 {
		let mut h = blake3::Hasher::new_from_context_key(&self.0);
		for p in parts {
			h.update(p);
		}
		*h.finalize().as_bytes()
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use alloc::vec;

	#[test]
	fn seeking_equals_reading_through() {
		let seed = [7u8; 32];
		let k = 48;
		let mut all = vec![0i8; 10 * k as usize];
		MatrixStream::activations(&seed, 3, k).read_rows(0, &mut all);
		for row in 0..10u32 {
			let mut one = vec![0i8; k as usize];
			MatrixStream::activations(&seed, 3, k).read_rows(row, &mut one);
			assert_eq!(&one[..], &all[row as usize * k as usize..][..k as usize]);
		}
	}

	#[test]
	fn streams_are_domain_separated() {
		let seed = [1u8; 32];
		let mut a = vec![0i8; 64];
		let mut b = vec![0i8; 64];
		MatrixStream::weights(&seed, 64).read_rows(0, &mut a);
		MatrixStream::activations(&seed, 0, 64).read_rows(0, &mut b);
		assert_ne!(a, b);
		let mut c = vec![0i8; 64];
		MatrixStream::activations(&seed, 1, 64).read_rows(0, &mut c);
		assert_ne!(b, c);
	}

	#[test]
	fn context_matches_plain_derive_key() {
		let ctx = Context::new(CTX_TILE_KEY);
		assert_eq!(ctx.derive(&[b"ab", b"cd"]), blake3::derive_key(CTX_TILE_KEY, b"abcd"));
	}

	#[test]
	fn stream_is_plain_blake3_xof() {
		// The stream is nothing but the standard derive_key XOF: an independent
		// implementation needs no more than a BLAKE3 library.
		let seed = [9u8; 32];
		let mut got = vec![0i8; 100];
		MatrixStream::weights(&seed, 20).read_rows(2, &mut got);
		let mut want = [0u8; 140];
		let mut h = blake3::Hasher::new_derive_key(CTX_WEIGHTS);
		h.update(&seed);
		h.finalize_xof().fill(&mut want);
		for (g, w) in got.iter().zip(&want[40..]) {
			assert_eq!(*g as u8, *w);
		}
	}
}
