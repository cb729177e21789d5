//! `mlpow-worker`: mines MatMul proof-of-work blocks for an mlpow node.
//!
//! It subscribes to the node's work over WebSocket JSON-RPC, searches nonces
//! on every lane of its backend, submits winning seals, and prints its
//! hashrate. See `mlpow-work` for the protocol and `backend` for how GPU
//! backends plug in.

mod backend;
mod cpu;
mod miner;
mod node;

use clap::Parser;
use std::{
	sync::{atomic::Ordering, Arc},
	time::{Duration, Instant},
};

#[derive(Debug, Parser)]
#[command(version, about = "Mines MatMul proof-of-work blocks for an mlpow node.")]
struct Args {
	/// The node's WebSocket RPC endpoint.
	#[arg(long, default_value = "ws://127.0.0.1:9944")]
	node: String,

	/// Mining backend. `auto` picks the best available (today: the CPU;
	/// the CUDA backend is on its way).
	#[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
	backend: BackendChoice,

	/// CPU threads (default: every core).
	#[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
	threads: Option<u16>,

	/// Seconds between hashrate reports.
	#[arg(long, default_value_t = 5)]
	report_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BackendChoice {
	Auto,
	Cpu,
}

fn main() -> anyhow::Result<()> {
	env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).format_target(false).init();
	let args = Args::parse();
	let threads = args
		.threads
		.map(usize::from)
		.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
	if args.backend == BackendChoice::Auto {
		log::info!("backend auto: using the CPU (no GPU backend is built into this worker yet)");
	}
	let lanes = cpu::lanes(threads);

	let (found_tx, found_rx) = tokio::sync::mpsc::unbounded_channel();
	let miner = Arc::new(miner::Miner::start(lanes, found_tx));
	let outcomes = Arc::new(node::Outcomes::default());

	let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
	runtime.block_on(async {
		tokio::spawn(report(miner.clone(), outcomes.clone(), Duration::from_secs(args.report_secs.max(1))));
		tokio::select! {
			_ = node::run(args.node.clone(), miner.clone(), found_rx, outcomes) => {},
			signal = shutdown_signal() => log::info!("{signal}; stopping"),
		}
	});
	runtime.shutdown_timeout(Duration::from_secs(1));
	if let Ok(miner) = Arc::try_unwrap(miner) {
		miner.stop();
	}
	Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill` and
/// service managers send), naming the signal.
async fn shutdown_signal() -> &'static str {
	#[cfg(unix)]
	{
		use tokio::signal::unix::{signal, SignalKind};
		match signal(SignalKind::terminate()) {
			Ok(mut term) => tokio::select! {
				_ = tokio::signal::ctrl_c() => "interrupted",
				_ = term.recv() => "terminated",
			},
			Err(_) => {
				let _ = tokio::signal::ctrl_c().await;
				"interrupted"
			}
		}
	}
	#[cfg(not(unix))]
	{
		let _ = tokio::signal::ctrl_c().await;
		"interrupted"
	}
}

/// Prints tickets/s and MAC/s every `every`.
async fn report(miner: Arc<miner::Miner>, outcomes: Arc<node::Outcomes>, every: Duration) {
	let mut last = (Instant::now(), 0u64, 0u64);
	let mut tick = tokio::time::interval(every);
	tick.tick().await;
	loop {
		tick.tick().await;
		let c = miner.counters();
		let (tickets, macs) = (c.tickets.load(Ordering::Relaxed), c.macs.load(Ordering::Relaxed));
		let secs = last.0.elapsed().as_secs_f64().max(1e-9);
		let (tps, mps) = ((tickets - last.1) as f64 / secs, (macs - last.2) as f64 / secs);
		last = (Instant::now(), tickets, macs);
		log::info!(
			"⛏  {}tickets/s, {}MAC/s | work {} | found {} accepted {} stale {} rejected {}",
			si(tps),
			si(mps),
			miner.current_version().map_or("none".to_string(), |v| format!("#{v}")),
			c.found.load(Ordering::Relaxed),
			outcomes.accepted.load(Ordering::Relaxed),
			outcomes.stale.load(Ordering::Relaxed),
			outcomes.rejected.load(Ordering::Relaxed),
		);
	}
}

/// 1234567 -> "1.23 M".
fn si(x: f64) -> String {
	let (v, unit) = match x {
		x if x >= 1e12 => (x / 1e12, " T"),
		x if x >= 1e9 => (x / 1e9, " G"),
		x if x >= 1e6 => (x / 1e6, " M"),
		x if x >= 1e3 => (x / 1e3, " k"),
		x => (x, " "),
	};
	format!("{v:.2}{unit}")
}
