//! `mlpow-pool`: see the crate docs and `consensus/STRATUM.md`.

use clap::Parser;
use mlpow_pool::{jobs::Jobs, ledger, node, payout, server, stats};
use mlpow_primitives::U256;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch};

/// A mining pool for the mlpow chain, serving the mlpow Stratum protocol.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
	/// The pool's node (its WebSocket RPC, with the mining RPC: the node
	/// must run with `--author <the pool's account>`).
	#[arg(long, default_value = "ws://127.0.0.1:9944")]
	node: String,
	/// Where miners connect (`stratum+tcp://` this address).
	#[arg(long, default_value = "0.0.0.0:3333")]
	listen: SocketAddr,
	/// Where miners connect over TLS (`stratum+ssl://` this address), with
	/// `--tls-cert` and `--tls-key`. The same pool, ledger and limits.
	#[arg(long, requires_all = ["tls_cert", "tls_key"])]
	tls_listen: Option<SocketAddr>,
	/// The TLS certificate chain (PEM), for `--tls-listen`.
	#[arg(long, requires = "tls_listen")]
	tls_cert: Option<std::path::PathBuf>,
	/// The TLS private key (PEM), for `--tls-listen`.
	#[arg(long, requires = "tls_listen")]
	tls_key: Option<std::path::PathBuf>,
	/// The JSON status (`GET /status`) and Prometheus metrics (`GET /metrics`).
	#[arg(long, default_value = "127.0.0.1:3334")]
	status: SocketAddr,
	/// Vardiff's target seconds between one connection's shares.
	#[arg(long, default_value_t = 10.0)]
	share_interval: f64,
	/// A connection's first share difficulty.
	#[arg(long, default_value_t = 1000)]
	start_difficulty: u64,
	/// Width in bits of the nonce prefixes (8 to 32): at most 2^bits
	/// connections at once.
	#[arg(long, default_value_t = 16)]
	prefix_bits: u32,
	/// Refuse chosen-mode v2 shares (they carry up to 512 KiB of openings).
	#[arg(long)]
	no_chosen: bool,
	/// Connections from one address at once (a farm behind one address
	/// needs one per machine or GPU).
	#[arg(long, default_value_t = 256)]
	max_per_ip: usize,
	/// Where the ledger (shares, blocks, what each address is owed) lives.
	#[arg(long, default_value = "mlpow-pool-data")]
	data_dir: std::path::PathBuf,
	/// The pool's fee, percent of each block's reward.
	#[arg(long, default_value_t = 1.0)]
	fee_percent: f64,
	/// The pool account's secret (a secret URI: `//Name`, a mnemonic or a
	/// hex seed): pays what the ledger owes, as balance transfers. Its
	/// node must author as this account, and nothing else may sign with
	/// it. Without it, the ledger only counts.
	#[arg(long)]
	payout_key: Option<String>,
	/// Addresses owed less than this (in the chain's smallest unit) wait.
	#[arg(long, default_value_t = 1_000_000_000_000)]
	payout_threshold: u128,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
	env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
	let cli = Cli::parse();
	anyhow::ensure!(
		cli.share_interval.is_finite() && cli.share_interval > 0.0,
		"--share-interval must be a positive number of seconds"
	);
	anyhow::ensure!(mlpow_stratum::NoncePrefix::BITS.contains(&cli.prefix_bits), "--prefix-bits must be 8 to 32");
	let config = server::Config {
		share_interval: Duration::from_secs_f64(cli.share_interval),
		start_difficulty: U256::from(cli.start_difficulty.max(1)),
		prefix_bits: cli.prefix_bits,
		chosen: !cli.no_chosen,
		max_per_ip: cli.max_per_ip.max(1),
	};
	anyhow::ensure!((0.0..=100.0).contains(&cli.fee_percent), "--fee-percent must be 0 to 100");
	let ledger = Arc::new(
		ledger::Ledger::open(&cli.data_dir)
			.map_err(|e| anyhow::anyhow!("--data-dir {}: {e:#}", cli.data_dir.display()))?,
	);
	log::info!(
		"ledger in {}: {} shares on record, fee {}%",
		cli.data_dir.display(),
		ledger.shares_recorded(),
		cli.fee_percent
	);
	let payer = match &cli.payout_key {
		Some(secret) => {
			let payer = payout::Payer::new(secret, cli.payout_threshold)?;
			let account = sp_core::crypto::AccountId32::new(payer.account());
			log::info!("paying out from {account} at {} and above", cli.payout_threshold);
			Some(payer)
		}
		None => {
			log::info!("no --payout-key: the ledger counts what each address is owed, and pays nothing");
			None
		}
	};
	let accounts = Arc::new(node::Accounts {
		ledger: ledger.clone(),
		fee_ppm: (cli.fee_percent * 10_000.0).round() as u32,
		payer,
	});
	let stats = Arc::new(stats::Stats::default());
	let jobs = Arc::new(Jobs::default());
	let (current_tx, current) = watch::channel(None);
	let (candidates_tx, candidates) = tokio::sync::mpsc::channel(64);
	let tls = match (&cli.tls_listen, &cli.tls_cert, &cli.tls_key) {
		(Some(addr), Some(cert), Some(key)) => {
			let acceptor = mlpow_stratum::transport::server_tls(cert, key).map_err(anyhow::Error::msg)?;
			Some((TcpListener::bind(addr).await?, acceptor))
		}
		_ => None,
	};
	let miners = TcpListener::bind(cli.listen).await?;
	let status = TcpListener::bind(cli.status).await?;
	// Tests and scripts read the bound ports from these lines (port 0 picks one).
	log::info!("listening for miners on stratum+tcp://{}", miners.local_addr()?);
	if let Some((listener, _)) = &tls {
		log::info!("listening for miners on stratum+ssl://{}", listener.local_addr()?);
	}
	log::info!("status on http://{}/status and /metrics", status.local_addr()?);
	tokio::spawn(stats::serve(status, stats.clone(), ledger.clone()));
	tokio::spawn(node::run(cli.node.clone(), jobs.clone(), current_tx, candidates, stats.clone(), accounts));
	let pool = Arc::new(server::Pool::new(config, jobs, current, candidates_tx, stats, ledger));
	if let Some((listener, acceptor)) = tls {
		tokio::spawn(server::serve(pool.clone(), listener, Some(acceptor)));
	}
	tokio::select! {
		_ = server::serve(pool, miners, None) => {}
		_ = tokio::signal::ctrl_c() => log::info!("stopping"),
	}
	Ok(())
}
