//! `mlpow-worker`: mines MatMul proof-of-work blocks for an mlpow node.
//!
//! It subscribes to the node's work over WebSocket JSON-RPC (or a pool's,
//! over the mlpow Stratum protocol with `--pool`), searches nonces on every
//! lane of its backend (GPUs or CPU threads), submits winning seals (or
//! shares), and prints its hashrate. `--benchmark` mines without a node;
//! `--list-devices` says what it could mine on.

use clap::Parser;
use mlpow_primitives::{ChallengeParams, U256};
use mlpow_worker::{backend::Lane, bench, bench_useful, cpu, cuda, jobs, miner, node, session, si};
use std::{
	sync::{atomic::Ordering, Arc},
	time::{Duration, Instant},
};

#[derive(Debug, Parser)]
#[command(version, about = "Mines MatMul proof-of-work blocks for an mlpow node.")]
struct Args {
	/// The node's WebSocket RPC endpoint: plain `ws://`, to a node on this
	/// machine or a private network. The mining methods are unsafe RPC
	/// (they take seals and push work), so a node never serves them on a
	/// public interface; reach a remote node through an SSH tunnel or a VPN.
	#[arg(long, default_value = "ws://127.0.0.1:9944", value_parser = parse_node_url)]
	node: String,

	/// Mine for a pool instead of a node (`stratum+tcp://host:port`, or
	/// `stratum+ssl://host:port` for TLS); repeat for fallback pools, tried
	/// in order. Needs `--user`.
	#[arg(long, value_parser = mlpow_worker::pool::parse_pool_url, requires = "user")]
	pool: Vec<mlpow_stratum::transport::PoolUrl>,

	/// For `stratum+ssl://` pools: a PEM file of certificates to trust
	/// besides the system's (a pool's own CA or self-signed certificate).
	#[arg(long, requires = "pool")]
	pool_ca: Option<std::path::PathBuf>,

	/// The pool account: `ADDRESS.WORKER` (an SS58 payout address and a
	/// name for this machine).
	#[arg(long, requires = "pool")]
	user: Option<String>,

	/// Mining backend. `auto`: CUDA when a usable GPU (and NVRTC and
	/// cuBLASLt) are there, else the CPU; the log says which and why.
	#[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
	backend: BackendChoice,

	/// CUDA devices to mine on, by ordinal (`0,1`); one lane (stream and
	/// nonce range) each. Default: every supported device.
	#[arg(long, value_delimiter = ',')]
	devices: Option<Vec<usize>>,

	/// CPU threads for the CPU backend (default: every core).
	#[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
	threads: Option<u16>,

	/// Lists the CUDA devices (and why any cannot mine) and the CPU, then exits.
	#[arg(long)]
	list_devices: bool,

	/// Mines a synthetic job without a node, then times the plain int8 GEMM
	/// of the same shape on the same lanes, and prints both and their ratio.
	#[arg(long)]
	benchmark: bool,

	/// Benchmark parameters: `gpu` (8192,4096,8192,16), `dev` (64,64,64,16),
	/// `M,K,N,T` (puzzle v1) or `M,K,N,T,R` (puzzle v2, rank R). Default:
	/// `gpu` on CUDA, `512,1024,512,16` on the CPU.
	#[arg(long, value_parser = parse_params)]
	bench_params: Option<ChallengeParams>,

	/// Benchmarks useful mode instead: jobs of `ROWS,DEPTH,COLS` through the
	/// job queue, mined at `--bench-params` (puzzle v2; default
	/// 512,4096,512,16,64), against the plain GEMM of the job's shape.
	#[arg(long, value_name = "ROWS,DEPTH,COLS", value_parser = parse_shape)]
	bench_job: Option<[usize; 3]>,

	/// Benchmark seconds, for mining and again for the GEMM.
	#[arg(long, default_value_t = 10.0)]
	bench_secs: f64,

	/// Benchmark difficulty (default: a winner every 64 nonces on average).
	#[arg(long)]
	bench_difficulty: Option<u128>,

	/// Serves the job API (useful mode) on this loopback address, e.g.
	/// `127.0.0.1:9955`: JSON-RPC over HTTP and WebSocket, to submit int8
	/// matrix products that the worker computes exactly while it mines on
	/// them (puzzle v2). Methods: gpu-worker/README.md, "Useful mode".
	#[arg(long, value_name = "ADDR")]
	jobs_api: Option<std::net::SocketAddr>,

