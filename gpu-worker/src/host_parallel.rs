//! Host work that a GPU lane must not wait on one core for: the Merkle
//! commitments of a useful job's matrices (hashing every `t`-row block) and
//! the Freivalds check of its product. Each splits into independent pieces
//! spread over the machine's cores with scoped threads.

use mlpow_primitives::{v2::commit::MerkleTree, Hash32};

/// Threads to use: the machine's, at most `pieces`.
fn threads(pieces: usize) -> usize {
	std::thread::available_parallelism().map_or(1, |n| n.get()).min(pieces).max(1)
}

/// `f` over `0..count`, in order, on several threads.
pub fn map<T: Send>(count: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
	let per = count.div_ceil(threads(count));
	if per == 0 {
		return Vec::new();
	}
	std::thread::scope(|s| {
		let handles: Vec<_> = (0..count)
			.step_by(per)
			.map(|start| {
				let f = &f;
				s.spawn(move || (start..(start + per).min(count)).map(f).collect::<Vec<T>>())
			})
			.collect();
		handles.into_iter().flat_map(|h| h.join().expect("a host worker thread panicked")).collect()
	})
}

/// [`MerkleTree::build`], with the leaves hashed on every core.
pub fn merkle_tree(matrix: &[i8], rows_per_leaf: usize, k: usize) -> MerkleTree {
	let block = rows_per_leaf * k;
	assert!(block > 0 && matrix.len().is_multiple_of(block), "matrix is not whole blocks of rows");
	let leaves: Vec<Hash32> =
		map(matrix.len() / block, |i| mlpow_primitives::v2::commit::leaf(&matrix[i * block..][..block]));
	MerkleTree::from_leaves(leaves)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn map_keeps_order_for_any_count() {
		for count in [0, 1, 2, 3, 17, 1000] {
			assert_eq!(map(count, |i| i * 3), (0..count).map(|i| i * 3).collect::<Vec<_>>());
		}
	}

	#[test]
	fn the_parallel_tree_is_the_tree() {
		let (t, k) = (16, 64);
		for blocks in [1, 2, 5, 33] {
			let m: Vec<i8> = (0..blocks * t * k).map(|v| (v * 7 % 127) as i8 - 63).collect();
			let (a, b) = (merkle_tree(&m, t, k), MerkleTree::build(&m, t, k));
			assert_eq!(a.root(), b.root(), "{blocks} blocks");
			assert_eq!(a.path(blocks as u32 - 1), b.path(blocks as u32 - 1));
		}
	}
}
