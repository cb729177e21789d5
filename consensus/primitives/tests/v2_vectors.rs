//! `consensus/vectors/v2.json` against the library, and against a second,
//! independent transcription of `consensus/SPEC-v2.md` (below, in `spec`:
//! nothing from the library but the BLAKE3 and U256 crates).

use mlpow_primitives::{
	v2::{noise::Selections, Job, Miner},
	verify, ChallengeParams, Hash32, U256,
};
use serde_json::Value;

fn load() -> Value {
	mlpow_vectors::v2()
}

fn h32(v: &Value) -> Hash32 {
	hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
	hex::decode(v.as_str().unwrap()).unwrap()
}

use mlpow_vectors::params;

fn states(v: &Value) -> Vec<[u32; 16]> {
	v.as_array()
		.unwrap()
		.iter()
		.map(|s| {
			let b = bytes(s);
			core::array::from_fn(|w| u32::from_le_bytes(b[4 * w..4 * w + 4].try_into().unwrap()))
		})
		.collect()
}

/// SPEC-v2.md, written out again from the text.
mod spec {
	pub fn seven(b: u8) -> i8 {
		(b as i8) >> 1
	}
	pub fn xof(ctx: &str, material: &[u8], len: usize) -> Vec<u8> {
		let mut out = vec![0; len];
		let mut h = blake3::Hasher::new_derive_key(ctx);
		h.update(material);
		h.finalize_xof().fill(&mut out);
		out
	}
	pub fn depth(x: usize) -> usize {
		let mut d = 0;
		while (1usize << d) < x {
			d += 1;
		}
		d
	}
	pub fn merkle_root(matrix: &[i8], t: usize, k: usize) -> [u8; 32] {
		let mut level: Vec<[u8; 32]> = matrix
			.chunks(t * k)
			.map(|b| blake3::derive_key("mlpow v2 leaf", &b.iter().map(|&v| v as u8).collect::<Vec<_>>()))
			.collect();
		let width = 1 << depth(level.len());
		level.resize(width, [0; 32]);
		while level.len() > 1 {
			level = level.chunks(2).map(|p| blake3::derive_key("mlpow v2 node", &[p[0], p[1]].concat())).collect();
		}
		level[0]
	}
	/// SPEC-v2 "The noise": one Fisher-Yates permutation of 0..r per chunk.
	pub fn selections(ctx: &str, seed: &[u8; 32], k: usize, r: usize) -> Vec<usize> {
		// Far more bytes than the rejections could ever use here.
		let stream = xof(ctx, seed, 4 * k + 64);
		let mut bytes = stream.into_iter();
		let mut out = vec![];
		for _ in 0..k / r {
			let mut perm: Vec<usize> = (0..r).collect();
			for i in (1..r).rev() {
				let j = loop {
					let b = bytes.next().unwrap() as usize;
					if b < 256 - 256 % (i + 1) {
						break b % (i + 1);
					}
				};
				perm.swap(i, j);
			}
			out.extend(perm);
		}
		out
	}
	/// Every tile's (state, ticket), row-major by tile.
	pub fn tickets(
		p: &super::ChallengeParams,
		pre: &[u8; 32],
		mode: u8,
		commits: (&[u8; 32], &[u8; 32]),
		nonce: u64,
		a: &[i8],
		bt: &[i8],
	) -> Vec<([u32; 16], [u8; 32])> {
		let (m, n, k, t, r) = (p.m as usize, p.n as usize, p.k as usize, p.t as usize, p.r as usize);
		let mut material = pre.to_vec();
		for f in [p.version, p.m, p.k, p.n, p.t, p.r, p.epoch_length] {
			material.extend(f.to_le_bytes());
		}
		material.push(mode);
		material.extend(commits.0);
		material.extend(commits.1);
		material.extend(nonce.to_le_bytes());
		let seed = blake3::derive_key("mlpow v2 noise seed", &material);
		let el = xof("mlpow v2 noise A", &seed, m * r);
		let gl = xof("mlpow v2 noise B", &seed, n * r);
		let (s, s2) = (selections("mlpow v2 select A", &seed, k, r), selections("mlpow v2 select B", &seed, k, r));
		let a2: Vec<i32> = (0..m * k).map(|e| a[e] as i32 + seven(el[e / k * r + s[e % k]]) as i32).collect();
		let b2: Vec<i32> = (0..n * k).map(|e| bt[e] as i32 + seven(gl[e / k * r + s2[e % k]]) as i32).collect();
		let key = blake3::derive_key("mlpow v2 ticket key", &seed);
		let mut out = vec![];
		for i in 0..m / t {
			for j in 0..n / t {
				let mut w = [0u32; 16];
				for x in 0..t {
					for y in 0..t {
						let (row, col) = (i * t + x, j * t + y);
						let (mut sum, mut fold) = (0i32, 0u32);
						for z in 0..k {
							sum += a2[row * k + z] * b2[col * k + z];
							if (z + 1) % r == 0 {
								fold ^= sum as u32;
							}
						}
						w[y % 16] ^= fold.rotate_left((x % 32) as u32);
					}
				}
				let mut msg = (i as u32).to_le_bytes().to_vec();
				msg.extend((j as u32).to_le_bytes());
				w.iter().for_each(|v| msg.extend(v.to_le_bytes()));
				out.push((w, *blake3::keyed_hash(&key, &msg).as_bytes()));
			}
		}
		out
	}
}

