//! Puzzle v2 end to end in the primitives: the reference miner's winners
//! verify, the product comes back exact, lying openings are refused, and
//! adversarial inputs still pay for every chunk of the transcript.

use mlpow_primitives::{
	kernel,
	v2::{
		denoise::AddInto,
		fused::Fused,
		noise::{self, Selections},
		transcript::tile_transcript,
		Job, Miner, Mode,
	},
	verify, ChallengeParams, Hash32, VerifyError, U256,
};

const PRE: Hash32 = [0x11; 32];
const WS: Hash32 = [0x22; 32];

/// A deterministic matrix in the 7-bit input range.
fn matrix(len: usize, seed: u64) -> Vec<i8> {
	let mut s = seed;
	(0..len)
		.map(|_| {
			s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
			noise::to_7bit((s >> 56) as u8)
		})
		.collect()
}

fn chosen(p: &ChallengeParams, seed: u64) -> Job {
	let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
	Job::chosen(p, matrix(m * k, seed), matrix(n * k, seed + 1)).unwrap()
}

#[test]
fn every_tile_the_miner_hashes_verifies_to_the_same_ticket() {
	let p = ChallengeParams::DEV_V2;
	let seeded = Job::seeded(&p, &PRE, &WS).unwrap();
	let mine = chosen(&p, 7);
	for job in [&seeded, &mine] {
		// Difficulty 1: every ticket wins, so every tile's seal is checked.
		let mut miner = Miner::new(job, &PRE, U256::one()).unwrap();
		for nonce in [0, 1, u64::MAX] {
			let wins = miner.try_nonce(nonce);
			assert_eq!(wins.len() as u64, p.tickets_per_nonce());
			for w in wins {
				let want = if job.mode() == Mode::Seeded { 17 } else { 17 + 64 + 2 * 16 * 64 + 4 * 32 };
				assert_eq!(w.seal.len(), want);
				assert_eq!(verify(&p, &WS, &PRE, U256::one(), &w.seal), Ok(w.verified));
			}
		}
	}
}

#[test]
fn winners_at_a_real_difficulty_verify_and_losers_do_not() {
	let p = ChallengeParams::DEV_V2;
	let job = chosen(&p, 3);
	let d = U256::from(20);
	let mut miner = Miner::new(&job, &PRE, d).unwrap();
	let win = miner.search(0..200).expect("a winner in 200 nonces at 1/20 per ticket");
	assert_eq!(verify(&p, &WS, &PRE, d, &win.seal), Ok(win.verified));
	// The same seal under another header, or at a much higher difficulty, loses.
	assert_eq!(verify(&p, &WS, &[0x12; 32], U256::MAX, &win.seal), Err(VerifyError::AboveTarget));
}

#[test]
fn the_miner_keeps_the_exact_product_whatever_the_nonce() {
	// The last set holds the most negative values throughout, at the most
	// chunks the rules allow (`k <= r*r`: 128 chunks of 128).
	let sets = [
		(ChallengeParams::DEV_V2, false),
		(ChallengeParams { m: 32, n: 96, k: 256, r: 64, ..ChallengeParams::DEV_V2 }, false),
		(ChallengeParams { m: 16, n: 32, k: 128 * 128, r: 128, ..ChallengeParams::DEV_V2 }, true),
	];
	for (p, extreme) in sets {
		let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
		let job = if extreme { Job::chosen(&p, vec![-64; m * k], vec![-64; n * k]).unwrap() } else { chosen(&p, 11) };
		let mut want = vec![0; m * n];
		kernel::gemm_naive(job.a(), job.bt(), m, n, k, &mut want);
		// Every fused kernel this CPU runs, each with its own noise removal.
		for kern in Fused::ALL.into_iter().filter(|k| k.available()) {
			let mut miner = Miner::new(&job, &PRE, U256::MAX).unwrap().with_kernel(kern);
			assert_eq!(miner.denoised(), None);
			let mut noisy = vec![];
			for nonce in 0..3 {
				miner.try_nonce(nonce);
				assert_eq!(miner.denoised().unwrap(), want, "{p:?} {kern:?} nonce {nonce}");
				noisy.push(miner.noisy_product().to_vec());
				// Added into a block (all rows but the last, all columns but
				// the first 15) of a wider matrix, at an offset: the block
				// gains the product's, the rest is untouched.
				let (stride, at, rows, cols) = (n + 7, 3, m - 1, n - 15);
				let before: Vec<i32> = (0..(m + 1) * stride).map(|v| v as i32 - 1000).collect();
				let mut out = before.clone();
				let into = AddInto { out: &mut out[at..], stride, rows, cols };
				assert_eq!(miner.add_denoised(into), Some(()));
				for (i, (&got, &was)) in out.iter().zip(&before).enumerate() {
					let (x, y) = (i.wrapping_sub(at) / stride, i.wrapping_sub(at) % stride);
					let inside = i >= at && x < rows && y < cols;
					assert_eq!(got, if inside { was + want[x * n + y] } else { was }, "{p:?} {kern:?} element {i}");
				}
			}
			// The noise is fresh per nonce: the products that carry the tickets differ.
			assert!(noisy[0] != noisy[1] && noisy[1] != noisy[2]);
			assert!(noisy.iter().all(|c| *c != want));
		}
	}
}

