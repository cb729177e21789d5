//! A useful job's matrices, committed for mining: checked against the
//! parameters, transposed, and their Merkle trees built with the leaves
//! hashed on every core. A committed matrix is an
//! [`Operand`](mlpow_primitives::v2::mine::Operand) behind an `Arc`: every
//! lane takes it as it is, and a matrix used again (a registered weight)
//! is committed once.

use crate::host_parallel::merkle_tree;
use mlpow_primitives::{v2::mine::Operand, ChallengeParams};
use std::sync::Arc;

/// `a` (`m x k`) committed as a piece's `A` under v2 parameters `p`.
pub fn commit_a(p: &ChallengeParams, a: Vec<i8>) -> anyhow::Result<Arc<Operand>> {
	commit(p, "A", p.m as usize, a)
}

/// `bt` (`n x k`) committed as a piece's `Bt` under v2 parameters `p`.
pub fn commit_bt(p: &ChallengeParams, bt: Vec<i8>) -> anyhow::Result<Arc<Operand>> {
	commit(p, "Bt", p.n as usize, bt)
}

fn commit(p: &ChallengeParams, which: &'static str, rows: usize, values: Vec<i8>) -> anyhow::Result<Arc<Operand>> {
	let operand = Operand::chosen_with(p, which, rows, values, merkle_tree).map_err(|e| anyhow::anyhow!("{e}"))?;
	Ok(Arc::new(operand))
}

#[cfg(test)]
mod tests {
	use super::*;
	use mlpow_primitives::{
		v2::{mine::chosen_seal, Job},
		Seal,
	};

	#[test]
	fn commits_and_seals_like_the_reference_job() {
		let p = ChallengeParams { version: 2, m: 48, k: 64, n: 80, t: 16, r: 32, epoch_length: 1 };
		let a: Vec<i8> = (0..48 * 64).map(|v| (v * 13 % 128) as i8 - 64).collect();
		let bt: Vec<i8> = (0..80 * 64).map(|v| (v * 29 % 128) as i8 - 64).collect();
		let (ca, cbt) = (commit_a(&p, a.clone()).unwrap(), commit_bt(&p, bt.clone()).unwrap());
		let job = Job::chosen(&p, a, bt).unwrap();
		assert_eq!((ca.root(), cbt.root()), (job.commitments().a, job.commitments().bt));
		for (i, j) in [(0, 0), (2, 4), (1, 3)] {
			let id = Seal { nonce: 9, tile_i: i, tile_j: j };
			assert_eq!(chosen_seal(&id, &ca, &cbt), job.seal(&id));
		}
	}

	#[test]
	fn bad_pieces_say_why() {
		let p = ChallengeParams { version: 2, m: 16, k: 32, n: 16, t: 16, r: 32, epoch_length: 1 };
		let e = commit_a(&p, vec![0; 16 * 31]).err().unwrap().to_string();
		assert!(e.contains("A has 496 elements, expected 512"), "{e}");
		let mut bt = vec![0; 16 * 32];
		bt[7] = 64;
		let e = commit_bt(&p, bt).err().unwrap().to_string();
		assert!(e.contains("Bt[7] = 64"), "{e}");
	}
}
