//! `mlpow_chainWork`: the total work of this node's best and finalized
//! blocks, in MACs (the sum of each block's difficulty times `t*t*k`, what
//! `sc-consensus-pow` stores as the total difficulty). A release takes the
//! `minimumChainWork` of its chain spec from a synced node's answer (README,
//! "Releasing a chain spec"): a fresh node then finalizes nothing on a chain
//! lighter than that, however long.

use crate::service::FullClient;
use jsonrpsee::{core::RpcResult, proc_macros::rpc, types::ErrorObjectOwned};
use mlpow_primitives::U256;
use mlpow_runtime::opaque::Block;
use sc_consensus_pow::PowAux;
use serde::Serialize;
use sp_blockchain::HeaderBackend;
use sp_core::H256;
use std::sync::Arc;

/// One block's total work.
#[derive(Clone, Debug, Serialize)]
pub struct BlockWork {
	pub number: u32,
	pub hash: H256,
	/// Total work up to and including this block, in MACs, as a decimal string.
	pub work: String,
}

/// The answer of `mlpow_chainWork`.
#[derive(Clone, Debug, Serialize)]
pub struct ChainWork {
	pub best: BlockWork,
	pub finalized: BlockWork,
}

#[rpc(server, namespace = "mlpow")]
pub trait ChainWorkApi {
	/// Total work of the best and the finalized block.
	#[method(name = "chainWork")]
	fn chain_work(&self) -> RpcResult<ChainWork>;
}

pub struct ChainWorkRpc {
	client: Arc<FullClient>,
}

impl ChainWorkRpc {
	pub fn new(client: Arc<FullClient>) -> Self {
		Self { client }
	}

	fn block(&self, number: u32, hash: H256) -> RpcResult<BlockWork> {
		// Genesis has no total difficulty stored: its work is zero.
		let work = if number == 0 {
			U256::zero()
		} else {
			PowAux::<U256>::read::<_, Block>(self.client.as_ref(), &hash)
				.map_err(|e| ErrorObjectOwned::owned(1, format!("no total work for {hash:?}: {e}"), None::<()>))?
				.total_difficulty
		};
		Ok(BlockWork { number, hash, work: work.to_string() })
	}
}

impl ChainWorkApiServer for ChainWorkRpc {
	fn chain_work(&self) -> RpcResult<ChainWork> {
		let info = self.client.info();
		Ok(ChainWork {
			best: self.block(info.best_number, info.best_hash)?,
			finalized: self.block(info.finalized_number, info.finalized_hash)?,
		})
	}
}
