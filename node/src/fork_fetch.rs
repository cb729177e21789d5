//! Fetches the chains peers claim that sync leaves alone, so that fork
//! choice weighs them by work.
//!
//! `sc-network-sync` downloads a peer's chain when the peer claims a higher
//! best block *number* than this node's, and a shorter fork only in one
//! descending request (at most 128 blocks), whose import fails when the
//! fork is longer. Fork choice (`sc-consensus-pow`) compares total work, but
//! only between blocks the node has: a heavier chain that is shorter in
//! blocks, beside a long chain mined at a low difficulty, is never
//! downloaded, and a fresh node would follow, then finalize, the light one
//! (issue 22, finding 3).
//!
//! So every second this task reads each peer's claimed best block and, when
//! the node does not have it and sync will not fetch it (its number is
//! above the finalized block and not above the node's best), fetches that
//! peer's chain itself over the block-request protocol sync uses, one fetch
//! per peer at a time:
//! 1. the fork point: the highest block of the peer's chain this node has
//!    (on its best chain, or a fork an earlier fetch imported), by binary
//!    search on block numbers between the finalized block and the claim (a
//!    header a request; a peer whose chain does not contain this node's
//!    finalized block is on a chain this node can never switch to, and the
//!    fetch ends);
//! 2. full blocks, ascending from the fork point to the claimed number, a
//!    batch at a time, each checked to be numbered in sequence and to link
//!    to the one before, and imported through the node's import queue (seal
//!    checked first, then executed; fork choice by total work) before the
//!    next batch is asked. Memory is one batch; every batch that imports is
//!    verified work.
//!
//! While a fetch is under way, finality may wait ([`PendingForks`] says how
//! long at most: only while the fork's imported blocks bring it closer to
//! the best chain than any fork came since the last finalization). A peer whose answers contradict themselves or the request
//! (wrong numbers, broken links, undecodable data) is banned; one that has
//! nothing to send (it pruned the block, or reorganised) is not; one that
//! serves invalid blocks is dropped by sync on the failed import. A peer
//! whose fetch ends without weighing its claim waits [`RETRY_AFTER`] before
//! the next one.