#[test]
fn exact_products_of_different_jobs_in_turns_are_each_their_own() {
	// The exact product is written into fresh, uninitialised memory: one
	// element left out would show another job's value (freed just before),
	// where a miner of one job would see its own product again.
	let p = ChallengeParams { m: 32, n: 48, k: 256, r: 64, ..ChallengeParams::DEV_V2 };
	let jobs = [chosen(&p, 21), chosen(&p, 22)];
	let want: Vec<Vec<i32>> = jobs
		.iter()
		.map(|job| {
			let mut c = vec![0; 32 * 48];
			kernel::gemm_naive(job.a(), job.bt(), 32, 48, 256, &mut c);
			c
		})
		.collect();
	assert_ne!(want[0], want[1]);
	for round in 0..6 {
		let job = &jobs[round % 2];
		let mut miner = Miner::new(job, &PRE, U256::MAX).unwrap();
		miner.try_nonce(round as u64);
		let exact = miner.denoised().unwrap();
		assert_eq!(exact, want[round % 2], "round {round}");
		drop(exact);
	}
}

#[test]
fn openings_that_do_not_match_are_refused() {
	let p = ChallengeParams::DEV_V2;
	let job = chosen(&p, 5);
	let mut miner = Miner::new(&job, &PRE, U256::one()).unwrap();
	let win = miner.try_nonce(9).swap_remove(6); // tile (1, 2)
	let seal = win.seal.clone();
	let check = |s: &[u8]| verify(&p, &WS, &PRE, U256::one(), s);
	assert_eq!(check(&seal), Ok(win.verified));
	let rows = 16 * 64;
	let (a_at, a_path_at) = (17 + 64, 17 + 64 + rows);
	let bt_at = a_path_at + 64;
	let edit = |at: usize, f: fn(u8) -> u8| {
		let mut s = seal.clone();
		s[at] = f(s[at]);
		s
	};
	// Missing, truncated or padded openings: the length is exact.
	assert_eq!(check(&seal[..17]), Err(VerifyError::MalformedSeal));
	assert_eq!(check(&seal[..seal.len() - 1]), Err(VerifyError::MalformedSeal));
	assert_eq!(check(&[&seal[..], &[0]].concat()), Err(VerifyError::MalformedSeal));
	// A changed value (still in range) in either block, a changed path, a changed commitment.
	let flip = |v: u8| ((v as i8) ^ 1) as u8;
	assert_eq!(check(&edit(a_at + 100, flip)), Err(VerifyError::OpeningMismatch));
	assert_eq!(check(&edit(bt_at + 5, flip)), Err(VerifyError::OpeningMismatch));
	assert_eq!(check(&edit(a_path_at + 31, |v| v ^ 0x80)), Err(VerifyError::OpeningMismatch));
	assert_eq!(check(&edit(seal.len() - 1, |v| v ^ 1)), Err(VerifyError::OpeningMismatch));
	assert_eq!(check(&edit(17, |v| v ^ 1)), Err(VerifyError::OpeningMismatch));
	// Values outside -64..=63 are refused before any hashing.
	assert_eq!(check(&edit(a_at, |_| 64)), Err(VerifyError::OpeningOutOfRange));
	assert_eq!(check(&edit(bt_at + rows - 1, |_| (-65i8) as u8)), Err(VerifyError::OpeningOutOfRange));
	// The openings of tile (1, 2) do not open tile (2, 2) or (1, 3).
	let mut other = seal.clone();
	other[8..12].copy_from_slice(&2u32.to_le_bytes());
	assert_eq!(check(&other), Err(VerifyError::OpeningMismatch));
	let mut other = seal.clone();
	other[12..16].copy_from_slice(&3u32.to_le_bytes());
	assert_eq!(check(&other), Err(VerifyError::OpeningMismatch));
	// Claiming the seeded matrices instead is a different ticket entirely.
	let mut seeded = seal[..17].to_vec();
	seeded[16] = 0;
	assert_ne!(check(&seeded).map(|v| v.digest), Ok(win.verified.digest));
}

