//! Fetches the chains peers claim that sync leaves alone, so that fork
//! choice weighs them by work.
//!
//! `sc-network-sync` downloads a peer's chain when the peer claims a higher
//! best block *number* than this node's, and otherwise only forks that
//! start less than a request's worth of blocks below its tip. Fork choice
//! (`sc-consensus-pow`) compares total work, but only between blocks the
//! node has: a heavier chain that is shorter in blocks, beside a long chain
//! mined at a low difficulty, is never downloaded, and a fresh node would
//! follow, then finalize, the light one (issue 22, finding 3).
//!
//! So every second this task reads each peer's claimed best block and, when
//! the node does not have it and sync will not fetch it (its number is
//! above the finalized block and not above the node's best), fetches that
//! chain itself over the block-request protocol sync uses:
//! 1. headers, descending from the claimed block, until one whose parent
//!    the node has (the fork point); a fork point at or below the finalized
//!    block means a chain this node can never switch to, and the fetch ends;
//! 2. full blocks, from the fork point up, a batch at a time (each asked by
//!    hash, top down, so the answer is exactly that chain), each batch
//!    imported through the node's import queue (seal checked first,
//!    then executed; fork choice by total work) before the next is asked.
//!
//! While a fetch is under way, finality waits ([`PendingForks`] says how
//! long at most). A peer whose answers do not match its claim (a header
//! whose hash is not the one it links to, undecodable data) is banned; one
//! that serves invalid blocks is dropped by sync on the failed import.

use crate::service::FullClient;
use codec::{Decode, Encode};
use futures::{stream::FuturesUnordered, StreamExt};
use mlpow_consensus::PendingForks;
use mlpow_runtime::opaque::Block;
use parking_lot::Mutex;
use prost::Message;
use sc_client_api::HeaderBackend;
use sc_consensus::{import_queue::ImportQueueService, IncomingBlock};
use sc_network::{
	service::traits::NetworkService, IfDisconnected, NetworkPeers, NetworkRequest, PeerId, ProtocolName,
	ReputationChange,
};
use sc_network_common::sync::message::BlockAttributes;
use sc_network_sync::{block_request::FromBlock, BlockRequest, BlockResponse, Direction, SyncingService};
use sp_blockchain::BlockStatus;
use sp_consensus::BlockOrigin;
use sp_runtime::traits::{Block as BlockT, Header as HeaderT};
use std::{
	sync::Arc,
	time::{Duration, Instant},
};

type Hash = <Block as BlockT>::Hash;
type Header = <Block as BlockT>::Header;

/// The forks being fetched, keyed by peer and claimed block.
pub type Forks = PendingForks<PeerId, Hash>;

const LOG_TARGET: &str = "mlpow";
/// How often the peers' claims are read.
const POLL: Duration = Duration::from_secs(1);
/// At most this many forks are fetched at once.
const MAX_CONCURRENT: usize = 4;
/// Blocks asked for in one request (the server sends at most 128, and fewer
/// when they pass its 16 MiB response limit).
const BATCH: u32 = 64;
/// A fork longer than this (above the finalized block) is not fetched: the
/// headers alone would take too much memory. A node that far behind a
/// chain relies on the release's `minimumChainWork` instead.
const MAX_FORK_LEN: u32 = 100_000;
/// One request, and one batch's import, must finish within this.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a fetch ended with.
#[derive(Debug)]
enum Outcome {
	/// The claimed block is now in the node's chain, weighed by fork choice.
	Weighed,
	/// The fork starts at or below the finalized block: never importable.
	BelowFinality,
	/// The peer did not answer in time, or the request failed.
	Unanswered(String),
	/// The peer's answers do not match its claim.
	Misbehaved(String),
	/// The fork's blocks did not import (sync dropped the peer if they were
	/// invalid).
	NotImported,
}

/// The fetcher: spawn [`ForkFetcher::run`].
pub struct ForkFetcher {
	client: Arc<FullClient>,
	network: Arc<dyn NetworkService>,
	sync: Arc<SyncingService<Block>>,
	import: Arc<Mutex<Box<dyn ImportQueueService<Block>>>>,
	forks: Arc<Forks>,
	protocol: ProtocolName,
}

impl ForkFetcher {
	pub fn new(
		client: Arc<FullClient>,
		network: Arc<dyn NetworkService>,
		sync: Arc<SyncingService<Block>>,
		import: Box<dyn ImportQueueService<Block>>,
		forks: Arc<Forks>,
		fork_id: Option<&str>,
	) -> Self {
		let protocol = block_request_protocol(&client.info().genesis_hash, fork_id);
		Self { client, network, sync, import: Arc::new(Mutex::new(import)), forks, protocol }
	}