use crate::service::FullClient;
use codec::{Decode, Encode};
use futures::{stream::FuturesUnordered, StreamExt};
use mlpow_consensus::PendingForks;
use mlpow_primitives::U256;
use mlpow_runtime::opaque::Block;
use parking_lot::Mutex;
use prost::Message;
use sc_client_api::HeaderBackend;
use sc_consensus::{import_queue::ImportQueueService, IncomingBlock};
use sc_consensus_pow::PowAux;
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
	collections::{HashMap, HashSet},
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
/// Blocks asked for in one request (the server sends at most 128, and fewer
/// when they pass its 16 MiB response limit).
const BATCH: u32 = 64;
/// A fork longer than this (above the fork point) is not fetched.
const MAX_FORK_LEN: u32 = 100_000;
/// One request, and one batch's import, must finish within this.
const STEP_TIMEOUT: Duration = mlpow_consensus::forks::FETCH_STEP_TIMEOUT;
/// A header larger than this is not a block of this chain (the seal is at
/// most `MAX_SEAL_LEN`; the rest is a few hundred bytes).
const MAX_HEADER_LEN: usize = mlpow_primitives::MAX_SEAL_LEN + 4096;
/// After a fetch that did not weigh its claim, the peer's next claim waits
/// this long.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// What a fetch ended with.
#[derive(Debug)]
enum Outcome {
	/// The claimed block is now in the node's chain, weighed by fork choice.
	Weighed,
	/// The peer's chain does not contain this node's finalized block: never
	/// importable.
	BelowFinality,
	/// The peer did not answer in time, the request failed, or it had
	/// nothing to send.
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
		// Peers with a fetch under way, and peers waiting out a retry.
		let mut busy: HashMap<PeerId, Hash> = HashMap::new();
		let mut resting: HashMap<PeerId, Instant> = HashMap::new();
		// Claims, per peer, of chains without this node's finalized block:
		// never worth asking that peer again (bounded: forgotten in bulk past
		// the limit). Per peer: a liar's answer must not blacklist a block
		// that honest peers claim.
		let mut beyond_reach: HashSet<(PeerId, Hash)> = HashSet::new();
		let mut poll = tokio::time::interval(POLL);
		poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
		loop {
			tokio::select! {
				_ = poll.tick() => {
					let Ok(peers) = this.sync.peers_info().await else { return };
					let info = this.client.info();
					let now = Instant::now();
					resting.retain(|_, until| *until > now);
					for (peer, claim) in peers {
						let (hash, number) = (claim.best_hash, claim.best_number);
						if busy.contains_key(&peer) || resting.contains_key(&peer) || beyond_reach.contains(&(peer, hash))
							|| number <= info.finalized_number || number > info.best_number
							|| !matches!(this.client.status(hash), Ok(BlockStatus::Unknown))
						{
							continue;
						}
						if !this.forks.begin(&peer, &hash, now) {
							continue;
						}
						busy.insert(peer, hash);
						log::info!(
							target: LOG_TARGET,
							"⛓  Peer {peer} claims #{number} ({hash:?}), a chain this node lacks and sync leaves alone: \
							 fetching it to weigh its work"
						);
						let this = this.clone();
						fetching.push(async move {
							let outcome = this.fetch(peer, hash, number).await;
							(peer, hash, number, outcome)
						});
					}
				}
				Some((peer, hash, number, outcome)) = fetching.next() => {
					// A fork that progressed goes on holding finality for a
					// while (`PendingForks::end`), and its peer may go on at once.
					let progressed = this.forks.end(&peer, &hash);
					busy.remove(&peer);
					match &outcome {
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
					if matches!(outcome, Outcome::BelowFinality) {
						if beyond_reach.len() >= 4096 {
							beyond_reach.clear();
						}
						beyond_reach.insert((peer, hash));
					}
					if !progressed && !matches!(this.client.status(hash), Ok(BlockStatus::InChain)) {
						resting.insert(peer, Instant::now() + RETRY_AFTER);
					}
				}
			}
		}
	}