#[test]
fn the_ticket_depends_on_every_chunks_running_sums() {
	let (t, k, r) = (16, 256, 32);
	let (a, b) = (matrix(t * k, 1), matrix(t * k, 2));
	let mut tile = vec![0; t * t];
	let base = tile_transcript(&a, &b, t, k, r, &mut tile);
	for chunk in 0..k / r - 1 {
		// Swap column z of this chunk with column z + r of the next in both
		// operands: the product (the last running sums) stays the same, and
		// only the running sums after this chunk change.
		let z = chunk * r + 3;
		let (mut a2, mut b2) = (a.clone(), b.clone());
		for row in 0..t {
			a2.swap(row * k + z, row * k + z + r);
			b2.swap(row * k + z, row * k + z + r);
		}
		let mut tile2 = vec![0; t * t];
		let state = tile_transcript(&a2, &b2, t, k, r, &mut tile2);
		assert_eq!(tile2, tile, "chunk {chunk}: the product is unchanged");
		assert_ne!(state, base, "chunk {chunk}: the transcript must see it");
	}
}

/// Rank of an integer matrix modulo the prime 2^61 - 1: a lower bound on its
/// rank over the rationals.
fn rank_mod_p(rows: &[Vec<i64>]) -> usize {
	const P: i128 = (1 << 61) - 1;
	let mut m: Vec<Vec<i128>> = rows.iter().map(|r| r.iter().map(|&v| (v as i128).rem_euclid(P)).collect()).collect();
	let cols = m.first().map_or(0, Vec::len);
	let inv = |mut a: i128| {
		let (mut result, mut e) = (1i128, P - 2);
		while e > 0 {
			if e & 1 == 1 {
				result = result * a % P;
			}
			a = a * a % P;
			e >>= 1;
		}
		result
	};
	let mut rank = 0;
	for c in 0..cols {
		let Some(pivot) = (rank..m.len()).find(|&i| m[i][c] != 0) else { continue };
		m.swap(rank, pivot);
		let f = inv(m[rank][c]);
		let prow = m[rank].clone();
		for (i, row) in m.iter_mut().enumerate() {
			if i != rank && row[c] != 0 {
				let g = row[c] * f % P;
				for (x, &y) in row.iter_mut().zip(&prow) {
					*x = (*x - g * y % P).rem_euclid(P);
				}
			}
		}
		rank += 1;
	}
	rank
}

