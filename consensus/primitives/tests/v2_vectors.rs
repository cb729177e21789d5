//! `consensus/vectors/v2.json` against the library, and against a second,
//! independent transcription of `consensus/SPEC-v2.md` (below, in `spec`
//! and `scale`: nothing from the library but the BLAKE3, BLAKE2 and U256
//! crates). `runtime/tests/header_vectors.rs` checks the verification cases
//! and the headers again through the runtime's API and sp-runtime's types.

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
		// One stream for every chunk, read on from where the last chunk stopped.
		let mut h = blake3::Hasher::new_derive_key(ctx);
		h.update(seed);
		let mut reader = h.finalize_xof();
		let mut bytes = std::iter::from_fn(move || {
			let mut b = [0u8];
			reader.fill(&mut b);
			Some(b[0])
		});
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
	/// `len` bytes of `xof(ctx, material)` from byte `from` on.
	pub fn xof_at(ctx: &str, material: &[u8], from: usize, len: usize) -> Vec<u8> {
		let mut h = blake3::Hasher::new_derive_key(ctx);
		h.update(material);
		let mut reader = h.finalize_xof();
		reader.set_position(from as u64);
		let mut out = vec![0; len];
		reader.fill(&mut out);
		out
	}
	/// `noise_seed`: pre_hash || SCALE(params) || mode || commit_a || commit_bt || nonce.
	pub fn noise_seed(
		p: &super::ChallengeParams,
		pre: &[u8; 32],
		mode: u8,
		c: (&[u8; 32], &[u8; 32]),
		nonce: u64,
	) -> [u8; 32] {
		let mut material = pre.to_vec();
		for f in [p.version, p.m, p.k, p.n, p.t, p.r, p.epoch_length] {
			material.extend(f.to_le_bytes());
		}
		material.push(mode);
		material.extend(c.0);
		material.extend(c.1);
		material.extend(nonce.to_le_bytes());
		blake3::derive_key("mlpow v2 noise seed", &material)
	}
	/// The 16-word state of one tile from its `t` noisy rows of `A'` and of `Bt'`.
	pub fn tile_state(a2: &[i32], b2: &[i32], t: usize, k: usize, r: usize) -> [u32; 16] {
		let mut w = [0u32; 16];
		for x in 0..t {
			for y in 0..t {
				let (mut sum, mut fold) = (0i32, 0u32);
				for z in 0..k {
					sum += a2[x * k + z] * b2[y * k + z];
					if (z + 1) % r == 0 {
						fold ^= sum as u32;
					}
				}
				w[y % 16] ^= fold.rotate_left((x % 32) as u32);
			}
		}
		w
	}
	pub fn ticket(key: &[u8; 32], i: u32, j: u32, w: &[u32; 16]) -> [u8; 32] {
		let mut msg = i.to_le_bytes().to_vec();
		msg.extend(j.to_le_bytes());
		w.iter().for_each(|v| msg.extend(v.to_le_bytes()));
		*blake3::keyed_hash(key, &msg).as_bytes()
	}
	pub fn leaf(rows: &[u8]) -> [u8; 32] {
		blake3::derive_key("mlpow v2 leaf", rows)
	}
	pub fn root(leaf: [u8; 32], index: u32, path: &[u8]) -> [u8; 32] {
		let mut acc = leaf;
		for (l, sibling) in path.chunks(32).enumerate() {
			acc = if index >> l & 1 == 0 {
				blake3::derive_key("mlpow v2 node", &[&acc[..], sibling].concat())
			} else {
				blake3::derive_key("mlpow v2 node", &[sibling, &acc[..]].concat())
			};
		}
		acc
	}
	/// SPEC.md "Parameters", rules 1 to 11 in order: the first broken one.
	pub fn params_error(p: &super::ChallengeParams) -> Option<&'static str> {
		let dims = [p.m, p.k, p.n, p.t];
		let (k, r, t) = (p.k as u64, p.r as u64, p.t as u64);
		let v2 = p.version == 2;
		let rules = [
			(p.version != 1 && !v2, "UnsupportedVersion"),
			(dims.contains(&0), "ZeroDimension"),
			(dims.iter().any(|d| d % 16 != 0), "NotMultipleOf16"),
			(k > 65536, "InnerDimensionTooLarge"),
			(p.m > 65536 || p.n > 65536, "OuterDimensionTooLarge"),
			(t > 128, "TileTooLarge"),
			(!p.m.is_multiple_of(p.t) || !p.n.is_multiple_of(p.t), "TileDoesNotDivide"),
			(t * t * k > 1 << 24, "VerificationTooExpensive"),
			(p.epoch_length == 0 || p.epoch_length > 1_000_000, "BadEpochLength"),
			(
				if v2 {
					!(r.is_power_of_two() && (32..=128).contains(&r) && k.is_multiple_of(r) && k <= r * r)
				} else {
					r != 0
				},
				"BadRank",
			),
			(v2 && 2 * t * k > 1 << 19, "OpeningTooLarge"),
		];
		rules.iter().find(|r| r.0).map(|r| r.1)
	}
	/// SPEC-v2 "Verifying a v2 seal", steps 1 to 7 in order: the ticket or
	/// the error's name, and the ticket of every seal that reaches step 6
	/// (a losing one too).
	pub fn verify(
		p: &super::ChallengeParams,
		ws: &[u8; 32],
		pre: &[u8; 32],
		d: primitive_types::U256,
		seal: &[u8],
	) -> (Result<[u8; 32], String>, Option<[u8; 32]>) {
		let fail = |e: &str| (Err(e.to_string()), None);
		if let Some(e) = params_error(p) {
			return fail(&format!("BadParams({e})"));
		}
		if d.is_zero() {
			return fail("ZeroDifficulty");
		}
		let (m, n, k, t, r) = (p.m as usize, p.n as usize, p.k as usize, p.t as usize, p.r as usize);
		if seal.len() < 17 || seal[16] > 1 {
			return fail("MalformedSeal");
		}
		let mode = seal[16];
		let (da, db) = (32 * depth(m / t), 32 * depth(n / t));
		let exact = if mode == 0 { 17 } else { 17 + 64 + 2 * t * k + da + db };
		if seal.len() != exact {
			return fail("MalformedSeal");
		}
		let nonce = u64::from_le_bytes(seal[..8].try_into().unwrap());
		let i = u32::from_le_bytes(seal[8..12].try_into().unwrap());
		let j = u32::from_le_bytes(seal[12..16].try_into().unwrap());
		if i as usize >= m / t || j as usize >= n / t {
			return fail("TileOutOfRange");
		}
		let (a, b, ca, cb): (Vec<u8>, Vec<u8>, [u8; 32], [u8; 32]) = if mode == 1 {
			let (commits, rest) = seal[17..].split_at(64);
			let (a, rest) = rest.split_at(t * k);
			let (a_path, rest) = rest.split_at(da);
			let (b, b_path) = rest.split_at(t * k);
			if a.iter().chain(b).any(|&v| !(-64..=63).contains(&(v as i8))) {
				return fail("OpeningOutOfRange");
			}
			let (ca, cb): ([u8; 32], [u8; 32]) = (commits[..32].try_into().unwrap(), commits[32..].try_into().unwrap());
			if root(leaf(a), i, a_path) != ca || root(leaf(b), j, b_path) != cb {
				return fail("OpeningMismatch");
			}
			(a.to_vec(), b.to_vec(), ca, cb)
		} else {
			let js = blake3::derive_key("mlpow v1 job seed", &[&pre[..], &ws[..]].concat());
			let a = xof_at("mlpow v2 activations", &js, i as usize * t * k, t * k);
			let b = xof_at("mlpow v2 weights", ws, j as usize * t * k, t * k);
			(a.into_iter().map(|v| seven(v) as u8).collect(), b.into_iter().map(|v| seven(v) as u8).collect(), js, *ws)
		};
		let seed = noise_seed(p, pre, mode, (&ca, &cb), nonce);
		let el = xof_at("mlpow v2 noise A", &seed, i as usize * t * r, t * r);
		let gl = xof_at("mlpow v2 noise B", &seed, j as usize * t * r, t * r);
		let (s, s2) = (selections("mlpow v2 select A", &seed, k, r), selections("mlpow v2 select B", &seed, k, r));
		let a2: Vec<i32> = (0..t * k).map(|e| a[e] as i8 as i32 + seven(el[e / k * r + s[e % k]]) as i32).collect();
		let b2: Vec<i32> = (0..t * k).map(|e| b[e] as i8 as i32 + seven(gl[e / k * r + s2[e % k]]) as i32).collect();
		let key = blake3::derive_key("mlpow v2 ticket key", &seed);
		let tk = ticket(&key, i, j, &tile_state(&a2, &b2, t, k, r));
		let wins = primitive_types::U256::from_big_endian(&tk) <= primitive_types::U256::MAX / d;
		(if wins { Ok(tk) } else { Err("AboveTarget".into()) }, Some(tk))
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

/// SCALE, written out from SPEC.md "SCALE encodings" (no `codec`).
mod scale {
	pub fn compact(n: u64) -> Vec<u8> {
		match n {
			0..=63 => vec![(n as u8) << 2],
			64..=16_383 => ((n as u16) << 2 | 0b01).to_le_bytes().to_vec(),
			16_384..=1_073_741_823 => ((n as u32) << 2 | 0b10).to_le_bytes().to_vec(),
			_ => {
				let len = 8 - n.leading_zeros() as usize / 8;
				[vec![(((len - 4) as u8) << 2) | 0b11], n.to_le_bytes()[..len].to_vec()].concat()
			}
		}
	}
	/// A digest item with an engine id: tag, 4 bytes, then the data as `Vec<u8>`.
	pub fn engine_item(tag: u8, engine: &[u8; 4], data: &[u8]) -> Vec<u8> {
		[vec![tag], engine.to_vec(), compact(data.len() as u64), data.to_vec()].concat()
	}
	/// `Result<SealCheck, VerifyError>` (SPEC.md "Runtime APIs").
	pub fn verify_result(r: &Result<[u8; 32], String>) -> Vec<u8> {
		const PARAMS: [&str; 11] = [
			"UnsupportedVersion",
			"ZeroDimension",
			"NotMultipleOf16",
			"InnerDimensionTooLarge",
			"OuterDimensionTooLarge",
			"TileTooLarge",
			"TileDoesNotDivide",
			"VerificationTooExpensive",
			"BadEpochLength",
			"BadRank",
			"OpeningTooLarge",
		];
		const OTHERS: [&str; 6] = [
			"ZeroDifficulty",
			"MalformedSeal",
			"TileOutOfRange",
			"AboveTarget",
			"OpeningOutOfRange",
			"OpeningMismatch",
		];
		match r {
			Ok(d) => [&[0u8][..], d].concat(),
			Err(e) => match e.strip_prefix("BadParams(").and_then(|r| r.strip_suffix(')')) {
				Some(inner) => vec![1, 0, PARAMS.iter().position(|p| *p == inner).unwrap() as u8],
				None => vec![1, 1 + OTHERS.iter().position(|p| p == e).unwrap() as u8],
			},
		}
	}
}

fn blake2_256(data: &[u8]) -> [u8; 32] {
	use blake2::{digest::consts::U32, Blake2b, Digest};
	Blake2b::<U32>::digest(data).into()
}

fn opt_h32(v: &Value) -> Option<Hash32> {
	(!v.is_null()).then(|| h32(v))
}

#[test]
fn every_case_matches_the_spec_and_the_library() {
	let file = load();
	let cases = file["cases"].as_array().unwrap();
	assert_eq!(cases.len(), 12);
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
		let name = c["name"].as_str().unwrap();
		let p = params(&c["params"]);
		let d = U256::from_dec_str(c["difficulty"].as_str().unwrap()).unwrap();
		let (ws, pre, seal) = (h32(&c["weights_seed"]), h32(&c["pre_hash"]), bytes(&c["seal"]));
		let got = verify(&p, &ws, &pre, d, &seal);
		let outcome = match &got {
			Ok(_) => "Ok".to_string(),
			Err(e) => format!("{e:?}"),
		};
		assert_eq!(outcome, c["outcome"].as_str().unwrap(), "{name}");
		assert_eq!(got.map(|v| v.digest).ok(), opt_h32(&c["digest"]), "{name}");
		// SPEC-v2, transcribed: the same outcome, and the ticket of every
		// seal that gets as far as the target (a losing one too).
		let (want, ticket) = spec::verify(&p, &ws, &pre, d, &seal);
		assert_eq!(want, got.map(|v| v.digest).map_err(|e| format!("{e:?}")), "{name}: SPEC-v2 transcribed");
		assert_eq!(ticket, opt_h32(&c["ticket"]), "{name}: ticket");
		assert_eq!(ticket.is_some(), ["Ok", "AboveTarget"].contains(&outcome.as_str()), "{name}");
		if outcome == "AboveTarget" {
			// The losing ticket is the digest the same seal has where it wins.
			let at_one = verify(&p, &ws, &pre, U256::one(), &seal).unwrap().digest;
			assert_eq!(Some(at_one), ticket, "{name}");
		}
		// `verify_seal`'s bytes: pre_hash || Compact(len) || seal, and the result.
		let head = [&pre[..], &scale::compact(seal.len() as u64)].concat();
		assert_eq!(hex::encode(&head), c["args_scale_head"].as_str().unwrap(), "{name}");
		assert_eq!([&head[..], &seal].concat(), codec::Encode::encode(&(pre, seal.clone())), "{name}");
		let result = scale::verify_result(&want);
		assert_eq!(hex::encode(&result), c["result_scale"].as_str().unwrap(), "{name}");
		assert_eq!(result, codec::Encode::encode(&got.map(|v| v.digest)), "{name}");
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
	// A case for each adjacent pair of checks, and the GPU parameters.
	let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
	for pair in ["1 and 2", "2 and 3", "3 and 4", "4 and 5", "5.1 and 5.2", "5.2 and 5.3", "5 and 7", "4 and 7"] {
		assert!(names.iter().any(|n| n.starts_with(&format!("order, steps {pair}:"))), "steps {pair}");
	}
	assert!(cases.iter().any(|c| params(&c["params"]) == ChallengeParams::GPU_V2));
}

#[test]
fn gpu_sized_tiles_match_the_spec_and_the_library() {
	let file = load();
	let g = &file["gpu"];
	let p = params(&g["params"]);
	assert_eq!(p, ChallengeParams::GPU_V2);
	let (pre, ws) = (h32(&g["pre_hash"]), h32(&g["weights_seed"]));
	let nonce: u64 = g["nonce"].as_str().unwrap().parse().unwrap();
	let js = blake3::derive_key("mlpow v1 job seed", &[pre, ws].concat());
	assert_eq!(js, h32(&g["job_seed"]));
	assert_eq!(spec::noise_seed(&p, &pre, 0, (&js, &ws), nonce), h32(&g["noise_seed"]));
	let seeded = |i: u32, j: u32| {
		let mut s = nonce.to_le_bytes().to_vec();
		s.extend(i.to_le_bytes());
		s.extend(j.to_le_bytes());
		s.push(0);
		s
	};
	let tickets = g["tickets"].as_array().unwrap();
	assert!(tickets.len() >= 3);
	for tk in tickets {
		let (i, j) = (tk["tile_i"].as_u64().unwrap() as u32, tk["tile_j"].as_u64().unwrap() as u32);
		let want = h32(&tk["ticket"]);
		assert_eq!(spec::verify(&p, &ws, &pre, U256::one(), &seeded(i, j)).0, Ok(want), "({i}, {j})");
		assert_eq!(verify(&p, &ws, &pre, U256::one(), &seeded(i, j)).map(|v| v.digest), Ok(want), "({i}, {j})");
	}
	// The first winning tile in row-major order: every tile before it loses.
	let d = U256::from_dec_str(g["difficulty"].as_str().unwrap()).unwrap();
	let w = &g["first_winner"];
	let (i, j) = (w["tile_i"].as_u64().unwrap() as u32, w["tile_j"].as_u64().unwrap() as u32);
	let index = w["tile_index"].as_u64().unwrap() as u32;
	assert_eq!(index, i * p.tiles_n() + j);
	assert_eq!(bytes(&w["seal"]), seeded(i, j));
	assert_eq!(spec::verify(&p, &ws, &pre, d, &seeded(i, j)).0, Ok(h32(&w["ticket"])));
	for idx in 0..index {
		let s = seeded(idx / p.tiles_n(), idx % p.tiles_n());
		assert_eq!(verify(&p, &ws, &pre, d, &s).map(|v| v.digest), Err(mlpow_primitives::VerifyError::AboveTarget));
	}
}

#[test]
fn headers_carry_a_v2_seal_and_hash_as_the_spec_says() {
	let file = load();
	let headers = file["headers"].as_array().unwrap();
	let mut prefixes = vec![];
	for hd in headers {
		let name = hd["name"].as_str().unwrap();
		let mut items: Vec<Vec<u8>> = vec![];
		for log in hd["digest"].as_array().unwrap() {
			let item = match log["kind"].as_str().unwrap() {
				"PreRuntime" => {
					let engine: [u8; 4] = log["engine_id"].as_str().unwrap().as_bytes().try_into().unwrap();
					scale::engine_item(6, &engine, &bytes(&log["data"]))
				}
				"RuntimeEnvironmentUpdated" => vec![8],
				other => panic!("{name}: unexpected digest item {other}"),
			};
			assert_eq!(hex::encode(&item), log["scale"].as_str().unwrap(), "{name}");
			items.push(item);
		}
		let number = hd["number"].as_u64().unwrap();
		let encode = |items: &[Vec<u8>]| {
			let mut out = h32(&hd["parent_hash"]).to_vec();
			out.extend(scale::compact(number));
			out.extend(h32(&hd["state_root"]));
			out.extend(h32(&hd["extrinsics_root"]));
			out.extend(scale::compact(items.len() as u64));
			out.extend(items.concat());
			out
		};
		let unsealed = encode(&items);
		assert_eq!(hex::encode(&unsealed), hd["unsealed_scale"].as_str().unwrap(), "{name}");
		let pre = blake2_256(&unsealed);
		assert_eq!(pre, h32(&hd["pre_hash"]), "{name}");

		let p = params(&hd["params"]);
		let ws = h32(&hd["weights_seed"]);
		let d = U256::from_dec_str(hd["difficulty"].as_str().unwrap()).unwrap();
		let s = &hd["seal"];
		let seal = bytes(&s["bytes"]);
		let nonce: u64 = s["nonce"].as_str().unwrap().parse().unwrap();
		let (i, j) = (s["tile_i"].as_u64().unwrap() as u32, s["tile_j"].as_u64().unwrap() as u32);
		let id = [&nonce.to_le_bytes()[..], &i.to_le_bytes(), &j.to_le_bytes(), &[hd["mode"].as_u64().unwrap() as u8]]
			.concat();
		assert_eq!(seal[..17], id[..], "{name}");
		let ticket = h32(&s["ticket"]);
		assert_eq!(spec::verify(&p, &ws, &pre, d, &seal).0, Ok(ticket), "{name}");
		assert_eq!(verify(&p, &ws, &pre, d, &seal).map(|v| v.digest), Ok(ticket), "{name}");

		let item = scale::engine_item(5, b"pow_", &seal);
		let head = &item[..item.len() - seal.len()];
		assert_eq!(hex::encode(head), hd["seal_item_head"].as_str().unwrap(), "{name}");
		prefixes.push(head.len() - 5);
		items.push(item);
		let sealed = encode(&items);
		assert_eq!(hex::encode(&sealed), hd["sealed_scale"].as_str().unwrap(), "{name}");
		assert_eq!(hex::encode(blake2_256(&sealed)), hd["block_hash"].as_str().unwrap(), "{name}");

		// The first winner for this header in (nonce, tile) order, where
		// the matrices are in the file (seeded, or a case's).
		let job = match (hd["mode"].as_u64().unwrap(), hd["matrices_of_case"].as_str()) {
			(0, _) => Some(Job::seeded(&p, &pre, &ws).unwrap()),
			(1, Some(case)) => {
				let c = file["cases"].as_array().unwrap().iter().find(|c| c["name"] == case).unwrap();
				assert_eq!(params(&c["params"]), p, "{name}");
				let m = |f: &str| bytes(&c[f]).into_iter().map(|b| b as i8).collect::<Vec<_>>();
				Some(Job::chosen(&p, m("a"), m("bt")).unwrap())
			}
			_ => None,
		};
		if let Some(job) = job {
			let first = Miner::new(&job, &pre, d).unwrap().search(0..nonce + 1).unwrap();
			assert_eq!((first.seal, first.verified.digest), (seal.clone(), ticket), "{name}");
		}
	}
	// Seal lengths with Compact prefixes of one, two and four bytes.
	prefixes.sort();
	assert_eq!(prefixes, [1, 2, 4]);
}
