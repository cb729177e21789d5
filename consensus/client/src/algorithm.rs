//! The `PowAlgorithm` that `sc-consensus-pow` calls on import and when
//! mining: difficulty and challenge from the runtime at the parent, seal
//! verification through `mlpow-primitives`.

use crate::Metrics;
use mlpow_primitives::{Hash32, U256};
use mlpow_runtime_api::{Challenge, MlpowApi};
use parking_lot::Mutex;
use sc_consensus_pow::{Error, PowAlgorithm};
use schnellru::{ByLength, LruMap};
use sp_api::ProvideRuntimeApi;
use sp_consensus_pow::{DifficultyApi, Seal};
use sp_runtime::{
	generic::BlockId,
	traits::{BlakeTwo256, Block as BlockT, Hash as HashT},
};
use std::{marker::PhantomData, sync::Arc};

const LOG_TARGET: &str = "mlpow";

/// What the runtime says a child of a given block must solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentRules {
	/// Expected tickets per block (the runtime's `DifficultyApi`).
	pub difficulty: U256,
	pub challenge: Challenge,
}

impl ParentRules {
	/// Expected multiply-accumulates per block: `difficulty * t*t*k`.
	pub fn work(&self) -> U256 {
		self.difficulty.saturating_mul(U256::from(self.challenge.params.macs_per_ticket()))
	}

	/// The lengths a seal may have under these parameters: 16 bytes under
	/// v1; under v2 from 17 (seeded) to the chosen mode's exact length.
	/// (`verify` checks the exact length of each mode; this bound lets a
	/// node refuse an oversized seal before it hashes or copies it.)
	pub fn seal_len_range(&self) -> std::ops::RangeInclusive<usize> {
		let params = &self.challenge.params;
		if params.version == mlpow_primitives::PUZZLE_V2 {
			use mlpow_primitives::v2::{seal, Mode};
			seal::HEAD_LEN..=seal::encoded_len(params, Mode::Chosen)
		} else {
			mlpow_primitives::SEAL_LEN..=mlpow_primitives::SEAL_LEN
		}
	}
}

/// MatMul proof of work for `sc-consensus-pow`.
///
/// `difficulty` and `verify` are called several times per block (import
/// calls `difficulty` twice; mining re-verifies every submission), and what
/// they read depends only on the parent's state, which never changes for a
/// given hash: so both are cached by parent hash. Seals that verified are
/// remembered too: the import queue's [`SealVerifier`](crate::SealVerifier)
/// checks a seal before `PowBlockImport` checks it again.
pub struct MatmulPow<B: BlockT, C> {
	client: Arc<C>,
	cache: Arc<Mutex<LruMap<B::Hash, ParentRules>>>,
	verified: Arc<Mutex<LruMap<VerifiedKey<B>, ()>>>,
	metrics: Option<Metrics>,
	_block: PhantomData<B>,
}

impl<B: BlockT, C> Clone for MatmulPow<B, C> {
	fn clone(&self) -> Self {
		Self {
			client: self.client.clone(),
			cache: self.cache.clone(),
			verified: self.verified.clone(),
			metrics: self.metrics.clone(),
			_block: PhantomData,
		}
	}
}

/// A seal that verified: the header it seals (`pre_hash`, which commits to
/// the parent and so to the challenge), the difficulty it beat, and the
/// seal's BLAKE2b-256 (a v2 seal with openings is up to 513 KiB: 256 of them
/// kept whole would be 130 MiB).
type VerifiedKey<B> = (<B as BlockT>::Hash, U256, [u8; 32]);

/// The fork-choice rule at equal total work, given the seals of the
/// best block and of the newly imported one: the new block never displaces
/// the best block (first seen wins; see `break_tie` below for why).
pub fn new_block_wins_tie(_own_seal: &Seal, _new_seal: &Seal) -> bool {
	false
}

/// A block hash as the 32 bytes the primitives take.
pub fn hash32<H: AsRef<[u8]>>(hash: &H) -> Option<Hash32> {
	hash.as_ref().try_into().ok()
}

impl<B, C> MatmulPow<B, C>
where
	B: BlockT,
	C: ProvideRuntimeApi<B>,
	C::Api: DifficultyApi<B, U256> + MlpowApi<B>,
{
	pub fn new(client: Arc<C>) -> Self {
		Self {
			client,
			cache: Arc::new(Mutex::new(LruMap::new(ByLength::new(256)))),
			verified: Arc::new(Mutex::new(LruMap::new(ByLength::new(256)))),
			metrics: None,
			_block: PhantomData,
		}
	}

	/// Counts seal checks in `metrics` (see [`Metrics`]).
	pub fn with_metrics(mut self, metrics: Option<Metrics>) -> Self {
		self.metrics = metrics;
		self
	}

	/// Difficulty and challenge for a child of `parent`, read through the runtime API.
	pub fn rules(&self, parent: B::Hash) -> Result<ParentRules, Error<B>> {
		if let Some(rules) = self.cache.lock().get(&parent) {
			return Ok(*rules);
		}
		let api = self.client.runtime_api();
		let difficulty =
			api.difficulty(parent).map_err(|e| Error::Runtime(format!("reading the difficulty at {parent:?}: {e}")))?;
		let challenge = api
			.challenge(parent)
			.map_err(|e| Error::Runtime(format!("reading the MatMul challenge at {parent:?}: {e}")))?;
		let rules = ParentRules { difficulty, challenge };
		self.cache.lock().insert(parent, rules);
		Ok(rules)
	}
}