/// Zero, rank-one and repeated-row inputs buy no cheap chunks: for the
/// tile a seal opens, every chunk's increment `P_c - P_{c-1}` is a (nearly)
/// full-rank `t x t` matrix (no factorisation through few terms), and the
/// increments of all chunks are linearly independent (none follows from the
/// others). So the transcript costs the same for them as for random inputs.
#[test]
fn adversarial_inputs_still_pay_for_every_chunk() {
	let p = ChallengeParams { m: 32, n: 32, k: 512, t: 16, r: 32, ..ChallengeParams::DEV_V2 };
	let (m, n, k, t, r) = (p.m as usize, p.n as usize, p.k as usize, p.t as usize, p.r as usize);
	let v = matrix(k, 2);
	// Exactly rank one: row x is (x mod 2) times v.
	let rank_one: Vec<i8> = (0..m * k).map(|e| ((e / k) % 2) as i8 * v[e % k]).collect();
	let row = matrix(k, 3);
	let repeated: Vec<i8> = (0..m * k).map(|e| row[e % k]).collect();
	let cases = [("zeros", vec![0i8; m * k]), ("rank one", rank_one), ("repeated rows", repeated)];
	for (name, a) in cases {
		let job = Job::chosen(&p, a.clone(), a[..n * k].to_vec()).unwrap();
		let seed = noise::noise_seed(&PRE, &p, Mode::Chosen, &job.commitments(), 0);
		let sel = Selections::generate(&seed, p.k, p.r);
		let (mut a1, mut b1) = (job.a()[..t * k].to_vec(), job.bt()[t * k..2 * t * k].to_vec());
		let mut left = vec![0i8; t * r];
		noise::noise_a_rows(&seed, p.r, 0, &mut left);
		noise::add_noise(&mut a1, &left, &sel.a, r);
		noise::noise_bt_rows(&seed, p.r, t as u32, &mut left);
		noise::add_noise(&mut b1, &left, &sel.bt, r);
		let mut increments = vec![];
		for c in 0..k / r {
			// The chunk's column pairs (s[z], s'[z]) form a perfect matching:
			// both sides are permutations of 0..r, so no row or column of the
			// pair matrix holds two of them and its smallest vertex cover (the
			// fewest terms the increment can be written with) is all r.
			for sel in [&sel.a, &sel.bt] {
				let mut seen = sel[c * r..][..r].to_vec();
				seen.sort();
				assert!(seen.iter().enumerate().all(|(q, &v)| v as usize == q), "{name}: chunk {c}");
			}
			let cut = |mtx: &[i8]| -> Vec<i8> { (0..t).flat_map(|x| mtx[x * k + c * r..][..r].to_vec()).collect() };
			let mut d = vec![0i32; t * t];
			kernel::gemm_naive(&cut(&a1), &cut(&b1), t, t, r, &mut d);
			let as_rows: Vec<Vec<i64>> = d.chunks(t).map(|row| row.iter().map(|&x| x as i64).collect()).collect();
			// Nearly full rank: a random 16 x 16 matrix of small integers is
			// itself singular now and then, so allow one or two short of `t`;
			// a cheap chunk would have rank about r_eff << t.
			let rank = rank_mod_p(&as_rows);
			assert!(rank >= t - 2, "{name}: chunk {c}'s increment has rank {rank} of {t}");
			increments.push(d.iter().map(|&x| x as i64).collect::<Vec<_>>());
		}
		assert_eq!(rank_mod_p(&increments), k / r, "{name}: the chunks' increments are independent");
		// And the miner's winners on these inputs verify like any others.
		let mut miner = Miner::new(&job, &PRE, U256::from(2)).unwrap();
		let w = miner.search(0..50).unwrap();
		assert_eq!(verify(&p, &WS, &PRE, U256::from(2), &w.seal), Ok(w.verified));
	}
}

#[test]
fn bad_jobs_get_a_clear_error() {
	use mlpow_primitives::v2::JobError;
	let p = ChallengeParams::DEV_V2;
	let ok = || vec![0i8; 64 * 64];
	assert_eq!(Job::chosen(&p, vec![0; 10], ok()).err(), Some(JobError::WrongSize("A", 4096, 10)));
	let mut bad = ok();
	bad[77] = 64;
	assert_eq!(Job::chosen(&p, ok(), bad).err(), Some(JobError::OutOfRange("Bt", 77, 64)));
	assert_eq!(Job::chosen(&ChallengeParams::DEV, ok(), ok()).err(), Some(JobError::NotV2));
	let job = Job::seeded(&p, &PRE, &WS).unwrap();
	assert_eq!(Miner::new(&job, &[0; 32], U256::one()).err(), Some(JobError::OtherHeader));
	assert_eq!(Miner::new(&job, &PRE, U256::zero()).err(), Some(JobError::ZeroDifficulty));
}