	pub async fn run(self) {
		let this = Arc::new(self);
		let mut fetching = FuturesUnordered::new();
		let mut poll = tokio::time::interval(POLL);
		poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
		loop {
			tokio::select! {
				_ = poll.tick() => {
					let Ok(peers) = this.sync.peers_info().await else { return };
					let info = this.client.info();
					for (peer, claim) in peers {
						if fetching.len() >= MAX_CONCURRENT {
							break;
						}
						let (hash, number) = (claim.best_hash, claim.best_number);
						if number <= info.finalized_number || number > info.best_number
							|| number - info.finalized_number > MAX_FORK_LEN
							|| !matches!(this.client.status(hash), Ok(BlockStatus::Unknown))
						{
							continue;
						}
						if !this.forks.begin(&peer, &hash, Instant::now()) {
							continue;
						}
						log::info!(
							target: LOG_TARGET,
							"⛓  Peer {peer} claims #{number} ({hash:?}), a chain this node lacks and sync leaves alone: \
							 fetching it to weigh its work"
						);
						let this = this.clone();
						fetching.push(async move {
							let outcome = this.fetch(peer, hash).await;
							(peer, hash, number, outcome)
						});
					}
				}
				Some((peer, hash, number, outcome)) = fetching.next() => {
					this.forks.end(&peer, &hash);
					match outcome {
						Outcome::Weighed => log::info!(
							target: LOG_TARGET,
							"⛓  Fetched and weighed peer {peer}'s chain to #{number} ({hash:?}); best is now #{}",
							this.client.info().best_number
						),
						Outcome::Misbehaved(why) => {
							log::warn!(target: LOG_TARGET, "⛓  Peer {peer} misrepresented its chain: {why}; banning it");
							this.network.report_peer(peer, ReputationChange::new_fatal("mlpow: fork does not match its claim"));
						}
						Outcome::Unanswered(why) => log::info!(
							target: LOG_TARGET,
							"⛓  Fork #{number} ({hash:?}) from peer {peer} not weighed: unanswered ({why})"
						),
						other => log::info!(target: LOG_TARGET, "⛓  Fork #{number} ({hash:?}) from peer {peer} not weighed: {other:?}"),
					}
				}
			}
		}
	}

	/// Fetches and imports the chain ending at `claimed` from `peer`.
	async fn fetch(&self, peer: PeerId, claimed: Hash) -> Outcome {
		let finalized = self.client.info().finalized_number;
		// 1. Headers down to the fork point, checked to link up to the claim.
		let mut headers: Vec<Header> = Vec::new();
		let mut next = claimed;
		loop {
			let asked = self.request(peer, next, Direction::Descending, BATCH, BlockAttributes::HEADER).await;
			let blocks = match asked {
				Ok(blocks) => blocks,
				Err(outcome) => return outcome,
			};
			if blocks.is_empty() {
				return Outcome::Misbehaved(format!("no blocks for {next:?}, a block of the chain it claims"));
			}
			for data in blocks {
				let header = match Header::decode(&mut &data.header[..]) {
					Ok(header) => header,
					Err(e) => return Outcome::Misbehaved(format!("undecodable header: {e}")),
				};
				if header.hash() != next {
					return Outcome::Misbehaved(format!("sent {:?} for {next:?}", header.hash()));
				}
				if *header.number() <= finalized {
					return Outcome::BelowFinality;
				}
				next = *header.parent_hash();
				let fork_point = !matches!(self.client.status(next), Ok(BlockStatus::Unknown));
				headers.push(header);
				if fork_point {
					return self.import_fork(peer, claimed, headers).await;
				}
				if headers.len() > MAX_FORK_LEN as usize {
					return Outcome::Misbehaved("a fork longer than its claim".into());
				}
			}
		}
	}

