//! Measures the forks whose blocks arrive from the network, so that
//! finality waits for a heavier fork that sync is still importing.
//!
//! The fork fetcher ([`crate::fork_fetch`]) fetches the chains sync leaves
//! alone (shorter than this node's); sync downloads the longer ones. When
//! a longer chain is also heavier, its blocks import as a fork, not the best
//! chain, until the fork's work passes the best chain's. A fresh node that
//! synced an attacker's light chain first finalized that chain meanwhile
//! (after its settle time) and then refused the honest chain as forking
//! below finality: the tenth review found this for a heavier honest chain
//! that takes longer than the settle time to import.
//!
//! So every block from the network that is not the new best block is
//! measured here, per branch (the fork's first block above where it leaves
//! the best chain), as a fetched fork's batch is
//! ([`PendingForks::synced`](mlpow_consensus::PendingForks::synced)): while
//! the branch gains at least a best block's work on the best chain (net of
//! the best chain's growth), finality stays at or below its fork point, and
//! a node far behind keeps settling (up to its cap). Blocks without work
//! hold nothing.

use crate::{
	fork_fetch::{shortfall, Forks},
	service::FullClient,
};
use futures::StreamExt;
use mlpow_runtime::opaque::Block;
use sc_client_api::BlockchainEvents;
use sp_blockchain::HeaderBackend;
use sp_consensus::BlockOrigin;
use sp_runtime::traits::{Block as BlockT, Header as HeaderT};
use std::{collections::HashSet, sync::Arc, time::Instant};

type Hash = <Block as BlockT>::Hash;

const LOG_TARGET: &str = "mlpow";

/// Where the last fork block seen leaves the best chain, and its branch: a
/// child of that block, with the best block unchanged, is on the same
/// branch, so the route to the best block is not walked again for every
/// block of a long fork.
struct Last {
	block: Hash,
	best: Hash,
	point: u32,
	branch: Hash,
}

/// Follows every import until the node shuts down.
pub async fn run(client: Arc<FullClient>, forks: Arc<Forks>) {
	let mut imports = client.every_import_notification_stream();
	let mut last: Option<Last> = None;
	// Branches already logged as holding, so the log says it once.
	let mut logged: HashSet<Hash> = HashSet::new();
	while let Some(imported) = imports.next().await {
		let from_network = matches!(
			imported.origin,
			BlockOrigin::NetworkInitialSync | BlockOrigin::NetworkBroadcast | BlockOrigin::ConsensusBroadcast
		);
		if imported.is_new_best || !from_network {
			continue;
		}
		let info = client.info();
		let parent = *imported.header.parent_hash();
		let (point, branch) = match &last {
			Some(last) if last.block == parent && last.best == info.best_hash => (last.point, last.branch),
			_ => match sp_blockchain::tree_route(client.as_ref(), info.best_hash, imported.hash) {
				Ok(route) => match route.enacted().first() {
					Some(first) => (route.common_block().number, first.hash),
					None => continue, // on the best chain after all
				},
				Err(e) => {
					log::debug!(target: LOG_TARGET, "⛓  No route from the best block to {:?}: {e}", imported.hash);
					continue;
				}
			},
		};
		last = Some(Last { block: imported.hash, best: info.best_hash, point, branch });
		let (Some((parent_behind, _)), Some((tip_behind, step))) =
			(shortfall(&client, parent), shortfall(&client, imported.hash))
		else {
			continue;
		};
		let progressed = forks.synced(
			&branch,
			point.into(),
			info.finalized_number.into(),
			Instant::now(),
			parent_behind,
			tip_behind,
			step,
		);
		if progressed && point < info.best_number && logged.insert(branch) {
			if logged.len() > 1024 {
				logged.clear();
			}
			log::info!(
				target: LOG_TARGET,
				"⛓  A fork from #{point} that sync imports gains on the best chain (#{} is {tip_behind} work behind): \
				 finality waits at or below its fork point while it does",
				imported.header.number()
			);
		}
	}
}
