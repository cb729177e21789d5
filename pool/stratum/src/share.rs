//! The checks on a share's seal, steps 5 to 8 of STRATUM.md's
//! `mining.submit` (steps 1 to 4, the session's and the job's, are the
//! pool's), in that order, each with its error code. Only step 8 costs
//! anything: one tile.

use crate::{codes, NoncePrefix};
use mlpow_primitives::{
	meets_target,
	v2::{noise::Mode, seal::encoded_len},
	ChallengeParams, Hash32, Verified, VerifyError, PUZZLE_V2, SEAL_LEN, U256,
};

/// Why a share was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
	/// Step 5: the length, mode or (step 8) tile is wrong for the job.
	BadSeal(String),
	/// Step 6: the nonce is outside the connection's prefix.
	BadNonce,
	/// Step 7: accepted before.
	Duplicate,
	/// Step 8: a chosen share's openings.
	BadOpening(String),
	/// Step 8: the ticket is above the share target.
	LowDifficulty,
}

impl Rejection {
	/// Its error code.
	pub fn code(&self) -> i32 {
		match self {
			Self::BadSeal(_) => codes::BAD_SEAL,
			Self::BadNonce => codes::BAD_NONCE,
			Self::Duplicate => codes::DUPLICATE,
			Self::BadOpening(_) => codes::BAD_OPENING,
			Self::LowDifficulty => codes::LOW_DIFFICULTY,
		}
	}

	/// Whether an honest miner can send it: a duplicate (a resend after a
	/// lost answer). Everything else is a broken or hostile miner.
	pub fn is_junk(&self) -> bool {
		!matches!(self, Self::Duplicate)
	}
}

impl std::fmt::Display for Rejection {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		match self {
			Self::BadSeal(why) => write!(f, "bad seal: {why}"),
			Self::BadNonce => f.write_str("the nonce is outside this connection's prefix"),
			Self::Duplicate => f.write_str("duplicate share"),
			Self::BadOpening(why) => write!(f, "bad opening: {why}"),
			Self::LowDifficulty => f.write_str("the ticket is above the share target"),
		}
	}
}

/// Step 5: the seal's length is exact for its mode under `params` (v1: 16
/// bytes; v2: 17 seeded, or the chosen length), the mode is 0 or 1, and
/// mode 1 only where the job takes chosen shares.
pub fn check_form(params: &ChallengeParams, seal: &[u8], chosen_allowed: bool) -> Result<(), Rejection> {
	if params.version != PUZZLE_V2 {
		return match seal.len() {
			SEAL_LEN => Ok(()),
			n => Err(Rejection::BadSeal(format!("{n} bytes where puzzle v1 seals are {SEAL_LEN}"))),
		};
	}
	let mode = match seal.get(16) {
		None => return Err(Rejection::BadSeal(format!("{} bytes: shorter than a v2 seal's 17", seal.len()))),
		Some(0) => Mode::Seeded,
		Some(1) if chosen_allowed => Mode::Chosen,
		Some(1) => return Err(Rejection::BadSeal("this job takes no chosen-mode shares".into())),
		Some(m) => return Err(Rejection::BadSeal(format!("mode {m}: v2 seals are mode 0 or 1"))),
	};
	let exact = encoded_len(params, mode);
	if seal.len() != exact {
		return Err(Rejection::BadSeal(format!("{} bytes where a {mode:?} seal is {exact}", seal.len())));
	}
	Ok(())
}

/// Step 6: the seal's nonce (its first 8 bytes, `u64 LE`) carries the
/// connection's prefix. The seal has passed [`check_form`].
pub fn check_nonce(seal: &[u8], prefix: &NoncePrefix) -> Result<(), Rejection> {
	let nonce = seal.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
	match nonce {
		Some(nonce) if prefix.contains(nonce) => Ok(()),
		_ => Err(Rejection::BadNonce),
	}
}

/// What a share that passed step 8 is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
	/// The seal's nonce and tile, and its ticket.
	pub verified: Verified,
	/// The ticket also meets the block's target.
	pub is_block: bool,
}

