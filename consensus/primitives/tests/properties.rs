//! Property tests: kernels agree exactly, mined seals verify, and `verify` is
//! total over arbitrary bytes and arbitrary parameters.

use mlpow_primitives::{
	kernel::{gemm_naive, Kernel},
	mine::{EpochWeights, Search},
	params::PUZZLE_VERSION,
	verify, ChallengeParams, Seal, VerifyError, U256,
};
use proptest::prelude::*;

fn small_params() -> impl Strategy<Value = ChallengeParams> {
	(1u32..=3, 1u32..=6, 1u32..=3, prop::bool::ANY).prop_map(|(mt, k16, nt, t32)| {
		let t = if t32 { 32 } else { 16 };
		ChallengeParams { version: PUZZLE_VERSION, m: mt * t, k: k16 * 16, n: nt * t, t, r: 0, epoch_length: 10 }
	})
}

proptest! {
	#![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

	#[test]
	fn every_kernel_equals_the_naive_loop(
		m in 1usize..40, n in 1usize..40, k in 0usize..300, seed in any::<u64>(), extreme in any::<bool>(),
	) {
		let mut s = seed;
		let mut next = || {
			s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
			// Half the cases use only -128 and 127, the values that stress
			// sign handling and the VNNI bias.
			if extreme { if s >> 63 == 0 { -128 } else { 127 } } else { (s >> 56) as i8 }
		};
		let a: Vec<i8> = (0..m * k).map(|_| next()).collect();
		let bt: Vec<i8> = (0..n * k).map(|_| next()).collect();
		let mut want = vec![0; m * n];
		gemm_naive(&a, &bt, m, n, k, &mut want);
		for kern in Kernel::ALL {
			let mut got = vec![i32::MIN; m * n];
			kern.gemm(&a, &bt, m, n, k, &mut got);
			prop_assert_eq!(&got, &want, "{:?} {}x{}x{}", kern, m, n, k);
		}
	}

	#[test]
	fn mined_seals_verify_and_their_tiles_match_verify(
		p in small_params(), ws in any::<[u8; 32]>(), pre in any::<[u8; 32]>(), d in 1u64..64,
	) {
		let weights = EpochWeights::generate(&p, &ws).unwrap();
		let d = U256::from(d);
		let mut search = Search::new(&weights, &pre, d).unwrap();
		let win = search.search(0..10_000).expect("a winner at difficulty < 64");
		let v = verify(&p, &ws, &pre, d, &win.seal.to_bytes());
		prop_assert_eq!(v, Ok(win));
		// Every tile digest of the full product equals what verify computes
		// from one tile alone.
		for i in 0..p.tiles_m() {
			for j in 0..p.tiles_n() {
				let seal = Seal { nonce: win.seal.nonce, tile_i: i, tile_j: j };
				let v = verify(&p, &ws, &pre, U256::one(), &seal.to_bytes()).unwrap();
				prop_assert_eq!(v.digest, search.tile_digest(win.seal.nonce, i, j));
			}
		}
	}

	/// Totality: any seal bytes, any difficulty, any parameters (mostly
	/// invalid) give a result, never a panic.
	#[test]
	fn verify_is_total(
		version in prop_oneof![Just(PUZZLE_VERSION), any::<u32>()],
		dims in prop_oneof![
			(0u32..5, 0u32..5, 0u32..5, 0u32..3).prop_map(|(m, k, n, t)| (m * 16, k * 16, n * 16, t * 16)),
			any::<(u32, u32, u32, u32)>(),
		],
		epoch_length in any::<u32>(),
		ws in any::<[u8; 32]>(), pre in any::<[u8; 32]>(),
		d in prop_oneof![Just(U256::zero()), any::<[u8; 32]>().prop_map(|b| U256::from_big_endian(&b))],
		seal in prop::collection::vec(any::<u8>(), 0..40),
	) {
		let (m, k, n, t) = dims;
		let p = ChallengeParams { version, m, k, n, t, r: 0, epoch_length };
		match verify(&p, &ws, &pre, d, &seal) {
			Ok(v) => {
				prop_assert!(p.validate().is_ok() && seal.len() == 16);
				prop_assert_eq!(v.seal.to_bytes().to_vec(), seal);
			},
			Err(VerifyError::BadParams(e)) => prop_assert_eq!(p.validate(), Err(e)),
			Err(VerifyError::MalformedSeal) => prop_assert_ne!(seal.len(), 16),
			Err(VerifyError::ZeroDifficulty) => prop_assert!(d.is_zero()),
			Err(_) => prop_assert!(p.validate().is_ok()),
		}
	}

	/// v2 totality: any seal bytes (random, or a chosen seal's exact length
	/// filled at random, which reaches the range and Merkle checks) under any
	/// v2-shaped parameters give a result, never a panic.
	#[test]
	fn verify_v2_is_total(
		dims in (1u32..4, 1u32..5, 1u32..4, 1u32..3, 0u32..3),
		r in prop_oneof![Just(32u32), Just(64), Just(128), any::<u32>()],
		ws in any::<[u8; 32]>(), pre in any::<[u8; 32]>(),
		d in any::<[u8; 32]>().prop_map(|b| U256::from_big_endian(&b)),
		random in prop::collection::vec(any::<u8>(), 0..64),
		fill in any::<u8>(), mode in 0u8..3, exact in any::<bool>(),
	) {
		let (mt, k64, nt, t16, _) = dims;
		let t = t16 * 16;
		let p = ChallengeParams { version: 2, m: mt * t, k: k64 * 64, n: nt * t, t, r, epoch_length: 1 };
		let seal = if exact && p.validate().is_ok() {
			let len = mlpow_primitives::v2::seal::encoded_len(&p, mlpow_primitives::v2::Mode::Chosen);
			let mut s: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8) & 0x3f).collect();
			s[..random.len().min(len)].copy_from_slice(&random[..random.len().min(len)]);
			s[16] = mode;
			s
		} else {
			random
		};
		match verify(&p, &ws, &pre, d, &seal) {
			Ok(v) => prop_assert_eq!(&v.seal.to_bytes()[..], &seal[..16]),
			Err(VerifyError::BadParams(e)) => prop_assert_eq!(p.validate(), Err(e)),
			Err(_) => prop_assert!(p.validate().is_ok()),
		}
	}
}