/// Operands committed once and shared by several jobs (a model's weight
/// against new activations each time) mine exactly as jobs that commit
/// both sides themselves: the same commitments, seals and products; an
/// operand committed for another shape is refused.
#[test]
fn shared_operands_mine_like_jobs_of_their_own() {
	use mlpow_primitives::v2::{mine::Operand, JobError};
	use std::sync::Arc;
	let p = ChallengeParams::DEV_V2;
	let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
	let weight = matrix(n * k, 40);
	let shared = Arc::new(Operand::chosen(&p, "Bt", n, weight.clone()).unwrap());
	for seed in [41, 42] {
		let a = matrix(m * k, seed);
		let own = Job::chosen(&p, a.clone(), weight.clone()).unwrap();
		let a = Arc::new(Operand::chosen(&p, "A", m, a).unwrap());
		let reused = Job::of(&p, a, shared.clone()).unwrap();
		assert_eq!(reused.commitments(), own.commitments());
		let d = U256::from(3);
		let (mut x, mut y) = (Miner::new(&own, &PRE, d).unwrap(), Miner::new(&reused, &PRE, d).unwrap());
		let (wx, wy) = (x.try_nonce(seed), y.try_nonce(seed));
		assert!(!wx.is_empty());
		assert_eq!(wx, wy);
		assert_eq!(x.denoised(), y.denoised());
	}
	// Committed for 64 rows, used where n = 128; committed with t = 32.
	let a = Arc::new(Operand::chosen(&p, "A", m, matrix(m * k, 1)).unwrap());
	let taller = ChallengeParams { n: 128, ..p };
	assert_eq!(taller.validate(), Ok(()));
	assert_eq!(Job::of(&taller, a.clone(), shared).err(), Some(JobError::OtherShape("Bt")));
	let other_t = ChallengeParams { t: 32, ..p };
	assert_eq!(other_t.validate(), Ok(()));
	let bt = Arc::new(Operand::chosen(&other_t, "Bt", n, weight).unwrap());
	assert_eq!(Job::of(&p, a, bt).err(), Some(JobError::OtherShape("Bt")));
}

/// A miner on buffers handed over from miners of other shapes (larger,
/// then smaller, each having mined) finds what a fresh one finds: the same
/// winners and the same exact product.
#[test]
fn buffers_handed_on_mine_like_fresh_ones() {
	use mlpow_primitives::v2::Buffers;
	let small = ChallengeParams::DEV_V2;
	let large = ChallengeParams { m: 128, n: 192, k: 128, ..small };
	assert_eq!(large.validate(), Ok(()));
	let d = U256::from(3);
	let mut buffers = Buffers::default();
	for (p, seed) in [(large, 50), (small, 51), (large, 52), (small, 53)] {
		let job = chosen(&p, seed);
		let mut fresh = Miner::new(&job, &PRE, d).unwrap();
		let mut reused = Miner::with_buffers(&job, &PRE, d, buffers).unwrap();
		assert!(reused.noisy_product().is_empty(), "no product before a nonce, whatever the buffers held");
		for nonce in [seed, seed + 1] {
			assert_eq!(fresh.try_nonce(nonce), reused.try_nonce(nonce), "{p:?} nonce {nonce}");
			assert_eq!(fresh.denoised(), reused.denoised());
		}
		let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
		let mut exact = vec![0; m * n];
		kernel::gemm_naive(job.a(), job.bt(), m, n, k, &mut exact);
		assert_eq!(reused.denoised(), Some(exact));
		buffers = reused.into_buffers();
	}
}

/// An operand's size is checked without overflow: rows whose product with
/// `k` wraps to the length given are refused, not transposed.
#[test]
fn an_operand_whose_size_overflows_is_refused() {
	use mlpow_primitives::v2::{mine::Operand, JobError};
	let p = ChallengeParams::DEV_V2;
	let rows = 1usize << (usize::BITS - p.k.trailing_zeros());
	assert_eq!(rows.wrapping_mul(p.k as usize), 0);
	assert!(matches!(Operand::chosen(&p, "A", rows, vec![]), Err(JobError::WrongSize("A", usize::MAX, 0))));
}
