//! How many shares one pool core checks a second: the pool's own path for
//! a share (STRATUM.md's checks 5, 6 and 8: form, nonce prefix, one tile
//! at the share difficulty), timed on one thread for seeded shares at the
//! dev parameters and at the GPU preset (v1 and v2 each), and what that
//! means in miners served at one share per 10 s.
//!
//!     cargo run --release -p mlpow-stratum --example share_rate

use mlpow_primitives::{v2::seal::encode_seeded, ChallengeParams, Seal, PUZZLE_V2, U256};
use mlpow_stratum::{share, NoncePrefix};
use std::time::{Duration, Instant};

fn main() {
	let prefix = NoncePrefix::new(0x2a, 16).unwrap();
	println!("| params (m,k,n,t[,r]) | share | checks per second, one core | miners served at one share per 10 s |");
	println!("|---|---|---|---|");
	for (name, params) in [
		("dev v1", ChallengeParams::DEV),
		("dev v2 seeded", ChallengeParams::DEV_V2),
		("GPU v1", ChallengeParams::GPU),
		("GPU v2 seeded", ChallengeParams::GPU_V2),
	] {
		let (seed, pre_hash) = ([7u8; 32], [9u8; 32]);
		// Difficulty 1: every ticket is a share, so every check runs in full.
		let one = U256::one();
		let seal = |nonce: u64| {
			let id = Seal { nonce: prefix.first() + nonce, tile_i: 1, tile_j: 2 };
			if params.version == PUZZLE_V2 {
				encode_seeded(&id)
			} else {
				id.to_bytes().to_vec()
			}
		};
		let (mut checked, start) = (0u64, Instant::now());
		while start.elapsed() < Duration::from_secs(3) {
			let s = seal(checked);
			share::check_form(&params, &s, true).unwrap();
			share::check_nonce(&s, &prefix).unwrap();
			let accepted = share::verify_share(&params, &seed, &pre_hash, one, U256::MAX, &s).unwrap();
			std::hint::black_box(accepted);
			checked += 1;
		}
		let rate = checked as f64 / start.elapsed().as_secs_f64();
		let shape = if params.version == PUZZLE_V2 {
			format!("{},{},{},{},{}", params.m, params.k, params.n, params.t, params.r)
		} else {
			format!("{},{},{},{}", params.m, params.k, params.n, params.t)
		};
		println!("| {shape} ({name}) | {} bytes | {rate:.0} | {:.0} |", seal(0).len(), rate * 10.0);
	}
}
