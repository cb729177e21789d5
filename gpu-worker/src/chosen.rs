//! A useful job's piece as a device lane keeps it on the host: the
//! matrices, checked; their Merkle trees, with the leaves hashed on every
//! core; and the seals of its winning tickets. It is what
//! `mlpow_primitives::v2::Job::chosen` gives the CPU lanes, less the
//! transposed copies the CPU kernel needs and a GPU does not.

use crate::host_parallel::merkle_tree;
use mlpow_primitives::{
	v2::{commit::MerkleTree, mine::check_chosen, noise::Commitments, seal::encode_chosen},
	ChallengeParams, Seal,
};

pub struct ChosenPiece {
	t: usize,
	k: usize,
	a: Vec<i8>,
	bt: Vec<i8>,
	tree_a: MerkleTree,
	tree_bt: MerkleTree,
}

impl ChosenPiece {
	/// Checks `a` (`m x k`) and `bt` (`n x k`) against v2 parameters `p`
	/// (the primitives' rule for chosen matrices), and commits to them.
	pub fn new(p: &ChallengeParams, a: Vec<i8>, bt: Vec<i8>) -> anyhow::Result<Self> {
		check_chosen(p, &a, &bt).map_err(|e| anyhow::anyhow!("{e}"))?;
		let (k, t) = (p.k as usize, p.t as usize);
		let (tree_a, tree_bt) = (merkle_tree(&a, t, k), merkle_tree(&bt, t, k));
		Ok(Self { t, k, a, bt, tree_a, tree_bt })
	}

	pub fn a(&self) -> &[i8] {
		&self.a
	}

	pub fn bt(&self) -> &[i8] {
		&self.bt
	}

	/// What the noise seed binds: the two Merkle roots.
	pub fn commitments(&self) -> Commitments {
		Commitments { a: self.tree_a.root(), bt: self.tree_bt.root() }
	}

	/// The seal of ticket `id`, with the openings of its rows.
	pub fn seal(&self, id: &Seal) -> Vec<u8> {
		let rows = self.t * self.k;
		encode_chosen(
			id,
			(&self.tree_a.root(), &self.tree_bt.root()),
			&self.a[id.tile_i as usize * rows..][..rows],
			&self.tree_a.path(id.tile_i),
			&self.bt[id.tile_j as usize * rows..][..rows],
			&self.tree_bt.path(id.tile_j),
		)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use mlpow_primitives::v2::Job;

	#[test]
	fn commits_and_seals_like_the_reference_job() {
		let p = ChallengeParams { version: 2, m: 48, k: 64, n: 80, t: 16, r: 32, epoch_length: 1 };
		let a: Vec<i8> = (0..48 * 64).map(|v| (v * 13 % 128) as i8 - 64).collect();
		let bt: Vec<i8> = (0..80 * 64).map(|v| (v * 29 % 128) as i8 - 64).collect();
		let piece = ChosenPiece::new(&p, a.clone(), bt.clone()).unwrap();
		let job = Job::chosen(&p, a, bt).unwrap();
		assert_eq!(piece.commitments(), job.commitments());
		for (i, j) in [(0, 0), (2, 4), (1, 3)] {
			let id = Seal { nonce: 9, tile_i: i, tile_j: j };
			assert_eq!(piece.seal(&id), job.seal(&id));
		}
	}

	#[test]
	fn bad_pieces_say_why() {
		let p = ChallengeParams { version: 2, m: 16, k: 32, n: 16, t: 16, r: 32, epoch_length: 1 };
		let e = ChosenPiece::new(&p, vec![0; 16 * 31], vec![0; 16 * 32]).err().unwrap().to_string();
		assert!(e.contains("A has 496 elements, expected 512"), "{e}");
		let mut bt = vec![0; 16 * 32];
		bt[7] = 64;
		let e = ChosenPiece::new(&p, vec![0; 16 * 32], bt).err().unwrap().to_string();
		assert!(e.contains("Bt[7] = 64"), "{e}");
	}
}
