//! Assembles the node: client and database, PoW import queue, network,
//! RPC, and (for `--validator` nodes) the block builder that external
//! workers mine for.

use codec::Encode;
use mlpow_consensus::{MatmulPow, MiningBridge, SealVerifier};
use mlpow_runtime::{opaque::Block, RuntimeApi};
use sc_client_api::HeaderBackend;
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

/// Timestamps are the only inherent. PoW imports check them against this
/// node's clock (a block may not be more than 30 s in the future); the
/// runtime checks the rest (at least 50 ms after the parent, never before the
/// launch time), which together keep miners from gaming the retarget with
/// invented times.
fn inherent_data_providers(
) -> impl sp_inherents::CreateInherentDataProviders<Block, (), InherentDataProviders = sp_timestamp::InherentDataProvider>
       + Clone {
	|_parent, ()| async {
		Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sp_timestamp::InherentDataProvider::from_system_time())
	}
}

/// The timestamp this node stamps on a block it builds: its clock, or the
/// earliest time the runtime accepts after the parent's when the parent is
/// ahead of the clock (it may be, by up to 30 s). Stamping the clock alone
/// would make the runtime refuse our block until our clock passed the
/// parent's timestamp: a miner that stamps 30 s ahead would stall every
/// honest builder for 30 s after each of its blocks while it mines on.
fn mining_inherent_data_providers(
	client: Arc<FullClient>,
) -> impl sp_inherents::CreateInherentDataProviders<Block, (), InherentDataProviders = sp_timestamp::InherentDataProvider>
       + Clone {
	move |parent, ()| {
		let client = client.clone();
		async move {
			let clock = sp_timestamp::Timestamp::current();
			// The runtime's `MinimumPeriod`: a timestamp at least this far after the parent's.
			let period =
				<<mlpow_runtime::Runtime as pallet_timestamp::Config>::MinimumPeriod as sp_core::Get<u64>>::get();
			let parent_stamp = parent_timestamp(&client, parent);
			let earliest = parent_stamp.map_or(0, |t| t.saturating_add(period));
			let stamp = match mlpow_consensus::test_switches::stamp_spacing_ms() {
				// A debug node's test clock (development chains only).
				Some(spacing) => parent_stamp.map_or_else(|| launch_time(&client, parent), |t| t + spacing.max(period)),
				None => clock.as_millis().max(earliest),
			};
			Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sp_timestamp::InherentDataProvider::new(stamp.into()))
		}
	}
}

/// `Timestamp::Now` in the state of `block`, or `None` for genesis, which
/// has no timestamp (or when that state is gone).
fn parent_timestamp(client: &FullClient, block: <Block as sp_runtime::traits::Block>::Hash) -> Option<u64> {
	use codec::Decode;
	use sc_client_api::StorageProvider;
	let key = pallet_timestamp::Now::<mlpow_runtime::Runtime>::hashed_key().to_vec();
	let value = client.storage(block, &sp_core::storage::StorageKey(key)).ok()??;
	u64::decode(&mut &value.0[..]).ok().filter(|t| *t > 0)
}

/// The chain's launch time (`MlPow::LaunchTime`) in the state of `block`.
fn launch_time(client: &FullClient, block: <Block as sp_runtime::traits::Block>::Hash) -> u64 {
	use codec::Decode;
	use sc_client_api::StorageProvider;
	let key = [sp_io::hashing::twox_128(b"MlPow"), sp_io::hashing::twox_128(b"LaunchTime")].concat();
	let value = client.storage(block, &sp_core::storage::StorageKey(key)).ok().flatten();
	value.and_then(|v| u64::decode(&mut &v.0[..]).ok()).unwrap_or(0)
}

/// The environment variable naming a directory where compiled runtimes are
/// kept across node processes (see [`wasm_executor`]).
pub const WASM_CACHE_ENV: &str = "MLPOW_WASM_CACHE";

