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