	/// Fetches and imports `peer`'s chain up to `claimed` (#`number`).
	async fn fetch(&self, peer: PeerId, claimed: Hash, number: u32) -> Outcome {
		let info = self.client.info();
		if number <= info.finalized_number {
			return Outcome::BelowFinality; // finalized past it since the claim was read
		}
		// The peer's chain must end where it claims.
		match self.peer_block(peer, number).await {
			Ok(hash) if hash == claimed => {}
			Ok(_) => return Outcome::Unanswered("its chain no longer ends at the claimed block".into()),
			Err(outcome) => return outcome,
		}
		// 1. The fork point: the highest height at which this node has the
		// peer's block, between the finalized block (which must be on the
		// peer's chain) and the claim. Having a block means having its
		// ancestors, so the search is sound; blocks an earlier fetch of
		// the same fork imported are not asked for again.
		match self.peer_block(peer, info.finalized_number).await {
			Ok(hash) if hash == info.finalized_hash => {}
			Ok(_) => return Outcome::BelowFinality,
			Err(outcome) => return outcome,
		}
		let (mut agree, mut parent) = (info.finalized_number, info.finalized_hash);
		let mut differ = number + 1;
		while differ - agree > 1 {
			let mid = agree + (differ - agree) / 2;
			match self.peer_block(peer, mid).await {
				Ok(hash) if matches!(self.client.status(hash), Ok(BlockStatus::InChain)) => {
					(agree, parent) = (mid, hash);
				}
				Ok(_) => differ = mid,
				Err(outcome) => return outcome,
			}
		}
		if agree == number {
			// Imported meanwhile (by sync, or another fetch), or the peer's
			// answers changed under the search.
			return match self.client.status(claimed) {
				Ok(BlockStatus::InChain) => Outcome::Weighed,
				_ => Outcome::Unanswered("its chain changed between requests".into()),
			};
		}
		if number - agree > MAX_FORK_LEN {
			return Outcome::Unanswered(format!(
				"a fork of {} blocks is longer than this node fetches",
				number - agree
			));
		}
		// 2. The fork's blocks, ascending, a batch at a time.
		let (mut next, mut measured) = (agree + 1, false);
		while next <= number {
			let want = (number - next + 1).min(BATCH);
			let attrs = BlockAttributes::HEADER | BlockAttributes::BODY;
			let got = match self
				.request(peer, FromBlock::Number(Encode::encode(&next)), Direction::Ascending, want, attrs)
				.await
			{
				Ok(got) if got.is_empty() => return Outcome::Unanswered(format!("no blocks from #{next}")),
				Ok(got) => got,
				Err(outcome) => return outcome,
			};
			let mut blocks = Vec::with_capacity(got.len());
			let mut received = 0;
			for data in got.into_iter().take(want as usize) {
				match incoming(peer, next + received, parent, received == 0, data) {
					Ok(block) => {
						let block_parent = std::mem::replace(&mut parent, block.hash);
						received += 1;
						// Blocks this node has (an earlier fetch of the same
						// fork imported them) are not imported again, and are
						// no progress: only new work holds finality.
						if matches!(self.client.status(block.hash), Ok(BlockStatus::InChain)) {
							continue;
						}
						if !measured {
							// The fork's measure of progress starts at the
							// parent of its first block this node lacks: a
							// block of this node's chain, under a verified
							// seal, not a height the peer's answers to the
							// search chose (a review found a peer could set it
							// low, so that any one block counted as progress).
							// Finality waits where the fork leaves the best chain.
							if let Some((behind, _)) = shortfall(&self.client, block_parent) {
								let point = divergence(&self.client, block_parent, agree);
								self.forks.forked_at(&peer, &claimed, point.into(), behind);
							}
							measured = true;
						}
						blocks.push(block);
					}
					Err(outcome) => return outcome,
				}
			}
			next += received;
			let batch: Vec<Hash> = blocks.iter().map(|b| b.hash).collect();
			if !blocks.is_empty() {
				// Every batch but the last imports as sync's own do, without
				// an announcement per block; the last announces the new best.
				let origin =
					if next > number { BlockOrigin::NetworkBroadcast } else { BlockOrigin::NetworkInitialSync };
				self.import.lock().import_blocks(origin, blocks);
			}
			// The deadline moves with every block imported: a long batch
			// that keeps importing is not cut short.
			let mut deadline = Instant::now() + STEP_TIMEOUT;
			let mut imported = 0;
			while imported < batch.len() {
				let now_imported =
					batch.iter().filter(|h| matches!(self.client.status(**h), Ok(BlockStatus::InChain))).count();
				if now_imported > imported {
					imported = now_imported;
					deadline = Instant::now() + STEP_TIMEOUT;
					// Blocks import in order: the last imported is the fork's tip.
					// The best chain may have moved since the fork point was
					// found: the hold goes where the fork leaves it now.
					let tip = batch[imported - 1];
					self.forks.diverges_at(&peer, &claimed, divergence(&self.client, tip, agree).into());
					if let Some((behind, step)) = shortfall(&self.client, tip) {
						self.forks.progressed(&peer, &claimed, Instant::now(), behind, step);
					}
				} else if Instant::now() > deadline {
					return Outcome::NotImported;
				} else {
					tokio::time::sleep(Duration::from_millis(100)).await;
				}
			}
		}
		if matches!(self.client.status(claimed), Ok(BlockStatus::InChain)) {
			Outcome::Weighed
		} else {
			// The peer's chain moved on under the claim; its new best is the next claim.
			Outcome::Unanswered("its chain no longer ends at the claimed block".into())
		}
	}

