//! Assembles the node: client and database, PoW import queue, network,
//! RPC, and (for `--validator` nodes) the block builder that external
//! workers mine for.

use codec::Encode;
use mlpow_consensus::{MatmulPow, MiningBridge};
use mlpow_runtime::{opaque::Block, RuntimeApi};
use sc_consensus::{BoxBlockImport, DefaultImportQueue};
use sc_service::{error::Error as ServiceError, Configuration, PartialComponents, TaskManager};
use sc_telemetry::{Telemetry, TelemetryWorker};
use sp_core::crypto::{AccountId32, Ss58Codec};
use std::{sync::Arc, time::Duration};

pub type FullClient =
	sc_service::TFullClient<Block, RuntimeApi, sc_executor::WasmExecutor<sp_io::SubstrateHostFunctions>>;
type FullBackend = sc_service::TFullBackend<Block>;
type FullSelectChain = sc_consensus::LongestChain<FullBackend, Block>;
type Pool = sc_transaction_pool::TransactionPoolHandle<Block, FullClient>;
pub type Pow = MatmulPow<Block, FullClient>;

/// How long the block builder may spend assembling a proposal.
const PROPOSAL_TIME: Duration = Duration::from_secs(2);
/// How often the block builder re-checks for a new best block when no
/// import wakes it.
const REPROPOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The parts that subcommands need too, plus what the full node adds to them.
pub type Partial = PartialComponents<
	FullClient,
	FullBackend,
	FullSelectChain,
	DefaultImportQueue<Block>,
	Pool,
	(BoxBlockImport<Block>, Pow, Option<Telemetry>),
>;

/// Timestamps are the only inherent. PoW imports check them (a block may not
/// be more than 30 s in the future), which is what keeps miners from
/// gaming the retarget with invented times.
fn inherent_data_providers(
) -> impl sp_inherents::CreateInherentDataProviders<Block, (), InherentDataProviders = sp_timestamp::InherentDataProvider>
       + Clone {
	|_parent, ()| async {
		Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sp_timestamp::InherentDataProvider::from_system_time())
	}
}

pub fn new_partial(config: &Configuration) -> Result<Partial, ServiceError> {
	let telemetry = config
		.telemetry_endpoints
		.clone()
		.filter(|x| !x.is_empty())
		.map(|endpoints| -> Result<_, sc_telemetry::Error> {
			let worker = TelemetryWorker::new(16)?;
			let telemetry = worker.handle().new_telemetry(endpoints);
			Ok((worker, telemetry))
		})
		.transpose()?;

	let executor = sc_service::new_wasm_executor::<sp_io::SubstrateHostFunctions>(&config.executor);
	let (client, backend, keystore_container, task_manager) = sc_service::new_full_parts::<Block, RuntimeApi, _>(
		config,
		telemetry.as_ref().map(|(_, telemetry)| telemetry.handle()),
		executor,
		Vec::new(),
	)?;
	let client = Arc::new(client);

	let telemetry = telemetry.map(|(worker, telemetry)| {
		task_manager.spawn_handle().spawn("telemetry", None, worker.run());
		telemetry
	});

	let select_chain = sc_consensus::LongestChain::new(backend.clone());

	let transaction_pool = Arc::from(
		sc_transaction_pool::Builder::new(
			task_manager.spawn_essential_handle(),
			client.clone(),
			config.role.is_authority().into(),
		)
		.with_options(config.transaction_pool.clone())
		.with_prometheus(config.prometheus_registry())
		.build(),
	);

	let metrics = match config.prometheus_registry().map(mlpow_consensus::Metrics::register).transpose() {
		Ok(metrics) => metrics,
		Err(e) => return Err(ServiceError::Other(format!("registering the mlpow metrics: {e}"))),
	};
	let algorithm = MatmulPow::new(client.clone()).with_metrics(metrics);
	let pow_import = sc_consensus_pow::PowBlockImport::new(
		client.clone(),
		client.clone(),
		algorithm.clone(),
		0, // check inherents (timestamps) from the first block on
		select_chain.clone(),
		inherent_data_providers(),
	);

	let import_queue = sc_consensus_pow::import_queue(
		Box::new(pow_import.clone()),
		None,
		algorithm.clone(),
		&task_manager.spawn_essential_handle(),
		config.prometheus_registry(),
	)?;

	Ok(PartialComponents {
		client,
		backend,
		task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other: (Box::new(pow_import), algorithm, telemetry),
	})
}