/// `sc-service`'s executor, with wasmtime's compilation cache on: a node
/// otherwise compiles the runtime's Wasm with cranelift at every start, the
/// bulk of a debug node's start-up (seconds on an idle machine, more than a
/// minute on a busy one). The cache is `$MLPOW_WASM_CACHE` when set (the
/// scripts and tests share one across every node they start), else
/// `wasm-cache` in the node's base path, so a restarted node skips the
/// compilation. Entries are keyed by the Wasm and the compiler's settings,
/// written atomically, and safe to share between processes.
fn wasm_executor(config: &Configuration) -> sc_executor::WasmExecutor<sp_io::SubstrateHostFunctions> {
	let default_heap = sc_executor::DEFAULT_HEAP_ALLOC_STRATEGY;
	let heap = config
		.executor
		.default_heap_pages
		.map_or(default_heap, |p| sc_executor::HeapAllocStrategy::Static { extra_pages: p as _ });
	let cache = std::env::var_os(WASM_CACHE_ENV)
		.filter(|dir| !dir.is_empty())
		.map(std::path::PathBuf::from)
		.unwrap_or_else(|| config.base_path.path().join("wasm-cache"));
	sc_executor::WasmExecutor::builder()
		.with_execution_method(config.executor.wasm_method)
		.with_onchain_heap_alloc_strategy(heap)
		.with_offchain_heap_alloc_strategy(heap)
		.with_max_runtime_instances(config.executor.max_runtime_instances)
		.with_runtime_cache_size(config.executor.runtime_cache_size)
		.with_cache_path(cache)
		.build()
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

	let executor = wasm_executor(config);
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

	// The queue checks each seal in its verifier, before `pow_import`
	// executes anything (see `mlpow_consensus::verifier`).
	let import_queue = sc_consensus::BasicQueue::new(
		SealVerifier::new(client.clone(), algorithm.clone()),
		Box::new(pow_import.clone()),
		None,
		&task_manager.spawn_essential_handle(),
		config.prometheus_registry(),
	);

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
	finality: mlpow_consensus::FinalityRules,
) -> Result<TaskManager, ServiceError> {
	// The test switches (debug builds only) never run on a chain that is
	// not a development chain, whatever the environment says: a switch's
	// variable set at all is refused, since its file is read again later.
	let switches = mlpow_consensus::test_switches::set_in_environment();
	if !switches.is_empty() && config.chain_spec.chain_type() != sc_service::ChainType::Development {
		return Err(ServiceError::Other(format!(
			"{} set: test switches of debug builds (accept any seal, a test clock, slow imports); they are \
			 refused on a chain that is not a development chain",
			switches.join(", ")
		)));
	}
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
	// The fork fetcher imports through the same queue as sync.
	let fork_imports = sc_consensus::ImportQueue::service(&import_queue);

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

	// No finality on a chain lighter than `depth` blocks at the genesis
	// difficulty, whatever the spec's minimum says (see `FinalityRules`).
	let genesis_work = algorithm
		.rules(client.info().genesis_hash)
		.map_err(|e| ServiceError::Other(format!("reading the genesis difficulty: {e}")))?
		.work();
	let finality = finality.with_launch_floor(genesis_work);

	// Mining and finality pause for sync only on verified progress, never on
	// what peers claim (see `mlpow_consensus::sync`).
	let (sync_oracle, sync_tracker) = mlpow_consensus::VerifiedSync::new(sync_service.clone(), client.clone(), {
		let client = client.clone();
		move |hash| parent_timestamp(&client, hash)
	});
	task_manager.spawn_essential_handle().spawn("mlpow-sync-tracker", None, sync_tracker);

	// Every node, mining or not, keeps to the same maximum reorg depth, once
	// in sync on a chain with the spec's minimum work.
	log::info!(
		"⛓  Blocks {} deep are final (--max-reorg-depth) once in sync, on a chain with at least {} work",
		finality.depth,
		finality.minimum_chain_work
	);
	// Chains peers claim that sync leaves alone (shorter than ours) are
	// fetched and weighed, and finality waits for them (see `fork_fetch`),
	// as for heavier forks that sync imports (`fork_watch`).
	let forks = Arc::new(crate::fork_fetch::Forks::default());
	let fetcher = crate::fork_fetch::ForkFetcher::new(
		client.clone(),
		network.clone(),
		sync_service.clone(),
		fork_imports,
		forks.clone(),
		config.chain_spec.fork_id(),
	);
	task_manager.spawn_handle().spawn("mlpow-fork-fetch", Some("networking"), fetcher.run());
	// Longer chains sync downloads itself are weighed as they import.
	task_manager.spawn_handle().spawn("mlpow-fork-watch", None, crate::fork_watch::run(client.clone(), forks.clone()));
	task_manager.spawn_essential_handle().spawn(
		"mlpow-finality",
		None,
		mlpow_consensus::finalize_below_depth(client.clone(), sync_oracle.clone(), finality, forks),
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
			sync_oracle,
			sync_service.clone(),
			author.map(|a| a.encode()),
			mining_inherent_data_providers(client.clone()),
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