	/// Imports `headers` (descending, the first's parent known) with their
	/// bodies, a batch at a time, oldest first. The peer's answers must be
	/// exactly these headers.
	async fn import_fork(&self, peer: PeerId, claimed: Hash, mut headers: Vec<Header>) -> Outcome {
		headers.reverse();
		for batch in headers.chunks(BATCH as usize) {
			// Asked top down, by hash: the server follows parent links, so
			// the answer is this chain whatever the peer's best is now; a
			// large answer may stop short, and the rest is asked again.
			let mut blocks = Vec::with_capacity(batch.len());
			let mut missing = batch.len();
			while missing > 0 {
				let from = batch[missing - 1].hash();
				let attrs = BlockAttributes::HEADER | BlockAttributes::BODY;
				let got = match self.request(peer, from, Direction::Descending, missing as u32, attrs).await {
					Ok(got) if !got.is_empty() => got,
					Ok(_) => return Outcome::Misbehaved(format!("no blocks for {from:?}, a block of its chain")),
					Err(outcome) => return outcome,
				};
				for data in got.into_iter().take(missing) {
					match incoming(peer, &batch[missing - 1], data) {
						Ok(block) => blocks.push(block),
						Err(why) => return Outcome::Misbehaved(why),
					}
					missing -= 1;
				}
			}
			blocks.reverse();
			self.import.lock().import_blocks(BlockOrigin::NetworkBroadcast, blocks);
			// Wait for the batch: the queue imports in order, so its last
			// block in the chain means the whole batch is.
			let deadline = Instant::now() + STEP_TIMEOUT;
			let mut imported = 0;
			loop {
				let now_imported =
					batch.iter().filter(|h| matches!(self.client.status(h.hash()), Ok(BlockStatus::InChain))).count();
				if now_imported > imported {
					imported = now_imported;
					self.forks.progressed(&peer, &claimed, Instant::now());
				}
				if imported == batch.len() {
					break;
				}
				if Instant::now() > deadline {
					return Outcome::NotImported;
				}
				tokio::time::sleep(Duration::from_millis(100)).await;
			}
		}
		Outcome::Weighed
	}

	/// One block request to `peer`, decoded.
	async fn request(
		&self,
		peer: PeerId,
		from: Hash,
		direction: Direction,
		max_blocks: u32,
		fields: BlockAttributes,
	) -> Result<Vec<sc_network_sync::BlockData>, Outcome> {
		let request = BlockRequest {
			fields: fields.to_be_u32(),
			from_block: Some(FromBlock::Hash(from.encode())),
			direction: direction as i32,
			max_blocks,
			support_multiple_justifications: true,
		}
		.encode_to_vec();
		let answer = tokio::time::timeout(
			STEP_TIMEOUT,
			self.network.request(peer, self.protocol.clone(), request, None, IfDisconnected::ImmediateError),
		)
		.await;
		let bytes = match answer {
			Err(_) => return Err(Outcome::Unanswered("no answer in time".into())),
			Ok(Err(e)) => return Err(Outcome::Unanswered(e.to_string())),
			Ok(Ok((bytes, _))) => bytes,
		};
		BlockResponse::decode(&bytes[..])
			.map(|r| r.blocks)
			.map_err(|e| Outcome::Misbehaved(format!("undecodable block response: {e}")))
	}
}

/// A block from the peer, checked to be `expected` and decoded for import.
fn incoming(peer: PeerId, expected: &Header, data: sc_network_sync::BlockData) -> Result<IncomingBlock<Block>, String> {
	let header = Header::decode(&mut &data.header[..]).map_err(|e| format!("undecodable header: {e}"))?;
	if header != *expected {
		return Err(format!("sent {:?} where its chain has {:?}", header.hash(), expected.hash()));
	}
	let body = data
		.body
		.iter()
		.map(|xt| <Block as BlockT>::Extrinsic::decode(&mut &xt[..]))
		.collect::<Result<Vec<_>, _>>()
		.map_err(|e| format!("undecodable body: {e}"))?;
	Ok(IncomingBlock {
		hash: header.hash(),
		header: Some(header),
		body: Some(body),
		indexed_body: None,
		justifications: None,
		origin: Some(peer),
		allow_missing_state: false,
		skip_execution: false,
		import_existing: false,
		state: None,
	})
}

/// The block-request protocol's name, as `sc-network-sync` registers it.
fn block_request_protocol(genesis: &Hash, fork_id: Option<&str>) -> ProtocolName {
	let genesis = hex::encode(genesis.as_ref());
	match fork_id {
		Some(fork) => format!("/{genesis}/{fork}/sync/2").into(),
		None => format!("/{genesis}/sync/2").into(),
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	/// The name must be the one the block-request handler serves, or every
	/// request fails.
	#[test]
	fn the_protocol_name_is_syncs() {
		let genesis = Hash::repeat_byte(0xab);
		assert_eq!(&*block_request_protocol(&genesis, None), format!("/{}/sync/2", "ab".repeat(32)));
		assert_eq!(&*block_request_protocol(&genesis, Some("f")), format!("/{}/f/sync/2", "ab".repeat(32)));
	}
}
