//! The maximum reorg depth: blocks deeper than `depth` below the best block
//! are finalized, so no chain that forks off below them is ever followed.
//!
//! Proof of work alone never finalizes, and `sc-consensus-pow` would reorg
//! to any heavier chain however deep the fork. A rolling finality limit bounds
//! what a majority attacker, or a long network split, can rewrite: once a
//! block is `depth` deep on a node, that node keeps it. The price is that a
//! node that spent more than `depth` blocks on the losing side of a split
//! stays there until an operator resyncs it (`purge-chain`), which is why
//! the default depth is generous (see SPEC.md, "Fork choice and reorg depth").

use futures::StreamExt;
use sc_client_api::{Backend, BlockchainEvents, Finalizer};
use sp_blockchain::HeaderBackend;
use sp_runtime::{
	traits::{Block as BlockT, Header as _, NumberFor},
	SaturatedConversion,
};
use std::sync::Arc;

/// The default maximum reorg depth, in blocks (10 minutes at 6 s blocks).
pub const DEFAULT_MAX_REORG_DEPTH: u32 = 100;

const LOG_TARGET: &str = "mlpow";

/// Follows the best block and finalizes the block `depth` below it on the
/// best chain. Runs until the import stream ends (node shutdown).
pub async fn finalize_below_depth<B, BE, C>(client: Arc<C>, depth: u32)
where
	B: BlockT,
	BE: Backend<B>,
	C: BlockchainEvents<B> + HeaderBackend<B> + Finalizer<B, BE>,
{
	let mut imports = client.import_notification_stream();
	while let Some(imported) = imports.next().await {
		if !imported.is_new_best {
			continue;
		}
		let best: u64 = (*imported.header.number()).saturated_into();
		let Some(target) = best.checked_sub(depth.into()) else { continue };
		let target: NumberFor<B> = target.saturated_into();
		if target <= client.info().finalized_number {
			continue;
		}
		// The best chain's block at that height (the best block just moved,
		// so this is the chain the node follows now).
		let hash = match client.hash(target) {
			Ok(Some(hash)) => hash,
			Ok(None) => continue, // reorged away under us: the next import retries
			Err(e) => {
				log::warn!(target: LOG_TARGET, "finality: no hash at #{target}: {e}");
				continue;
			}
		};
		match client.finalize_block(hash, None, true) {
			Ok(()) => log::debug!(target: LOG_TARGET, "finalized #{target} ({hash:?}), {depth} below the best block"),
			Err(e) => log::warn!(target: LOG_TARGET, "finality: could not finalize #{target} ({hash:?}): {e}"),
		}
	}
}
