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
//!
//! Then the body: a real header (an honest block's, seal and all) with a
//! body of someone else's making passes the seal check, and the runtime
//! compares the body with the header's `extrinsics_root` only after it has
//! executed all of it (`frame_executive`'s final checks); that failure is a
//! plain import error too, so a peer could have every node execute a block
//! of its own transactions, free of fees, for every header it relays.
//! [`SealVerifier::check_body`] compares the root first, for the cost of
//! hashing the body.

use crate::MatmulPow;
use codec::Encode;
use mlpow_primitives::U256;
use mlpow_runtime_api::MlpowApi;
use sc_consensus::{BlockImportParams, Verifier};
use sc_consensus_pow::{PowAlgorithm, PowVerifier};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_consensus_pow::{DifficultyApi, POW_ENGINE_ID};
use sp_runtime::{
	generic::BlockId,
	traits::{Block as BlockT, Hash as _, Header as HeaderT, One},
	DigestItem, StateVersion,
};
use std::sync::Arc;

/// Checks a block's seal before import (see the module docs), then hands the
/// block to `sc-consensus-pow`'s verifier.
pub struct SealVerifier<B: BlockT, C> {
	client: Arc<C>,
	algorithm: MatmulPow<B, C>,
	inner: PowVerifier<B, MatmulPow<B, C>>,
}

impl<B, C> SealVerifier<B, C>
where
	B: BlockT,
	C: ProvideRuntimeApi<B> + HeaderBackend<B> + Send + Sync,
	C::Api: DifficultyApi<B, U256> + MlpowApi<B>,
{
	pub fn new(client: Arc<C>, algorithm: MatmulPow<B, C>) -> Self {
		Self { inner: PowVerifier::new(algorithm.clone()), algorithm, client }
	}

	/// The checks before import, cheapest first: `Ok` for a block whose
	/// seal wins its parent's challenge on this node's finalized chain,
	/// else the reason, which makes it a verification failure (the peer
	/// that sent it pays). Every path that cannot check the seal refuses
	/// the block: a node that cannot read the parent's rules (its state
	/// pruned, a runtime error) never passes a block on unchecked.
	pub fn check_seal(&self, header: &B::Header) -> Result<(), String> {
		// The seal's size first, before the header is copied or anything hashed.
		let seal_len = match header.digest().logs().last() {
			Some(DigestItem::Seal(id, seal)) if *id == POW_ENGINE_ID => seal.len(),
			Some(DigestItem::Seal(id, _)) => return Err(format!("seal of another engine ({id:?})")),
			_ => return Err("the header has no seal (its last digest item must be the PoW seal)".into()),
		};
		if seal_len > mlpow_primitives::MAX_SEAL_LEN {
			return Err(format!(
				"invalid MatMul seal: {seal_len} bytes, more than any puzzle's ({})",
				mlpow_primitives::MAX_SEAL_LEN
			));
		}
		self.check_above_finality(header)?;
		let parent = *header.parent_hash();
		let rules = self
			.algorithm
			.rules(parent)
			.map_err(|e| format!("cannot read the rules at the parent {parent:?}, so the seal is unchecked: {e}"))?;
		let expected = rules.seal_len_range();
		if !expected.contains(&seal_len) {
			return Err(format!(
				"invalid MatMul seal: {seal_len} bytes where the parent's parameters allow {expected:?}"
			));
		}
		let mut unsealed = header.clone();
		let Some(DigestItem::Seal(_, seal)) = unsealed.digest_mut().pop() else {
			return Err("the header has no seal".into());
		};
		let pre_hash = unsealed.hash();
		match self.algorithm.verify(&BlockId::Hash(parent), &pre_hash, None, &seal, rules.work()) {
			Ok(true) => Ok(()),
			Ok(false) => Err("invalid MatMul seal".into()),
			Err(e) => Err(e.to_string()),
		}
	}

	/// The body is the one the header commits to: the ordered trie root of
	/// its extrinsics' encodings, as `frame_system` computes it, equals the
	/// header's `extrinsics_root`. The runtime's `system_version` picks the
	/// trie's state version (V0 for this runtime's `system_version` 1;
	/// sp-version's `extrinsics_root_state_version`), so either is accepted,
	/// V0 tried first.
	pub fn check_body(header: &B::Header, body: &[B::Extrinsic]) -> Result<(), String> {
		let encoded: Vec<Vec<u8>> = body.iter().map(Encode::encode).collect();
		let root = |version| <<B::Header as HeaderT>::Hashing>::ordered_trie_root(encoded.clone(), version);
		if [StateVersion::V0, StateVersion::V1].into_iter().any(|v| root(v) == *header.extrinsics_root()) {
			return Ok(());
		}
		Err(format!("the body ({} extrinsics) is not the one the header's extrinsics root commits to", body.len()))
	}

	/// A block at or below the finalized height, or whose parent is below
	/// it and off the finalized chain, can never be imported: refusing it
	/// here makes that a verification failure that costs its sender, instead
	/// of a plain import error after which sync asks the same peer again. (A
	/// peer advertising such a fork once held honest nodes in "major sync".)
	fn check_above_finality(&self, header: &B::Header) -> Result<(), String> {
		let info = self.client.info();
		let number = *header.number();
		if number <= info.finalized_number {
			return Err(format!(
				"block #{number} is at or below this node's finalized block #{}: it forks below finality",
				info.finalized_number
			));
		}
		let parent_number = number - One::one();
		if parent_number < info.finalized_number {
			// Below finality only the finalized chain is kept.
			let canonical =
				self.client.hash(parent_number).map_err(|e| format!("reading block #{parent_number}: {e}"))?;
			if canonical != Some(*header.parent_hash()) {
				return Err(format!("its parent #{parent_number} is off this node's finalized chain"));
			}
		} else if parent_number == info.finalized_number && *header.parent_hash() != info.finalized_hash {
			return Err(format!("its parent #{parent_number} is not this node's finalized block"));
		}
		Ok(())
	}
}

#[async_trait::async_trait]
impl<B, C> Verifier<B> for SealVerifier<B, C>
where
	B: BlockT,
	C: ProvideRuntimeApi<B> + HeaderBackend<B> + Send + Sync,
	C::Api: DifficultyApi<B, U256> + MlpowApi<B>,
{
	async fn verify(&self, block: BlockImportParams<B>) -> Result<BlockImportParams<B>, String> {
		if let Some(ms) = crate::test_switches::import_delay_ms().filter(|ms| *ms > 0) {
			if block.origin != sp_consensus::BlockOrigin::Own {
				tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
			}
		}
		self.check_seal(&block.header)?;
		if let Some(body) = &block.body {
			Self::check_body(&block.header, body)?;
		}
		self.inner.verify(block).await
	}
}
