//! The mlpow mining worker: the mining loop, its backends (CUDA and CPU),
//! the node client and the benchmark. `main.rs` is the command line.
//!
//! - [`backend`]: what a backend provides ([`backend::Lane`]);
//! - [`cpu`], [`cuda`]: the two backends; [`kernels`]: the CUDA sources;
//!   [`freivalds`]: the host's check of a product computed on a device;
//!   [`host_parallel`]: host work of a GPU lane spread over the cores;
//!   [`chosen`]: a useful job's piece as a GPU lane holds it on the host;
//! - [`miner`]: one thread per lane, the job slot and the counters;
//! - [`jobs`]: useful mode, the job API whose int8 products are mined on;
//! - [`node`]: work from the node over JSON-RPC, seals back;
//! - [`session`]: the miner as a library: a node session in the background,
//!   and exact products that mine on its work in the caller's process;
//! - [`bench`]: mining without a node, next to a plain GEMM of the same shape;
//!   [`bench_useful`]: the same for useful mode's jobs.

pub mod backend;
pub mod bench;
pub mod bench_useful;
pub mod chosen;
pub mod cpu;
pub mod cuda;
pub mod freivalds;
pub mod host_parallel;
pub mod jobs;
pub mod kernels;
pub mod miner;
pub mod node;
pub mod pool;
pub mod session;

/// Keeps freed large blocks in the process (glibc). Useful mode allocates
/// and frees a piece's matrices (megabytes) many times a second; glibc's
/// defaults hand such blocks back to the kernel at once, so every piece
/// paid for fresh, zeroed pages: 13% of the CPU time in system calls and
/// page faults at 512 x 4096 x 512 on two threads (BENCHMARKS.md). The
/// worker calls it first thing; the job API's memory test too, so that it
/// measures the allocator as the worker runs it.
pub fn keep_freed_memory() {
	#[cfg(all(target_os = "linux", target_env = "gnu"))]
	// SAFETY: mallopt only sets allocator tunables; called before any
	// thread is started, as glibc asks.
	unsafe {
		libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
		libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
	}
}

/// One malloc arena for the whole process (glibc), with the job API on.
/// glibc gives threads their own arenas (up to 8 per core), and with
/// [`keep_freed_memory`] each keeps what it freed; a request's buffers are
/// allocated on whichever thread serves it, so over time every arena could
/// hold a budget's worth: 32 concurrent submissions and 12 result reads
/// under a 32 MiB budget (`tests/job_api_memory.rs`) peaked at +106 MiB of
/// RSS with the default arenas, +32 MiB with one. The lanes allocate a few
/// buffers per nonce, so sharing the arena's lock costs them nothing.
pub fn one_malloc_arena() {
	#[cfg(all(target_os = "linux", target_env = "gnu"))]
	// SAFETY: mallopt only sets an allocator tunable; threads that already
	// have an arena keep it, later ones share the existing ones.
	unsafe {
		libc::mallopt(libc::M_ARENA_MAX, 1);
	}
}

/// 1234567 -> "1.23 M".
pub fn si(x: f64) -> String {
	let (v, unit) = match x {
		x if x >= 1e12 => (x / 1e12, " T"),
		x if x >= 1e9 => (x / 1e9, " G"),
		x if x >= 1e6 => (x / 1e6, " M"),
		x if x >= 1e3 => (x / 1e3, " k"),
		x => (x, " "),
	};
	format!("{v:.2}{unit}")
}

/// Challenge parameters by name (`gpu`, `dev`) or as `M,K,N,T` (puzzle v1)
/// or `M,K,N,T,R` (puzzle v2), checked by the consensus rules.
pub fn parse_params(s: &str) -> Result<mlpow_primitives::ChallengeParams, String> {
	use mlpow_primitives::{ChallengeParams, PUZZLE_V1, PUZZLE_V2};
	let p = match s {
		"gpu" => ChallengeParams::GPU,
		"dev" => ChallengeParams::DEV,
		_ => {
			let v: Vec<u32> =
				s.split(',').map(|x| x.trim().parse::<u32>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
			match v[..] {
				[m, k, n, t] => ChallengeParams { version: PUZZLE_V1, m, k, n, t, r: 0, epoch_length: 1 },
				[m, k, n, t, r] => ChallengeParams { version: PUZZLE_V2, m, k, n, t, r, epoch_length: 1 },
				_ => return Err("expected gpu, dev, M,K,N,T or M,K,N,T,R".into()),
			}
		}
	};
	p.validate().map_err(|e| format!("{e:?}"))?;
	Ok(p)
}