	/// The hash of the peer's block at `number` (its header, asked for).
	async fn peer_block(&self, peer: PeerId, number: u32) -> Result<Hash, Outcome> {
		let got = self
			.request(peer, FromBlock::Number(Encode::encode(&number)), Direction::Ascending, 1, BlockAttributes::HEADER)
			.await?;
		let Some(data) = got.into_iter().next() else {
			return Err(Outcome::Unanswered(format!("no header at #{number}")));
		};
		let header = decode_header(&data.header).map_err(Outcome::Misbehaved)?;
		if *header.number() != number {
			return Err(Outcome::Misbehaved(format!("sent #{} for #{number}", header.number())));
		}
		Ok(header.hash())
	}

	/// One block request to `peer`, decoded.
	async fn request(
		&self,
		peer: PeerId,
		from: FromBlock,
		direction: Direction,
		max_blocks: u32,
		fields: BlockAttributes,
	) -> Result<Vec<sc_network_sync::BlockData>, Outcome> {
		let request = BlockRequest {
			fields: fields.to_be_u32(),
			from_block: Some(from),
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

/// The height where the chain ending at `block` leaves this node's best
/// chain (`fallback` if that cannot be read).
pub(crate) fn divergence(client: &FullClient, block: Hash, fallback: u32) -> u32 {
	let best = client.info().best_hash;
	match sp_blockchain::lowest_common_ancestor(client, block, best) {
		Ok(ancestor) => ancestor.number,
		Err(e) => {
			log::warn!(target: LOG_TARGET, "⛓  No common ancestor of {block:?} and the best block: {e}");
			fallback
		}
	}
}

/// How much less work the chain ending at `tip` carries than this node's
/// best chain (zero once it is the best chain), and the work of the best
/// block itself.
pub(crate) fn shortfall(client: &FullClient, tip: Hash) -> Option<(U256, U256)> {
	let info = client.info();
	// Genesis has no total work stored: its work is zero.
	let read = |hash: &Hash| {
		if *hash == info.genesis_hash {
			Some(PowAux::<U256>::default())
		} else {
			PowAux::<U256>::read::<_, Block>(client, hash).ok()
		}
	};
	let (fork, best) = (read(&tip)?, read(&info.best_hash)?);
	Some((best.total_difficulty.saturating_sub(fork.total_difficulty), best.difficulty))
}

/// A header from the peer, decoded, within the size a header of this
/// chain can have.
fn decode_header(bytes: &[u8]) -> Result<Header, String> {
	if bytes.len() > MAX_HEADER_LEN {
		return Err(format!("a header of {} bytes", bytes.len()));
	}
	Header::decode(&mut &bytes[..]).map_err(|e| format!("undecodable header: {e}"))
}

/// A block from the peer, checked to be block #`number` and a child of
/// `parent`, decoded for import. A wrong number or a broken link within an
/// answer contradicts the request; a first block that does not link to the
/// previous answer's last is the peer's chain changing between requests
/// (a reorganisation: no misbehaviour).
fn incoming(
	peer: PeerId,
	number: u32,
	parent: Hash,
	first: bool,
	data: sc_network_sync::BlockData,
) -> Result<IncomingBlock<Block>, Outcome> {
	let header = decode_header(&data.header).map_err(Outcome::Misbehaved)?;
	if *header.number() != number || (*header.parent_hash() != parent && !first) {
		return Err(Outcome::Misbehaved(format!(
			"sent #{} (child of {:?}) where #{number} (child of {parent:?}) belongs",
			header.number(),
			header.parent_hash()
		)));
	}
	if *header.parent_hash() != parent {
		return Err(Outcome::Unanswered(format!("its chain changed between requests at #{number}")));
	}
	let body = data
		.body
		.iter()
		.map(|xt| <Block as BlockT>::Extrinsic::decode(&mut &xt[..]))
		.collect::<Result<Vec<_>, _>>()
		.map_err(|e| Outcome::Misbehaved(format!("undecodable body: {e}")))?;
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
