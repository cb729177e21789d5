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
	traits::{BlakeTwo256, Block as BlockT, Hash as _},
};
use std::{marker::PhantomData, sync::Arc};

const LOG_TARGET: &str = "mlpow";

/// What the runtime says a child of a given block must solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentRules {
	pub difficulty: U256,
	pub challenge: Challenge,
}

/// MatMul proof of work for `sc-consensus-pow`.
///
/// `difficulty` and `verify` are called several times per block (import
/// calls `difficulty` twice; mining re-verifies every submission), and what
/// they read depends only on the parent's state, which never changes for a
/// given hash: so both are cached by parent hash.
pub struct MatmulPow<B: BlockT, C> {
	client: Arc<C>,
	cache: Arc<Mutex<LruMap<B::Hash, ParentRules>>>,
	metrics: Option<Metrics>,
	_block: PhantomData<B>,
}

impl<B: BlockT, C> Clone for MatmulPow<B, C> {
	fn clone(&self) -> Self {
		Self {
			client: self.client.clone(),
			cache: self.cache.clone(),
			metrics: self.metrics.clone(),
			_block: PhantomData,
		}
	}
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

	fn difficulty(&self, parent: B::Hash) -> Result<U256, Error<B>> {
		Ok(self.rules(parent)?.difficulty)
	}

	/// Equal total difficulty: prefer the seal whose BLAKE2 hash is lower.
	/// Every node orders the same two seals the same way, so a tie resolves
	/// to one chain network-wide instead of to whichever block each node saw
	/// first (which would let a well-connected miner win every tie).
	fn break_tie(&self, own_seal: &Seal, new_seal: &Seal) -> bool {
		BlakeTwo256::hash(new_seal) < BlakeTwo256::hash(own_seal)
	}

	fn verify(
		&self,
		parent: &BlockId<B>,
		pre_hash: &B::Hash,
		_pre_digest: Option<&[u8]>,
		seal: &Seal,
		difficulty: U256,
	) -> Result<bool, Error<B>> {
		let parent = match parent {
			BlockId::Hash(hash) => *hash,
			BlockId::Number(_) => return Err(Error::Other("MatMul PoW verifies against a parent hash".into())),
		};
		let rules = self.rules(parent)?;
		let pre_hash = hash32(pre_hash).ok_or_else(|| Error::Other("block hashes must be 32 bytes".into()))?;
		let challenge = rules.challenge;
		let verdict = mlpow_primitives::verify(&challenge.params, &challenge.weights_seed, &pre_hash, difficulty, seal);
		if let Some(metrics) = &self.metrics {
			metrics.seal_checked(verdict.is_ok());
		}
		match verdict {
			Ok(_) => Ok(true),
			Err(e) => {
				log::debug!(target: LOG_TARGET, "seal rejected on {parent:?}: {e}");
				Err(Error::Other(format!("invalid MatMul seal: {e}")))
			}
		}
	}
}
