//! v2 commitments: a Merkle tree over the `t`-row blocks of a matrix.
//!
//! `A` (`m x k`) has `m / t` leaves, leaf `i` hashing rows `i*t .. i*t + t`
//! (the `t * k` bytes a seal on tile row `i` opens); `Bt` likewise has `n / t`.
//! The tree is binary over the leaves padded with all-zero hashes to the next
//! power of two, so a path is `ceil(log2(leaves))` sibling hashes. Leaves and
//! nodes hash under different contexts, so neither can pose as the other.

use crate::Hash32;
use alloc::{vec, vec::Vec};

/// Context of a leaf: `derive_key(CTX_LEAF, t*k bytes of the rows)`.
pub const CTX_LEAF: &str = "mlpow v2 leaf";
/// Context of an inner node: `derive_key(CTX_NODE, left || right)`.
pub const CTX_NODE: &str = "mlpow v2 node";
/// The padding leaf.
pub const EMPTY: Hash32 = [0u8; 32];

/// The hash of one block of rows.
pub fn leaf(rows: &[i8]) -> Hash32 {
	// SAFETY: i8 and u8 have the same size, alignment and validity.
	let bytes = unsafe { core::slice::from_raw_parts(rows.as_ptr().cast::<u8>(), rows.len()) };
	blake3::derive_key(CTX_LEAF, bytes)
}

/// The hash of an inner node.
pub fn node(left: &Hash32, right: &Hash32) -> Hash32 {
	let mut h = blake3::Hasher::new_derive_key(CTX_NODE);
	h.update(left);
	h.update(right);
	*h.finalize().as_bytes()
}

/// Path length (tree depth) for `leaves` leaves: `ceil(log2(leaves))`, 0 for one leaf.
pub fn depth(leaves: u32) -> u32 {
	leaves.max(1).next_power_of_two().trailing_zeros()
}

/// The root reached from leaf `index` through `path` (siblings, leaf level
/// first). `index`'s bit `l` says whether the node at level `l` is a right child.
pub fn root_from_path(leaf: Hash32, index: u32, path: &[Hash32]) -> Hash32 {
	let mut acc = leaf;
	for (level, sibling) in path.iter().enumerate() {
		acc = if (index >> level) & 1 == 0 { node(&acc, sibling) } else { node(sibling, &acc) };
	}
	acc
}

/// A whole tree, kept by a miner so it can open any leaf.
#[derive(Clone, Debug)]
pub struct MerkleTree {
	/// `levels[0]` are the padded leaves, the last level is the root alone.
	levels: Vec<Vec<Hash32>>,
}

impl MerkleTree {
	/// The tree over the `rows_per_leaf`-row blocks of `matrix` (rows of `k`).
	/// `matrix.len()` must be a multiple of `rows_per_leaf * k` (a caller bug otherwise).
	pub fn build(matrix: &[i8], rows_per_leaf: usize, k: usize) -> Self {
		let block = rows_per_leaf * k;
		assert!(block > 0 && matrix.len().is_multiple_of(block), "matrix is not whole blocks of rows");
		let leaves: Vec<Hash32> = matrix.chunks_exact(block).map(leaf).collect();
		Self::from_leaves(leaves)
	}

	/// The tree over given leaf hashes (at least one).
	pub fn from_leaves(mut leaves: Vec<Hash32>) -> Self {
		let width = leaves.len().max(1).next_power_of_two();
		leaves.resize(width, EMPTY);
		let mut levels = vec![leaves];
		while levels.last().map_or(0, Vec::len) > 1 {
			let below = levels.last().expect("at least one level");
			let up = below.chunks_exact(2).map(|p| node(&p[0], &p[1])).collect();
			levels.push(up);
		}
		Self { levels }
	}

	/// The commitment: the root hash.
	pub fn root(&self) -> Hash32 {
		self.levels.last().and_then(|l| l.first()).copied().unwrap_or(EMPTY)
	}

	/// The siblings of leaf `index` from the leaf level up (`index` must be a leaf).
	pub fn path(&self, index: u32) -> Vec<Hash32> {
		let mut i = index as usize;
		let mut out = Vec::with_capacity(self.levels.len().saturating_sub(1));
		for level in &self.levels[..self.levels.len() - 1] {
			out.push(level[i ^ 1]);
			i >>= 1;
		}
		out
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn depth_is_ceil_log2() {
		assert_eq!([1, 2, 3, 4, 5, 8, 9, 4096].map(depth), [0, 1, 2, 2, 3, 3, 4, 12]);
	}

	#[test]
	fn every_path_leads_to_the_root() {
		for leaves in [1usize, 2, 3, 5, 8] {
			let matrix: Vec<i8> = (0..leaves * 2 * 4).map(|v| v as i8).collect();
			let tree = MerkleTree::build(&matrix, 2, 4);
			for i in 0..leaves {
				let path = tree.path(i as u32);
				assert_eq!(path.len(), depth(leaves as u32) as usize);
				let l = leaf(&matrix[i * 8..][..8]);
				assert_eq!(root_from_path(l, i as u32, &path), tree.root());
				// The same leaf at another index, or a changed row, misses the root.
				assert!(leaves == 1 || root_from_path(l, (i as u32) ^ 1, &path) != tree.root());
				let mut other = matrix[i * 8..][..8].to_vec();
				other[3] ^= 1;
				assert_ne!(root_from_path(leaf(&other), i as u32, &path), tree.root());
			}
		}
	}

	#[test]
	fn single_leaf_root_is_the_leaf() {
		let m = [1i8, 2, 3, 4];
		assert_eq!(MerkleTree::build(&m, 1, 4).root(), leaf(&m));
	}
}
