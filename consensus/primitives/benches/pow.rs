//! `cargo bench -p mlpow-primitives --bench pow`
//!
//! Prints, from one run: verification time at several parameter sets, the
//! exact CPU product's throughput for every kernel against the naive loop and
//! the best exact crate baseline (f64 `matrixmultiply`, exact here because
//! every partial sum is an integer below 2^31 < 2^53), and mining (product +
//! tile hashing) against the plain product of the same shape.
//! Ratios are measured side by side in this one process.

use mlpow_primitives::{
	kernel::Kernel,
	mine::{EpochWeights, Search},
	params::PUZZLE_VERSION,
	stream::MatrixStream,
	verify, ChallengeParams, Seal, U256,
};
use std::hint::black_box;

#[path = "support/timing.rs"]
mod timing;
use timing::{fmt_s, gmacs, min_batch, time};

fn params(m: u32, k: u32, n: u32, t: u32) -> ChallengeParams {
	ChallengeParams { version: PUZZLE_VERSION, m, k, n, t, r: 0, epoch_length: 100 }
}

fn main() {
	let min = min_batch();
	println!("kernel picked by gemm(): {:?}", Kernel::best());

	println!("\n## Verification (one seal = one tile), native");
	println!("| params (m,k,n,t) | t*t*k MACs | verify |");
	println!("|---|---|---|");
	let mut verify_times = Vec::new();
	for p in [ChallengeParams::DEV, ChallengeParams::GPU, params(8192, 65536, 8192, 16)] {
		let seal = Seal { nonce: 1, tile_i: p.tiles_m() - 1, tile_j: 0 }.to_bytes();
		let s = time(min, || {
			// difficulty 1: every tile wins, so the full path runs to Ok.
			black_box(verify(&p, &[1; 32], &[2; 32], U256::one(), black_box(&seal)).unwrap());
		});
		println!("| {},{},{},{} | {} | {} |", p.m, p.k, p.n, p.t, p.verify_macs(), fmt_s(s));
		verify_times.push((p, s));
	}

	println!("\n## Exact int8 product, C = A * Bt^T, one thread");
	println!("| shape (m,n,k) | kernel | time | GMAC/s | vs naive |");
	println!("|---|---|---|---|---|");
	for (m, n, k) in [(64usize, 64usize, 64usize), (256, 256, 4096)] {
		let macs = (m * n * k) as u64;
		let mut a = vec![0i8; m * k];
		let mut bt = vec![0i8; n * k];
		MatrixStream::activations(&[5; 32], 0, k as u32).read_rows(0, &mut a);
		MatrixStream::weights(&[6; 32], k as u32).read_rows(0, &mut bt);
		let mut reference = vec![0i32; m * n];
		Kernel::Naive.gemm(&a, &bt, m, n, k, &mut reference);
		let mut c = vec![0i32; m * n];
		let naive = time(min, || Kernel::Naive.gemm(black_box(&a), &bt, m, n, k, &mut c));
		for kern in Kernel::ALL.into_iter().filter(|k| k.available()) {
			let s = if kern == Kernel::Naive {
				naive
			} else {
				time(min, || kern.gemm(black_box(&a), &bt, m, n, k, &mut c))
			};
			assert_eq!(c, reference, "{kern:?} is not exact");
			println!("| {m},{n},{k} | {kern:?} | {} | {:.2} | {:.2}x |", fmt_s(s), gmacs(macs, s), naive / s);
		}
		// Best exact crate baseline: convert to f64 and use matrixmultiply's
		// dgemm (the conversion of A is part of the cost; Bt is per-epoch).
		let btf: Vec<f64> = bt.iter().map(|&v| v as f64).collect();
		let mut af = vec![0f64; m * k];
		let mut cf = vec![0f64; m * n];
		let s = time(min, || {
			for (d, &v) in af.iter_mut().zip(black_box(&a)) {
				*d = v as f64;
			}
			// SAFETY: pointers and strides describe the three live buffers:
			// A m x k row-major, B = Bt^T (k x n: row stride 1, column stride k),
			// C m x n row-major.
			unsafe {
				matrixmultiply::dgemm(
					m,
					k,
					n,
					1.0,
					af.as_ptr(),
					k as isize,
					1,
					btf.as_ptr(),
					1,
					k as isize,
					0.0,
					cf.as_mut_ptr(),
					n as isize,
					1,
				)
			}
		});
		let exact = cf.iter().zip(&reference).all(|(f, &i)| *f == i as f64);
		assert!(exact, "f64 baseline not exact");
		println!(
			"| {m},{n},{k} | matrixmultiply f64 (baseline) | {} | {:.2} | {:.2}x |",
			fmt_s(s),
			gmacs(macs, s),
			naive / s
		);
	}

	println!("\n## Mining one nonce (generate A, product, hash every tile) vs the plain product of the same shape, one thread");
	println!("| params (m,k,n,t) | plain product | mining a nonce | mining / product | tickets/s | MAC/s (mining) |");
	println!("|---|---|---|---|---|---|");
	for p in [ChallengeParams::DEV, params(256, 4096, 256, 16)] {
		let w = EpochWeights::generate(&p, &[7; 32]).unwrap();
		let mut search = Search::new(&w, &[8; 32], U256::MAX).unwrap();
		// The plain product: the same GEMM on an already generated A, no
		// generation, no hashing.
		let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
		let mut a = vec![0i8; m * k];
		MatrixStream::activations(&[9; 32], 0, p.k).read_rows(0, &mut a);
		let mut c = vec![0i32; m * n];
		let product = time(min, || Kernel::best().gemm(black_box(&a), w.bt(), m, n, k, &mut c));
		let mut nonce = 0u64;
		let mining = time(min, || {
			nonce += 1;
			black_box(search.try_nonce(black_box(nonce)));
		});
		let tickets = p.tickets_per_nonce() as f64 / mining;
		println!(
			"| {},{},{},{} | {} | {} | {:.3} | {:.0} | {:.2} G |",
			p.m,
			p.k,
			p.n,
			p.t,
			fmt_s(product),
			fmt_s(mining),
			product / mining,
			tickets,
			gmacs(p.macs_per_nonce(), mining)
		);
		if let Some((_, v)) = verify_times.iter().find(|(q, _)| q.t == p.t && q.k == p.k) {
			println!(
				"|  | verify one seal: {} | one ticket's share of mining: {} | verify / ticket = {:.2} |  |  |",
				fmt_s(*v),
				fmt_s(mining / p.tickets_per_nonce() as f64),
				v / (mining / p.tickets_per_nonce() as f64)
			);
		}
	}
}
