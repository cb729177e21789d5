//! The import queue's verifier: checks the seal before anything touches the
//! block body.
//!
//! `sc-consensus-pow`'s own `PowVerifier` only strips the seal; the seal is
//! checked later, in `PowBlockImport::import_block`, *after* it has executed
//! the runtime to check the body's inherents, and a failure there comes back
//! as a plain import error (`BlockImportError::Other`), which the sync layer
//! does not hold against the peer that sent the block. A peer could then feed
//! a node block after block with junk seals and make it run the runtime on
//! each, at no cost to itself.
//!
//! [`SealVerifier`] runs first in the queue: it recomputes the seal's tile
//! against the parent's challenge and difficulty (`t*t*k` MACs, no body, no
//! runtime execution beyond two cached API reads), and a failure is a
//! *verification* failure: `sc-network-sync` answers
//! `BlockImportError::VerificationFailed` by lowering the peer's reputation
//! by `2^29` (its `rep::VERIFICATION_FAIL`) and dropping it. A seal that
//! passes is remembered ([`MatmulPow`] keeps the last verified ones), so the
//! second check in `PowBlockImport` costs nothing.

use crate::MatmulPow;
use mlpow_primitives::U256;
use mlpow_runtime_api::MlpowApi;
use sc_consensus::{BlockImportParams, Verifier};
use sc_consensus_pow::{PowAlgorithm, PowVerifier};
use sp_api::ProvideRuntimeApi;
use sp_consensus_pow::{DifficultyApi, POW_ENGINE_ID};
use sp_runtime::{
	generic::BlockId,
	traits::{Block as BlockT, Header as _},
	DigestItem,
};

/// Checks a block's seal before import (see the module docs), then hands the
/// block to `sc-consensus-pow`'s verifier.
pub struct SealVerifier<B: BlockT, C> {
	algorithm: MatmulPow<B, C>,
	inner: PowVerifier<B, MatmulPow<B, C>>,
}

impl<B, C> SealVerifier<B, C>
where
	B: BlockT,
	C: ProvideRuntimeApi<B> + Send + Sync,
	C::Api: DifficultyApi<B, U256> + MlpowApi<B>,
{
	pub fn new(algorithm: MatmulPow<B, C>) -> Self {
		Self { inner: PowVerifier::new(algorithm.clone()), algorithm }
	}

	/// The seal check alone: `Ok` for a block whose seal wins its parent's
	/// challenge, else the reason. When this node cannot read the parent's
	/// rules (a runtime API error: its own problem, not the peer's), the
	/// block passes here and `PowBlockImport` fails it later as a plain import
	/// error, which does not cost an honest peer its reputation.
	pub fn check_seal(&self, header: &B::Header) -> Result<(), String> {
		let mut unsealed = header.clone();
		let seal = match unsealed.digest_mut().pop() {
			Some(DigestItem::Seal(id, seal)) if id == POW_ENGINE_ID => seal,
			Some(DigestItem::Seal(id, _)) => return Err(format!("seal of another engine ({id:?})")),
			_ => return Err("the header has no seal (its last digest item must be the PoW seal)".into()),
		};
		let parent = *header.parent_hash();
		let pre_hash = unsealed.hash();
		let work = match self.algorithm.rules(parent) {
			Ok(rules) => rules.work(),
			Err(e) => {
				log::warn!(target: "mlpow", "not checking the seal of {:?} before import: {e}", header.hash());
				return Ok(());
			}
		};
		match self.algorithm.verify(&BlockId::Hash(parent), &pre_hash, None, &seal, work) {
			Ok(true) => Ok(()),
			Ok(false) => Err("invalid MatMul seal".into()),
			Err(e) => Err(e.to_string()),
		}
	}
}

#[async_trait::async_trait]
impl<B, C> Verifier<B> for SealVerifier<B, C>
where
	B: BlockT,
	C: ProvideRuntimeApi<B> + Send + Sync,
	C::Api: DifficultyApi<B, U256> + MlpowApi<B>,
{
	async fn verify(&self, block: BlockImportParams<B>) -> Result<BlockImportParams<B>, String> {
		self.check_seal(&block.header)?;
		self.inner.verify(block).await
	}
}
