//! The mining RPC: `mlpow_getWork`, `mlpow_subscribeWork`, `mlpow_submitSeal`
//! (wire format in the `mlpow-work` crate). A thin JSON layer over
//! [`MiningBridge`]. Submitting and subscribing are unsafe methods: a node
//! that exposes its RPC externally with `--rpc-methods safe` refuses them, so
//! only a local (or explicitly trusted) worker can feed it seals.

use jsonrpsee::{
	core::{async_trait, RpcResult, SubscriptionResult},
	proc_macros::rpc,
	types::ErrorObjectOwned,
	Extensions, PendingSubscriptionSink, SubscriptionMessage,
};
use mlpow_consensus::{MiningBridge, SubmitOutcome, Work};
use mlpow_runtime::opaque::Block;
use mlpow_work::{codes, Accepted, Hex32, HexU256, WorkItem};
use sc_rpc_api::check_if_safe;
use sp_core::H256;

#[rpc(server, namespace = "mlpow")]
pub trait MiningApi {
	/// The current work item.
	#[method(name = "getWork")]
	fn get_work(&self) -> RpcResult<WorkItem>;

	/// Submits a seal (hex: 16 bytes under puzzle v1; 17, or more with
	/// openings, under v2) found for work `version`.
	#[method(name = "submitSeal", with_extensions)]
	async fn submit_seal(&self, version: u64, seal: String) -> RpcResult<Accepted>;

	/// Pushes the current work item, then every new one.
	#[subscription(name = "subscribeWork" => "work", unsubscribe = "unsubscribeWork", item = WorkItem, with_extensions)]
	async fn subscribe_work(&self) -> SubscriptionResult;
}

pub struct MiningRpc {
	/// `None` on a node that does not build blocks (not `--validator`).
	bridge: Option<MiningBridge<Block>>,
}

impl MiningRpc {
	pub fn new(bridge: Option<MiningBridge<Block>>) -> Self {
		Self { bridge }
	}

	fn bridge(&self) -> RpcResult<&MiningBridge<Block>> {
		self.bridge.as_ref().ok_or_else(|| {
			error(codes::NO_WORK, "this node does not build blocks: start it with --validator (or --dev) to mine")
		})
	}
}

fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
	ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// The JSON form of a work item.
pub fn work_item(work: &Work<H256>) -> WorkItem {
	WorkItem {
		version: work.version,
		pre_hash: Hex32(work.pre_hash.0),
		parent_hash: Hex32(work.parent_hash.0),
		number: work.number,
		difficulty: HexU256(work.difficulty),
		params: work.challenge.params,
		weights_seed: Hex32(work.challenge.weights_seed),
	}
}

#[async_trait]
impl MiningApiServer for MiningRpc {
	fn get_work(&self) -> RpcResult<WorkItem> {
		let work = self.bridge()?.current().ok_or_else(|| {
			error(codes::NO_WORK, "no work yet: the node is starting, syncing, or has just imported a block")
		})?;
		Ok(work_item(&work))
	}

	async fn submit_seal(&self, ext: &Extensions, version: u64, seal: String) -> RpcResult<Accepted> {
		check_if_safe(ext)?;
		let bridge = self.bridge()?;
		// The length first, so a huge string is refused without decoding it;
		// the exact length for the work's puzzle version is checked with the seal.
		let digits = seal.strip_prefix("0x").unwrap_or(&seal).len();
		if digits > 2 * mlpow_primitives::MAX_SEAL_LEN {
			return Err(error(
				codes::MALFORMED,
				format!(
					"malformed seal: {digits} hex digits, no seal exceeds {} bytes",
					mlpow_primitives::MAX_SEAL_LEN
				),
			));
		}
		let bytes =
			mlpow_work::decode_hex(&seal).map_err(|e| error(codes::MALFORMED, format!("malformed seal: {e}")))?;
		match bridge.submit(version, bytes).await {
			SubmitOutcome::Accepted { hash, number } => Ok(Accepted { block_hash: Hex32(hash.0), number }),
			SubmitOutcome::Stale => {
				Err(error(codes::STALE, format!("stale: work {version} has been replaced; fetch the current work")))
			}
			SubmitOutcome::Malformed(reason) => Err(error(codes::MALFORMED, format!("malformed seal: {reason}"))),
			SubmitOutcome::Invalid(reason) => Err(error(codes::INVALID, format!("invalid seal: {reason}"))),
			SubmitOutcome::ImportFailed(reason) => Err(error(codes::IMPORT_FAILED, format!("import failed: {reason}"))),
		}
	}

	async fn subscribe_work(&self, pending: PendingSubscriptionSink, ext: &Extensions) -> SubscriptionResult {
		// Reject through the pending sink: an error returned from here would
		// reach the client only as "internal error".
		if let Err(e) = check_if_safe(ext) {
			pending.reject(e).await;
			return Ok(());
		}
		let mut work = match self.bridge() {
			Ok(bridge) => bridge.subscribe(),
			Err(e) => {
				pending.reject(e).await;
				return Ok(());
			}
		};
		let sink = pending.accept().await?;
		// Send what is current now, then every change. `None` (no block to
		// mine right now) is not sent: the next item replaces the last one.
		work.mark_changed();
		loop {
			tokio::select! {
				changed = work.changed() => {
					if changed.is_err() {
						break;
					}
					let item = work.borrow_and_update().as_ref().map(|w| work_item(w));
					if let Some(item) = item {
						let msg = SubscriptionMessage::from_json(&item)?;
						if sink.send(msg).await.is_err() {
							break;
						}
					}
				}
				_ = sink.closed() => break,
			}
		}
		Ok(())
	}
}
