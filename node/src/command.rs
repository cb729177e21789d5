//! Dispatches the command line to the service or a subcommand.

use crate::{
	chain_spec,
	cli::{Cli, Subcommand},
	service,
};
use sc_cli::{ChainSpec, SubstrateCli};
use sc_service::PartialComponents;
use sp_core::crypto::{AccountId32, Ss58Codec};

impl SubstrateCli for Cli {
	fn impl_name() -> String {
		"MatMul PoW Node".into()
	}

	fn impl_version() -> String {
		env!("SUBSTRATE_CLI_IMPL_VERSION").into()
	}

	fn description() -> String {
		env!("CARGO_PKG_DESCRIPTION").into()
	}

	fn author() -> String {
		env!("CARGO_PKG_AUTHORS").into()
	}

	fn support_url() -> String {
		"https://example.invalid/mlpow/issues".into()
	}

	fn copyright_start_year() -> i32 {
		2026
	}

	fn executable_name() -> String {
		"mlpow-node".into()
	}

	fn load_spec(&self, id: &str) -> Result<Box<dyn ChainSpec>, String> {
		let spec = chain_spec::load(id)?;
		// Running a node of a built-in spec: its genesis from the cache of
		// raw specs, when the scripts set one (subcommands such as
		// `build-spec` must see the spec as it is written).
		match std::env::var_os(service::WASM_CACHE_ENV).filter(|d| !d.is_empty()) {
			Some(dir) if self.subcommand.is_none() && chain_spec::is_built_in(id) => {
				chain_spec::with_cached_genesis(spec, std::path::Path::new(&dir))
			}
			_ => Ok(spec),
		}
	}
}

/// The reward account: `--author`, or Alice on a development chain.
fn author(cli: &Cli, chain: &dyn ChainSpec) -> sc_cli::Result<Option<AccountId32>> {
	match &cli.run.author {
		Some(s) => AccountId32::from_ss58check(s)
			.map(Some)
			.map_err(|e| sc_cli::Error::Input(format!("--author {s}: not an SS58 address ({e:?})"))),
		None if chain.chain_type() == sc_service::ChainType::Development => {
			Ok(Some(sp_keyring::Sr25519Keyring::Alice.to_account_id()))
		}
		None => Ok(None),
	}
}

pub fn run() -> sc_cli::Result<()> {
	let cli = Cli::from_args();

	macro_rules! with_partial {
		($cmd:expr, |$config:ident, $parts:ident| $body:expr) => {{
			let runner = cli.create_runner($cmd)?;
			runner.async_run(|$config| {
				let $parts = service::new_partial(&$config)?;
				$body
			})
		}};
	}

	match &cli.subcommand {
		Some(Subcommand::Key(cmd)) => cmd.run(&cli),
		Some(Subcommand::BuildSpec(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.chain_spec, config.network))
		}
		Some(Subcommand::CheckBlock(cmd)) => with_partial!(cmd, |config, parts| {
			let PartialComponents { client, task_manager, import_queue, .. } = parts;
			Ok((cmd.run(client, import_queue), task_manager))
		}),
		Some(Subcommand::ExportBlocks(cmd)) => with_partial!(cmd, |config, parts| {
			let PartialComponents { client, task_manager, .. } = parts;
			Ok((cmd.run(client, config.database), task_manager))
		}),
		Some(Subcommand::ExportState(cmd)) => with_partial!(cmd, |config, parts| {
			let PartialComponents { client, task_manager, .. } = parts;
			Ok((cmd.run(client, config.chain_spec), task_manager))
		}),
		Some(Subcommand::ImportBlocks(cmd)) => with_partial!(cmd, |config, parts| {
			let PartialComponents { client, task_manager, import_queue, .. } = parts;
			Ok((cmd.run(client, import_queue), task_manager))
		}),
		Some(Subcommand::PurgeChain(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.database))
		}
		Some(Subcommand::Revert(cmd)) => with_partial!(cmd, |config, parts| {
			let PartialComponents { client, task_manager, backend, .. } = parts;
			Ok((cmd.run(client, backend, None), task_manager))
		}),
		Some(Subcommand::ChainInfo(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run::<mlpow_runtime::opaque::Block>(&config))
		}
		None => {
			let runner = cli.create_runner(&cli.run.base)?;
			let author = author(&cli, runner.config().chain_spec.as_ref())?;
			let finality = mlpow_consensus::FinalityRules {
				depth: cli.run.max_reorg_depth,
				minimum_chain_work: chain_spec::minimum_chain_work(runner.config().chain_spec.as_ref())?,
				settle: std::time::Duration::from_secs(cli.run.finality_settle_secs),
			};
			runner.run_node_until_exit(|config| async move {
				match config.network.network_backend {
					sc_network::config::NetworkBackendType::Libp2p => {
						service::new_full::<sc_network::NetworkWorker<_, _>>(config, author, finality)
					}
					sc_network::config::NetworkBackendType::Litep2p => {
						service::new_full::<sc_network::Litep2pNetworkBackend>(config, author, finality)
					}
				}
				.map_err(sc_cli::Error::Service)
			})
		}
	}
}