/// Step 8: the seal verifies at the share difficulty (SPEC.md / SPEC-v2.md
/// verification with `share_difficulty` in place of the block's), and
/// whether it is also a block at `block_difficulty`.
pub fn verify_share(
	params: &ChallengeParams,
	weights_seed: &Hash32,
	pre_hash: &Hash32,
	share_difficulty: U256,
	block_difficulty: U256,
	seal: &[u8],
) -> Result<Accepted, Rejection> {
	match mlpow_primitives::verify(params, weights_seed, pre_hash, share_difficulty, seal) {
		Ok(verified) => Ok(Accepted { verified, is_block: meets_target(&verified.digest, block_difficulty) }),
		Err(VerifyError::AboveTarget) => Err(Rejection::LowDifficulty),
		Err(e @ (VerifyError::OpeningOutOfRange | VerifyError::OpeningMismatch)) => {
			Err(Rejection::BadOpening(e.to_string()))
		}
		// Tile out of range, and what check_form lets through that verify
		// still refuses (parameters the node would never send, difficulty 0).
		Err(e) => Err(Rejection::BadSeal(e.to_string())),
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use mlpow_primitives::v2::seal::encode_seeded;
	use mlpow_primitives::Seal;

	fn v2() -> ChallengeParams {
		ChallengeParams { version: PUZZLE_V2, r: 16, ..ChallengeParams::DEV }
	}

	#[test]
	fn the_form_is_exact_for_the_mode() {
		let p1 = ChallengeParams::DEV;
		assert_eq!(check_form(&p1, &[0; 16], true), Ok(()));
		assert!(check_form(&p1, &[0; 17], true).is_err());
		let p2 = v2();
		let seeded = encode_seeded(&Seal { nonce: 1, tile_i: 0, tile_j: 0 });
		assert_eq!(check_form(&p2, &seeded, false), Ok(()));
		assert!(check_form(&p2, &seeded[..16], true).is_err());
		let mut chosen = vec![0u8; encoded_len(&p2, Mode::Chosen)];
		chosen[16] = 1;
		assert_eq!(check_form(&p2, &chosen, true), Ok(()));
		assert_eq!(check_form(&p2, &chosen, false).unwrap_err().code(), codes::BAD_SEAL, "not on this job");
		assert!(check_form(&p2, &chosen[..chosen.len() - 1], true).is_err());
		let mut two = seeded.clone();
		two[16] = 2;
		assert!(check_form(&p2, &two, true).is_err());
	}

	#[test]
	fn the_nonce_must_carry_the_prefix() {
		let prefix = NoncePrefix::new(0x2a, 16).unwrap();
		let inside = Seal { nonce: prefix.first() + 7, tile_i: 0, tile_j: 0 }.to_bytes();
		assert_eq!(check_nonce(&inside, &prefix), Ok(()));
		let outside = Seal { nonce: 7, tile_i: 0, tile_j: 0 }.to_bytes();
		assert_eq!(check_nonce(&outside, &prefix), Err(Rejection::BadNonce));
	}

	/// The golden vector "winning seal": a share up to difficulty 5000, a
	/// block at any block difficulty it meets, low difficulty above; a tile
	/// out of range is a bad seal.
	#[test]
	fn the_golden_winning_seal_is_a_share() {
		let golden = mlpow_vectors::golden();
		let case = golden.verify_cases.iter().find(|c| c.name == "winning seal").unwrap();
		let params = case.params.challenge();
		let h32 = |s: &str| -> Hash32 { hex::decode(s).unwrap().try_into().unwrap() };
		let (seed, pre_hash) = (h32(&case.weights_seed), h32(&case.pre_hash));
		let seal = hex::decode(&case.seal).unwrap();
		let share = |share: u64, block: u64| {
			verify_share(&params, &seed, &pre_hash, U256::from(share), U256::from(block), &seal)
		};
		assert_eq!(share(5000, 5000).map(|a| a.is_block), Ok(true));
		assert_eq!(share(1000, 1_000_000_000).map(|a| a.is_block), Ok(false));
		assert_eq!(share(1_000_000_000, 1_000_000_000), Err(Rejection::LowDifficulty));
		let mut out = seal.clone();
		out[8..12].copy_from_slice(&99u32.to_le_bytes());
		let bad = verify_share(&params, &seed, &pre_hash, U256::from(1), U256::from(1), &out);
		assert_eq!(bad.map_err(|e| e.code()), Err(codes::BAD_SEAL));
	}
}
