//! `cargo bench -p mlpow-primitives --bench v2`
//!
//! Puzzle v2 on the CPU, one thread, every ratio measured side by side in
//! this one process:
//! - mining one nonce (noise, noisy copies, the fused product + transcript,
//!   every tile's ticket; then also removing the noise) against the plain
//!   exact product of the same shape (the faster of the v1 kernel and the v2
//!   kernel without a transcript), timed in interleaved rounds, the ratios
//!   taken round by round;
//! - verifying one v2 seal (seeded, and chosen with its openings) against
//!   verifying one v1 seal of the same `t` and `k`.

use mlpow_primitives::{
	kernel::Kernel,
	v2::{
		fused::{Fused, Scratch, Shape},
		noise, Job, Miner,
	},
	verify, ChallengeParams, Seal, U256,
};
use std::hint::black_box;

#[path = "support/timing.rs"]
mod timing;
use timing::{fmt_s, gmacs, interleaved, median, median_ratio, min_batch, time};

fn main() {
	let min = min_batch();
	println!("plain-product kernel: {:?}; fused v2 kernel: {:?}", Kernel::best(), Fused::best());

	println!("\n## v2 mining one nonce vs the plain product of the same shape, one thread");
	println!("| params (m,k,n,t,r) | plain: v1 kernel | plain: v2 kernel, one chunk | fused product + transcript | mining a nonce | removing the noise | mining / plain | (mining + removing) / plain |");
	println!("|---|---|---|---|---|---|---|---|");
	let sets = [
		ChallengeParams { m: 256, n: 256, k: 4096, r: 64, ..ChallengeParams::DEV_V2 },
		ChallengeParams { m: 512, n: 512, k: 4096, r: 64, ..ChallengeParams::DEV_V2 },
		ChallengeParams { m: 1024, n: 1024, k: 4096, r: 64, ..ChallengeParams::DEV_V2 },
		ChallengeParams { m: 2048, n: 2048, k: 4096, r: 64, ..ChallengeParams::DEV_V2 },
	];
	for p in sets {
		let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
		let mut a = vec![0i8; m * k];
		let mut bt = vec![0i8; n * k];
		noise::seeded_a(&[1; 32], p.k, 0, &mut a);
		noise::seeded_bt(&[2; 32], p.k, 0, &mut bt);
		let mut c = vec![0i32; m * n];
		let mut c2 = vec![0i32; m * n];
		let mut c3 = vec![0i32; m * n];
		let mut states = vec![[0u32; 16]; p.tickets_per_nonce() as usize];
		let mut states2 = states.clone();
		let (mut s1, mut s2) = (Scratch::default(), Scratch::default());
		let job = Job::chosen(&p, a.clone(), bt.clone()).unwrap();
		let mut miner = Miner::new(&job, &[3; 32], U256::MAX).unwrap();
		miner.try_nonce(0);
		let mut denoiser = Miner::new(&job, &[4; 32], U256::MAX).unwrap();
		denoiser.try_nonce(0);
		// The plain product: the faster of the v1 kernel and the v2 kernel
		// with a single chunk (its transcript reduced to one fold at the end).
		let one_chunk = Shape { r: k, ..Shape::of(&p) };
		let mut nonce = 0u64;
		let times = interleaved(
			min,
			7,
			&mut [
				&mut || Kernel::best().gemm(black_box(&a), &bt, m, n, k, &mut c),
				&mut || Fused::best().run_with(&mut s1, black_box(&a), &bt, one_chunk, &mut c2, &mut states),
				&mut || Fused::best().run_with(&mut s2, black_box(&a), &bt, Shape::of(&p), &mut c3, &mut states2),
				&mut || {
					nonce += 1;
					black_box(miner.try_nonce(black_box(nonce)));
				},
				&mut || {
					black_box(denoiser.denoised());
				},
			],
		);
		let [v1_kernel, v2_kernel, fused, mining, denoise] = [0, 1, 2, 3, 4].map(|i| median(&times[i]));
		let plain: Vec<f64> = times[0].iter().zip(&times[1]).map(|(x, y)| x.min(*y)).collect();
		let with_denoise: Vec<f64> = times[3].iter().zip(&times[4]).map(|(x, y)| x + y).collect();
		println!(
			"| {},{},{},{},{} | {} ({:.1} GMAC/s) | {} ({:.1} GMAC/s) | {} | {} | {} | {:.3} | {:.3} |",
			p.m,
			p.k,
			p.n,
			p.t,
			p.r,
			fmt_s(v1_kernel),
			gmacs(p.macs_per_nonce(), v1_kernel),
			fmt_s(v2_kernel),
			gmacs(p.macs_per_nonce(), v2_kernel),
			fmt_s(fused),
			fmt_s(mining),
			fmt_s(denoise),
			median_ratio(&plain, &times[3]),
			median_ratio(&plain, &with_denoise),
		);
	}

	println!("\n## Verifying one seal, native: v2 against v1 at the same t and k");
	println!("| params (m,k,n,t) | v1 | v2 seeded | v2 chosen (openings) | v2 seeded / v1 | v2 chosen / v1 |");
	println!("|---|---|---|---|---|---|");
	for (v1, v2) in [
		(ChallengeParams::GPU, ChallengeParams::GPU_V2),
		// k = 16384 needs r >= 128 (params: k <= r * r).
		(
			ChallengeParams { k: 16384, ..ChallengeParams::GPU },
			ChallengeParams { k: 16384, r: 128, ..ChallengeParams::GPU_V2 },
		),
	] {
		let (ws, pre) = ([1u8; 32], [2u8; 32]);
		let seal1 = Seal { nonce: 1, tile_i: 3, tile_j: 5 }.to_bytes();
		let t1 = time(min, || {
			black_box(verify(&v1, &ws, &pre, U256::one(), black_box(&seal1)).unwrap());
		});
		let seeded = mlpow_primitives::v2::seal::encode_seeded(&Seal { nonce: 1, tile_i: 3, tile_j: 5 });
		let t2 = time(min, || {
			black_box(verify(&v2, &ws, &pre, U256::one(), black_box(&seeded)).unwrap());
		});
		// A chosen seal needs the whole job's commitments; build a narrow job
		// (the same t and k, fewer rows: only the path length differs).
		let narrow = ChallengeParams { m: 1024, n: 1024, ..v2 };
		let (m, n, k) = (narrow.m as usize, narrow.n as usize, narrow.k as usize);
		let (mut a, mut bt) = (vec![0i8; m * k], vec![0i8; n * k]);
		noise::seeded_a(&[4; 32], narrow.k, 0, &mut a);
		noise::seeded_bt(&[5; 32], narrow.k, 0, &mut bt);
		let job = Job::chosen(&narrow, a, bt).unwrap();
		let chosen = job.seal(&Seal { nonce: 1, tile_i: 3, tile_j: 5 });
		let t3 = time(min, || {
			black_box(verify(&narrow, &ws, &pre, U256::one(), black_box(&chosen)).unwrap());
		});
		println!(
			"| {},{},{},{} | {} | {} | {} | {:.2} | {:.2} |",
			v1.m,
			v1.k,
			v1.n,
			v1.t,
			fmt_s(t1),
			fmt_s(t2),
			fmt_s(t3),
			t2 / t1,
			t3 / t1
		);
	}
}