impl<B, C> PowAlgorithm<B> for MatmulPow<B, C>
where
	B: BlockT,
	C: ProvideRuntimeApi<B>,
	C::Api: DifficultyApi<B, U256> + MlpowApi<B>,
{
	type Difficulty = U256;

	/// The *work* a child of `parent` must carry, in multiply-accumulates:
	/// the runtime's difficulty (expected tickets) times `t*t*k` (MACs per
	/// ticket) of the child's parameters. `sc-consensus-pow` sums this into
	/// each block's total difficulty, so fork choice and the minimum chain
	/// work compare MACs, and a parameter change (which changes what a
	/// ticket costs) cannot make one chain's blocks count for more than
	/// their work. At most `2^192 * 2^24`: no overflow.
	fn difficulty(&self, parent: B::Hash) -> Result<U256, Error<B>> {
		Ok(self.rules(parent)?.work())
	}

	/// Equal total work: keep the block seen first, as Bitcoin does.
	///
	/// Any rule that orders two seals by their bytes (the lower hash wins,
	/// say) lets a miner who withholds a block know in advance whether it
	/// wins the tie it will cause, so it can publish exactly the blocks that
	/// orphan an honest one and keep the rest: selfish mining with a free
	/// tie-break. First-seen gives a withheld block no edge: the honest block
	/// that is out first keeps every node that saw it first.
	fn break_tie(&self, own_seal: &Seal, new_seal: &Seal) -> bool {
		new_block_wins_tie(own_seal, new_seal)
	}

	fn verify(
		&self,
		parent: &BlockId<B>,
		pre_hash: &B::Hash,
		_pre_digest: Option<&[u8]>,
		seal: &Seal,
		difficulty: U256,
	) -> Result<bool, Error<B>> {
		if crate::test_switches::accepts_any_seal() {
			return Ok(true);
		}
		let parent = match parent {
			BlockId::Hash(hash) => *hash,
			BlockId::Number(_) => return Err(Error::Other("MatMul PoW verifies against a parent hash".into())),
		};
		// The cheap checks before the seal is hashed: the parent's rules
		// (cached), the work they require, the seal's length under them.
		let rules = self.rules(parent)?;
		// `difficulty` is work (see `difficulty` above); the seal must beat
		// the ticket difficulty it was made from.
		if difficulty != rules.work() {
			return Err(Error::Other(format!("work {difficulty} is not what {parent:?} requires ({})", rules.work())));
		}
		if !rules.seal_len_range().contains(&seal.len()) {
			return Err(Error::Other(format!(
				"invalid MatMul seal: {} bytes where the parameters allow {:?}",
				seal.len(),
				rules.seal_len_range()
			)));
		}
		let key = (*pre_hash, difficulty, <BlakeTwo256 as HashT>::hash(seal).0);
		if self.verified.lock().get(&key).is_some() {
			return Ok(true);
		}
		let pre_hash = hash32(pre_hash).ok_or_else(|| Error::Other("block hashes must be 32 bytes".into()))?;
		let challenge = rules.challenge;
		let tickets = rules.difficulty;
		let verdict = mlpow_primitives::verify(&challenge.params, &challenge.weights_seed, &pre_hash, tickets, seal);
		if let Some(metrics) = &self.metrics {
			metrics.seal_checked(verdict.is_ok());
		}
		match verdict {
			Ok(_) => {
				self.verified.lock().insert(key, ());
				Ok(true)
			}
			Err(e) => {
				log::debug!(target: LOG_TARGET, "seal rejected on {parent:?}: {e}");
				Err(Error::Other(format!("invalid MatMul seal: {e}")))
			}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::new_block_wins_tie;

	/// Whatever the seals' bytes (a lower or higher hash, either order), a
	/// tie never moves the best block: nothing about a withheld block tells
	/// its miner in advance that it would win.
	#[test]
	fn ties_keep_the_block_seen_first() {
		let seals: Vec<Vec<u8>> = (0u8..32).map(|i| vec![i; 16]).chain([vec![], vec![0xff; 64]]).collect();
		for own in &seals {
			for new in &seals {
				assert!(!new_block_wins_tie(own, new), "{own:?} vs {new:?}");
			}
		}
	}
}
