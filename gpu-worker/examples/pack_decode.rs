//! How much of a decode workload mines, with and without packing: threads
//! that each stand for one request's decode loop call one registered weight
//! with a few rows at a time, as a server running many requests at once
//! calls a layer. Alone, every call is far below the half of a puzzle piece
//! a nonce needs, and mines nothing (Pearl's miners report GPUs that served
//! thousands of requests without mining once for the same reason); with a
//! packing window, calls that meet share a piece.
//!
//! The session mines on the CPU (one multiplier, as `mlpow.Miner`), on work
//! set by hand (no node), at a difficulty no ticket reaches, so only the
//! products and the mining count. For each window it prints the fraction
//! of the MACs that mined, the calls answered from a shared piece, and the
//! mean time a call took, all from one run.
//!
//!     cargo run --release -p mlpow-worker --example pack_decode -- [THREADS] [ROWS] [STEPS]

use mlpow_primitives::{ChallengeParams, U256};
use mlpow_worker::{
	backend::Job,
	cpu,
	session::{Options, Session, Weight},
};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
	let args: Vec<String> = std::env::args().collect();
	let arg = |i: usize, default: usize| args.get(i).map_or(Ok(default), |s| s.parse());
	let (threads, rows, steps) = (arg(1, 32)?, arg(2, 4)?, arg(3, 20)?);
	// A piece of 256 x 1024 x 256: a small model layer's width.
	let params = ChallengeParams { m: 256, k: 1024, n: 256, t: 16, r: 64, ..ChallengeParams::DEV_V2 };
	params.validate().map_err(|e| anyhow::anyhow!("{e:?}"))?;
	let (depth, cols) = (params.k as usize - 2, params.n as usize);
	println!(
		"{threads} threads x {steps} steps of {rows} rows against a {depth} x {cols} weight, pieces of {} x {} x {}",
		params.m, params.k, params.n
	);
	println!("| pack window | MACs mined | calls packed | nonces | mean time a call |");
	println!("|---|---|---|---|---|");
	for window_ms in [0u64, 2, 20] {
		let multiplier = cpu::lanes(1).remove(0);
		let options = Options { pack_window: Duration::from_millis(window_ms), ..Options::new(multiplier) };
		let (session, _found) = Session::offline(options);
		session.miner().set_job(Some(Job {
			version: 1,
			pre_hash: [3; 32],
			number: 1,
			difficulty: U256::MAX,
			params,
			weights_seed: [4; 32],
		}));
		let weight = Weight::new(depth, cols, values(depth * cols, 1))?;
		let started = Instant::now();
		let busy: Duration = std::thread::scope(|s| {
			let calls: Vec<_> = (0..threads)
				.map(|t| {
					let (session, weight) = (&session, &weight);
					s.spawn(move || {
						let a = values(rows * depth, t as u64 + 2);
						let mut spent = Duration::ZERO;
						for _ in 0..steps {
							let call = Instant::now();
							std::hint::black_box(session.matmul_by(&a, rows, weight).expect("a product"));
							spent += call.elapsed();
						}
						spent
					})
				})
				.collect();
			calls.into_iter().map(|c| c.join().expect("a thread")).sum()
		});
		let stats = session.stats();
		println!(
			"| {window_ms} ms | {:.0}% | {} of {} | {} | {:.2} ms (run {:.1} s) |",
			100.0 * stats.macs_mined as f64 / stats.macs as f64,
			stats.calls_packed,
			stats.calls,
			stats.nonces,
			busy.as_secs_f64() * 1e3 / stats.calls as f64,
			started.elapsed().as_secs_f64(),
		);
	}
	Ok(())
}

/// `len` values in -64..=63 from `seed`.
fn values(len: usize, seed: u64) -> Vec<i8> {
	let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
	(0..len)
		.map(|_| {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			((x >> 40) % 128) as i8 - 64
		})
		.collect()
}