pub fn new_full<N: sc_network::NetworkBackend<Block, <Block as sp_runtime::traits::Block>::Hash>>(
	config: Configuration,
	author: Option<AccountId32>,
	max_reorg_depth: u32,
) -> Result<TaskManager, ServiceError> {
	let PartialComponents {
		client,
		backend,
		mut task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other: (pow_import, algorithm, mut telemetry),
	} = new_partial(&config)?;

	let net_config =
		sc_network::config::FullNetworkConfiguration::<Block, <Block as sp_runtime::traits::Block>::Hash, N>::new(
			&config.network,
			config.prometheus_registry().cloned(),
		);
	let metrics = N::register_notification_metrics(config.prometheus_registry());

	let (network, system_rpc_tx, tx_handler_controller, sync_service, _bitswap) =
		sc_service::build_network(sc_service::BuildNetworkParams {
			config: &config,
			net_config,
			client: client.clone(),
			transaction_pool: transaction_pool.clone(),
			spawn_handle: task_manager.spawn_handle(),
			spawn_essential_handle: task_manager.spawn_essential_handle(),
			import_queue,
			block_announce_validator_builder: None,
			warp_sync_config: None,
			block_relay: None,
			metrics,
			gap_sync_body_policy: None,
		})?;

	// Every node, mining or not, keeps to the same maximum reorg depth.
	log::info!("⛓  Blocks {max_reorg_depth} deep are final (--max-reorg-depth)");
	task_manager.spawn_essential_handle().spawn(
		"mlpow-finality",
		None,
		mlpow_consensus::finalize_below_depth(client.clone(), max_reorg_depth),
	);

	// The block builder runs only on block-producing nodes; the mining RPC
	// exists on every node but serves work only here.
	let mining = if config.role.is_authority() {
		match &author {
			Some(a) => log::info!("⛏  Block rewards go to {}", a.to_ss58check()),
			None => log::warn!("⛏  No --author given: blocks built by this node pay no reward"),
		}
		let proposer = sc_basic_authorship::ProposerFactory::new(
			task_manager.spawn_handle(),
			client.clone(),
			transaction_pool.clone(),
			config.prometheus_registry(),
			telemetry.as_ref().map(|x| x.handle()),
		);
		let (handle, builder) = sc_consensus_pow::start_mining_worker(
			pow_import,
			client.clone(),
			select_chain,
			algorithm.clone(),
			proposer,
			sync_service.clone(),
			sync_service.clone(),
			author.map(|a| a.encode()),
			inherent_data_providers(),
			REPROPOSE_TIMEOUT,
			PROPOSAL_TIME,
		);
		task_manager.spawn_essential_handle().spawn_blocking("pow-block-builder", Some("block-authoring"), builder);
		let (bridge, poller) = MiningBridge::new(client.clone(), algorithm, handle);
		task_manager.spawn_essential_handle().spawn("mlpow-work-poller", Some("block-authoring"), poller);
		Some(bridge)
	} else {
		None
	};

	let rpc_builder = {
		let client = client.clone();
		let pool = transaction_pool.clone();
		Box::new(move |_| crate::rpc::create_full(client.clone(), pool.clone(), mining.clone()).map_err(Into::into))
	};

	sc_service::spawn_tasks(sc_service::SpawnTasksParams {
		network: Arc::new(network.clone()),
		client,
		keystore: keystore_container.keystore(),
		task_manager: &mut task_manager,
		transaction_pool,
		rpc_builder,
		backend,
		system_rpc_tx,
		tx_handler_controller,
		sync_service,
		config,
		telemetry: telemetry.as_mut(),
		tracing_execute_block: None,
	})?;

	Ok(task_manager)
}