	/// The one directory whose `.npy` files the job API reads (inputs) and
	/// writes (results); without it, jobs carry their data inline only.
	#[arg(long, value_name = "DIR", requires = "jobs_api")]
	jobs_files_dir: Option<std::path::PathBuf>,

	/// Memory the job API's jobs (inputs and products) and the requests in
	/// progress (bodies, decoded copies, answers) may hold at once, MiB.
	#[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
	jobs_memory_mib: u64,

	/// Seconds between hashrate reports.
	#[arg(long, default_value_t = 5)]
	report_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BackendChoice {
	Auto,
	Cuda,
	Cpu,
}

fn parse_params(s: &str) -> Result<ChallengeParams, String> {
	mlpow_worker::parse_params(s)
}

fn parse_shape(s: &str) -> Result<[usize; 3], String> {
	let v: Vec<usize> =
		s.split(',').map(|x| x.trim().parse::<usize>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
	match v[..] {
		[rows, depth, cols] if rows > 0 && depth > 0 && cols > 0 => Ok([rows, depth, cols]),
		_ => Err("expected ROWS,DEPTH,COLS, each at least 1".into()),
	}
}

fn main() -> std::process::ExitCode {
	mlpow_worker::keep_freed_memory();
	env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,jsonrpsee_server=warn"))
		.format_target(false)
		.init();
	let args = Args::parse();
	if args.jobs_api.is_some() {
		// Before any thread is started (see the function).
		mlpow_worker::one_malloc_arena();
	}
	match run(args) {
		Ok(()) => std::process::ExitCode::SUCCESS,
		Err(e) => {
			// The whole cause chain on one line, without a backtrace: these
			// are a user's problems (no driver, bad parameters), not bugs.
			eprintln!("error: {e:#}");
			std::process::ExitCode::FAILURE
		}
	}
}

fn run(args: Args) -> anyhow::Result<()> {
	if args.list_devices {
		list_devices();
		return Ok(());
	}
	let (backend, lanes) = open_lanes(&args)?;
	if let (true, Some(shape)) = (args.benchmark, args.bench_job) {
		let params = args.bench_params.unwrap_or(ChallengeParams {
			version: mlpow_primitives::PUZZLE_V2,
			m: 512,
			k: 4096,
			n: 512,
			t: 16,
			r: 64,
			epoch_length: 1,
		});
		let config = bench_useful::UsefulConfig { params, shape, seconds: args.bench_secs.max(0.1) };
		println!(
			"benchmark: jobs of {} x {} by {} x {}, mined at m={} k={} n={} t={} r={}, {} s each",
			shape[0], shape[1], shape[1], shape[2], params.m, params.k, params.n, params.t, params.r, config.seconds
		);
		let multiplier = match backend {
			BackendChoice::Cuda => None,
			_ => Some(cpu::lanes(1).remove(0)),
		};
		println!("{}", bench_useful::run(lanes, &config)?);
		// The in-process path on the CPU (the CUDA one comes with the GPU
		// path of the library).
		if let Some(multiplier) = multiplier {
			println!("{}", bench_useful::in_process(multiplier, &config)?);
		}
		return Ok(());
	}
	if args.benchmark {
		let params = args.bench_params.unwrap_or(match backend {
			BackendChoice::Cuda => ChallengeParams::GPU,
			_ => ChallengeParams { version: 1, m: 512, k: 1024, n: 512, t: 16, r: 0, epoch_length: 1 },
		});
		let config = bench::BenchConfig {
			params,
			difficulty: args.bench_difficulty.map(U256::from),
			seconds: args.bench_secs.max(0.1),
		};
		println!(
			"benchmark: m={} k={} n={} t={} ({} MAC/nonce, {} tickets/nonce), {} s each",
			params.m,
			params.k,
			params.n,
			params.t,
			params.macs_per_nonce(),
			params.tickets_per_nonce(),
			config.seconds
		);
		println!("{}", bench::run(lanes, &config)?);
		return Ok(());
	}
	mine(&args, lanes)
}

/// The lanes of the chosen backend. `auto` falls back to the CPU, saying
/// why; an explicit `cuda` that cannot start is an error.
fn open_lanes(args: &Args) -> anyhow::Result<(BackendChoice, Vec<Box<dyn Lane>>)> {
	let threads = args
		.threads
		.map(usize::from)
		.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
	match args.backend {
		BackendChoice::Cpu => Ok((BackendChoice::Cpu, cpu::lanes(threads))),
		BackendChoice::Cuda => {
			let lanes = cuda::lanes(args.devices.as_deref()).map_err(|e| anyhow::anyhow!("CUDA backend: {e:#}"))?;
			log::info!("backend cuda: {} GPU lane(s)", lanes.len());
			Ok((BackendChoice::Cuda, lanes))
		}
		BackendChoice::Auto => match cuda::lanes(args.devices.as_deref()) {
			Ok(lanes) => {
				log::info!("backend auto: CUDA, {} GPU lane(s)", lanes.len());
				Ok((BackendChoice::Cuda, lanes))
			}
			Err(e) => {
				log::info!("backend auto: the CPU, because CUDA is unavailable: {e:#}");
				Ok((BackendChoice::Cpu, cpu::lanes(threads)))
			}
		},
	}
}

fn list_devices() {
	match cuda::devices() {
		Ok(devices) => {
			for d in devices {
				match d.unsupported_reason() {
					None => println!("{d}: can mine"),
					Some(why) => println!("{d}: cannot mine: {why}"),
				}
			}
		}
		Err(e) => println!("cuda: none: {e:#}"),
	}
	println!(
		"cpu: {} thread(s), kernel {:?}",
		std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
		mlpow_primitives::kernel::Kernel::best()
	);
}

/// `ws://host:port`; `wss://` is refused with the reason (no TLS in the
/// worker: the trust boundary is the machine or private network it shares
/// with its node, see the `--node` help and SECURITY.md).
fn parse_node_url(url: &str) -> Result<String, String> {
	if url.starts_with("wss://") {
		return Err("wss:// is not supported: the worker talks plain ws:// to a node on this machine or a private \
		            network; tunnel to a remote node (ssh -L 9944:127.0.0.1:9944 host) and use ws://127.0.0.1:9944"
			.into());
	}
	if !url.starts_with("ws://") {
		return Err(format!("{url:?} is not a ws:// URL (for example ws://127.0.0.1:9944)"));
	}
	Ok(url.to_string())
}

fn mine(args: &Args, lanes: Vec<Box<dyn Lane>>) -> anyhow::Result<()> {
	if args.jobs_api.is_some() && !lanes.iter().any(|l| l.can_multiply()) {
		anyhow::bail!(
			"--jobs-api: {} does not run useful jobs",
			lanes.first().map_or("this backend".into(), |l| l.name())
		);
	}
	let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
	let options = session::Options::worker(lanes, args.jobs_memory_mib << 20);
	let source = match &args.user {
		Some(user) => session::Source::Pool {
			pools: mlpow_worker::pool::Pools::new(args.pool.clone(), args.pool_ca.as_deref())
				.map_err(anyhow::Error::msg)?,
			user: user.clone(),
		},
		None => session::Source::Node(args.node.clone()),
	};
	let session = session::Session::start_on(runtime.handle(), source, options);
	let (miner, outcomes) = (session.miner().clone(), session.outcomes().clone());
	let served = runtime.block_on(async {
		let _api = match args.jobs_api {
			Some(addr) => {
				let files_dir = match &args.jobs_files_dir {
					Some(dir) => Some(
						dir.canonicalize().map_err(|e| anyhow::anyhow!("--jobs-files-dir {}: {e}", dir.display()))?,
					),
					None => None,
				};
				let api = jobs::api::Api::new(miner.jobs().clone(), files_dir);
				let (local, handle) = jobs::api::serve(addr, api).await?;
				log::info!("job API on http://{local}; {} MiB for jobs and requests", args.jobs_memory_mib);
				Some(handle)
			}
			None => None,
		};
		tokio::spawn(report(miner, outcomes, Duration::from_secs(args.report_secs.max(1))));
		let signal = shutdown_signal().await;
		log::info!("{signal}; stopping");
		anyhow::Ok(())
	});
	// The winners found so far go out (and are answered) while the runtime
	// still drives the node task; then the runtime and the lanes stop.
	session.stop();
	runtime.shutdown_timeout(Duration::from_secs(1));
	served
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