#[test]
fn every_case_matches_the_spec_and_the_library() {
	let file = load();
	let cases = file["cases"].as_array().unwrap();
	assert_eq!(cases.len(), 8);
	for c in cases {
		let name = c["name"].as_str().unwrap();
		let p = params(&c["params"]);
		let (pre, ws) = (h32(&c["pre_hash"]), h32(&c["weights_seed"]));
		let nonce: u64 = c["nonce"].as_str().unwrap().parse().unwrap();
		let mode = c["mode"].as_u64().unwrap() as u8;
		let (m, n, k, t) = (p.m as usize, p.n as usize, p.k as usize, p.t as usize);
		// The matrices: inline for chosen, from the seeds (independently) for seeded.
		let (a, bt, commit_a, commit_bt) = if mode == 1 {
			let a: Vec<i8> = bytes(&c["a"]).iter().map(|&b| b as i8).collect();
			let bt: Vec<i8> = bytes(&c["bt"]).iter().map(|&b| b as i8).collect();
			let (ca, cb) = (spec::merkle_root(&a, t, k), spec::merkle_root(&bt, t, k));
			(a, bt, ca, cb)
		} else {
			let job_seed = blake3::derive_key("mlpow v1 job seed", &[pre, ws].concat());
			let a = spec::xof("mlpow v2 activations", &job_seed, m * k).into_iter().map(spec::seven).collect();
			let bt = spec::xof("mlpow v2 weights", &ws, n * k).into_iter().map(spec::seven).collect();
			(a, bt, job_seed, ws)
		};
		assert_eq!((commit_a, commit_bt), (h32(&c["commit_a"]), h32(&c["commit_bt"])), "{name}");
		let want: Vec<([u32; 16], [u8; 32])> = spec::tickets(&p, &pre, mode, (&commit_a, &commit_bt), nonce, &a, &bt);
		let file_states = states(&c["states"]);
		let file_tickets: Vec<Hash32> = c["tickets"].as_array().unwrap().iter().map(h32).collect();
		assert_eq!(want.iter().map(|w| w.0).collect::<Vec<_>>(), file_states, "{name}: states");
		assert_eq!(want.iter().map(|w| w.1).collect::<Vec<_>>(), file_tickets, "{name}: tickets");

		// The library: the same states, tickets, selections and products.
		let job = if mode == 1 {
			Job::chosen(&p, a.clone(), bt.clone()).unwrap()
		} else {
			Job::seeded(&p, &pre, &ws).unwrap()
		};
		let sel = Selections::generate(&h32(&c["noise_seed"]), p.k, p.r);
		assert_eq!((sel.a, sel.bt), (bytes(&c["selections_a"]), bytes(&c["selections_bt"])), "{name}");
		let seed = h32(&c["noise_seed"]);
		let (k_, r_) = (p.k as usize, p.r as usize);
		let own = |ctx| spec::selections(ctx, &seed, k_, r_).into_iter().map(|v| v as u8).collect::<Vec<_>>();
		assert_eq!(own("mlpow v2 select A"), bytes(&c["selections_a"]), "{name}: s from SPEC");
		assert_eq!(own("mlpow v2 select B"), bytes(&c["selections_bt"]), "{name}: s' from SPEC");
		let mut miner = Miner::new(&job, &pre, U256::one()).unwrap();
		let wins = miner.try_nonce(nonce);
		assert_eq!(miner.states(), &file_states[..], "{name}");
		assert_eq!(wins.iter().map(|w| w.verified.digest).collect::<Vec<_>>(), file_tickets, "{name}");
		let blake = |v: &[i32]| {
			hex::encode(blake3::hash(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()).as_bytes())
		};
		assert_eq!(blake(miner.noisy_product()), c["noisy_product_blake3"].as_str().unwrap(), "{name}");
		assert_eq!(blake(&miner.denoised().unwrap()), c["product_blake3"].as_str().unwrap(), "{name}");
		let seal = bytes(&c["seal_of_last_tile"]);
		assert_eq!(wins.last().unwrap().seal, seal, "{name}");
		assert_eq!(verify(&p, &ws, &pre, U256::one(), &seal).map(|v| v.digest), Ok(*file_tickets.last().unwrap()));
	}
}

#[test]
fn verify_cases_have_the_recorded_outcomes() {
	let file = load();
	let cases = file["verify_cases"].as_array().unwrap();
	let mut outcomes = std::collections::BTreeSet::new();
	for c in cases {
		let p = params(&c["params"]);
		let d = U256::from_dec_str(c["difficulty"].as_str().unwrap()).unwrap();
		let got = verify(&p, &h32(&c["weights_seed"]), &h32(&c["pre_hash"]), d, &bytes(&c["seal"]));
		let outcome = match &got {
			Ok(_) => "Ok".to_string(),
			Err(e) => format!("{e:?}"),
		};
		assert_eq!(outcome, c["outcome"].as_str().unwrap(), "{}", c["name"]);
		if let Ok(v) = got {
			assert_eq!(hex::encode(v.digest), c["digest"].as_str().unwrap());
		}
		outcomes.insert(outcome);
	}
	// Every way a v2 seal can fail has a case.
	for e in [
		"Ok",
		"AboveTarget",
		"ZeroDifficulty",
		"BadParams(BadRank)",
		"BadParams(OpeningTooLarge)",
		"MalformedSeal",
		"TileOutOfRange",
		"OpeningOutOfRange",
		"OpeningMismatch",
	] {
		assert!(outcomes.contains(e), "a v2 verify case ends in {e}");
	}
}
