//! The node's RPC: Substrate's standard methods (added by sc-service), the
//! account-nonce and fee methods Polkadot.js relies on, the mining RPC, and
//! `mlpow_chainWork`.

use crate::{
	chain_work_rpc::{ChainWorkApiServer, ChainWorkRpc},
	mining_rpc::{MiningApiServer, MiningRpc},
	service::FullClient,
};
use jsonrpsee::RpcModule;
use mlpow_consensus::MiningBridge;
use mlpow_runtime::opaque::Block;
use sc_transaction_pool_api::TransactionPool;
use std::sync::Arc;

pub fn create_full<P>(
	client: Arc<FullClient>,
	pool: Arc<P>,
	mining: Option<MiningBridge<Block>>,
) -> Result<RpcModule<()>, Box<dyn std::error::Error + Send + Sync>>
where
	P: TransactionPool<Block = Block> + 'static,
{
	use pallet_transaction_payment_rpc::{TransactionPayment, TransactionPaymentApiServer};
	use substrate_frame_rpc_system::{System, SystemApiServer};

	let mut module = RpcModule::new(());
	module.merge(System::new(client.clone(), pool).into_rpc())?;
	module.merge(TransactionPayment::new(client.clone()).into_rpc())?;
	module.merge(ChainWorkRpc::new(client).into_rpc())?;
	module.merge(MiningRpc::new(mining).into_rpc())?;
	Ok(module)
}
