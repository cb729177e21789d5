//! Writes `consensus/vectors/v2.json`, the puzzle v2 golden vectors:
//! `cargo run --release -p mlpow-primitives --example gen-vectors-v2 > consensus/vectors/v2.json`
//!
//! Every field is described in `consensus/vectors/README.md`; the file is
//! checked by `tests/v2_vectors.rs` against the library and against an
//! independent transcription of `consensus/SPEC-v2.md`.

use mlpow_primitives::{
	kernel,
	v2::{noise, seal::encode_seeded, Job, Miner, Mode},
	verify, ChallengeParams, Hash32, Seal, U256,
};
use serde_json::{json, Value};

fn h(bytes: &[u8]) -> String {
	hex::encode(bytes)
}

fn i8_hex(v: &[i8]) -> String {
	hex::encode(v.iter().map(|&x| x as u8).collect::<Vec<_>>())
}

fn i32_blake3(v: &[i32]) -> String {
	let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
	h(blake3::hash(&bytes).as_bytes())
}

fn params_json(p: &ChallengeParams) -> Value {
	json!({"version": p.version, "m": p.m, "k": p.k, "n": p.n, "t": p.t, "r": p.r, "epoch_length": p.epoch_length})
}

/// A labelled arbitrary 32-byte value.
fn arbitrary(label: &str) -> Hash32 {
	*blake3::hash(label.as_bytes()).as_bytes()
}

/// A deterministic 7-bit matrix.
fn matrix(len: usize, label: &str) -> Vec<i8> {
	let mut out = vec![0i8; len];
	noise::stream_rows("mlpow v2 test vectors", &arbitrary(label), 1, 0, &mut out);
	out
}

fn case(name: &str, job: &Job, pre: &Hash32, ws: &Hash32, nonce: u64) -> Value {
	let p = *job.params();
	let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
	let c = job.commitments();
	let seed = noise::noise_seed(pre, &p, job.mode(), &c, nonce);
	let sel = noise::Selections::generate(&seed, p.k, p.r);
	let mut miner = Miner::new(job, pre, U256::one()).unwrap();
	let wins = miner.try_nonce(nonce);
	let mut product = vec![0; m * n];
	kernel::gemm(job.a(), job.bt(), m, n, k, &mut product);
	assert_eq!(miner.denoised().unwrap(), product);
	let last = wins.last().unwrap();
	assert_eq!(verify(&p, ws, pre, U256::one(), &last.seal).unwrap(), last.verified);
	let mut v = json!({
		"name": name,
		"params": params_json(&p),
		"pre_hash": h(pre),
		"weights_seed": h(ws),
		"mode": job.mode() as u8,
		"commit_a": h(&c.a),
		"commit_bt": h(&c.bt),
		"nonce": nonce.to_string(),
		"noise_seed": h(&seed),
		"selections_a": h(&sel.a),
		"selections_bt": h(&sel.bt),
		"states": miner.states().iter().map(|w| h(&w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>())).collect::<Vec<_>>(),
		"tickets": wins.iter().map(|w| h(&w.verified.digest)).collect::<Vec<_>>(),
		"noisy_product_blake3": i32_blake3(miner.noisy_product()),
		"product_blake3": i32_blake3(&product),
		"seal_of_last_tile": h(&last.seal),
	});
	if job.mode() == Mode::Chosen {
		v["a"] = json!(i8_hex(job.a()));
		v["bt"] = json!(i8_hex(job.bt()));
	}
	v
}

fn verify_case(name: &str, p: &ChallengeParams, pre: &Hash32, ws: &Hash32, d: U256, seal: &[u8]) -> Value {
	let r = verify(p, ws, pre, d, seal);
	json!({
		"name": name,
		"params": params_json(p),
		"pre_hash": h(pre),
		"weights_seed": h(ws),
		"difficulty": d.to_string(),
		"seal": h(seal),
		"outcome": match &r { Ok(_) => "Ok".to_string(), Err(e) => format!("{e:?}") },
		"digest": r.ok().map(|v| h(&v.digest)),
	})
}

fn main() {
	let pre = arbitrary("pre_hash");
	let ws = arbitrary("weights_seed");
	let small = ChallengeParams { m: 32, k: 128, n: 48, t: 16, r: 32, ..ChallengeParams::DEV_V2 };
	let (m, n, k) = (small.m as usize, small.n as usize, small.k as usize);
	let chosen = |a: Vec<i8>, bt: Vec<i8>| Job::chosen(&small, a, bt).unwrap();
	let v = matrix(k, "rank one v");
	let row = matrix(k, "repeated row");
	let cases = vec![
		case("seeded, dev", &Job::seeded(&ChallengeParams::DEV_V2, &pre, &ws).unwrap(), &pre, &ws, 7),
		case(
			"seeded, r = 64, nonce 2^64 - 1",
			&Job::seeded(&ChallengeParams { k: 128, r: 64, ..ChallengeParams::DEV_V2 }, &pre, &ws).unwrap(),
			&pre,
			&ws,
			u64::MAX,
		),
		case("chosen, random", &chosen(matrix(m * k, "A"), matrix(n * k, "Bt")), &pre, &ws, 0),
		case("chosen, zeros", &chosen(vec![0; m * k], vec![0; n * k]), &pre, &ws, 1),
		case(
			"chosen, rank one (row x of A is (x mod 2) * v, Bt random)",
			&chosen((0..m * k).map(|e| ((e / k) % 2) as i8 * v[e % k]).collect(), matrix(n * k, "Bt")),
			&pre,
			&ws,
			2,
		),
		case(
			"chosen, repeated rows",
			&chosen((0..m * k).map(|e| row[e % k]).collect(), (0..n * k).map(|e| row[e % k]).collect()),
			&pre,
			&ws,
			3,
		),
		case("chosen, extremes (A all -64, Bt all 63)", &chosen(vec![-64; m * k], vec![63; n * k]), &pre, &ws, 4),
		{
			// t = 64: rows 32 apart share a rotation, columns 16 apart a word.
			let p = ChallengeParams { m: 128, k: 64, n: 64, t: 64, r: 32, ..ChallengeParams::DEV_V2 };
			let job = Job::chosen(&p, matrix(128 * 64, "A64"), matrix(64 * 64, "Bt64")).unwrap();
			case("chosen, t = 64", &job, &pre, &ws, 5)
		},
	];

	// Verification outcomes, one for each way a seal can fail.
	let job = chosen(matrix(m * k, "A"), matrix(n * k, "Bt"));
	let mut miner = Miner::new(&job, &pre, U256::one()).unwrap();
	let win = miner.try_nonce(5).swap_remove(3); // tile (1, 0)
	let seal = win.seal;
	let rows = 16 * 128;
	let (a_at, bt_at) = (17 + 64, 17 + 64 + rows + 32);
	let edit = |at: usize, f: &dyn Fn(u8) -> u8| {
		let mut s = seal.clone();
		s[at] = f(s[at]);
		s
	};
	let d = U256::from(3);
	let hard = U256::MAX;
	let seeded = encode_seeded(&Seal { nonce: 5, tile_i: 1, tile_j: 0 });
	let vc = |name: &str, p: &ChallengeParams, d: U256, s: &[u8]| verify_case(name, p, &pre, &ws, d, s);
	let verify_cases = vec![
		vc("chosen seal, every ticket wins at difficulty 1", &small, U256::one(), &seal),
		vc("chosen seal at difficulty 3", &small, d, &seal),
		vc("chosen seal at difficulty 2^256 - 1", &small, hard, &seal),
		vc("seeded seal at difficulty 1", &small, U256::one(), &seeded),
		vc("seeded seal at difficulty 2^256 - 1", &small, hard, &seeded),
		vc("zero difficulty", &small, U256::zero(), &seal),
		vc("r = 48", &ChallengeParams { r: 48, ..small }, d, &seal),
		vc("2*t*k = 2^20", &ChallengeParams { m: 64, n: 64, t: 32, k: 16384, ..small }, d, &seal),
		vc("16-byte (v1) seal", &small, d, &seal[..16]),
		vc("mode byte 2", &small, d, &{
			let mut s = seeded.clone();
			s[16] = 2;
			s
		}),
		vc("chosen seal without its openings", &small, d, &seal[..17]),
		vc("chosen seal one byte short", &small, d, &seal[..seal.len() - 1]),
		vc("chosen seal one byte long", &small, d, &[&seal[..], &[0]].concat()),
		vc("tile_i = m/t", &small, d, &{
			let mut s = seal.clone();
			s[8..12].copy_from_slice(&2u32.to_le_bytes());
			s
		}),
		vc("an opened A value of 64", &small, d, &edit(a_at + 9, &|_| 64)),
		vc("an opened Bt value of -65", &small, d, &edit(bt_at + 9, &|_| (-65i8) as u8)),
		vc("an opened A value changed, in range", &small, d, &edit(a_at + 9, &|b| ((b as i8) ^ 1) as u8)),
		vc("an opened Bt value changed, in range", &small, d, &edit(bt_at, &|b| ((b as i8) ^ 2) as u8)),
		vc("a path hash changed", &small, d, &edit(a_at + rows, &|b| b ^ 1)),
		vc("commit_bt changed", &small, d, &edit(17 + 32, &|b| b ^ 1)),
		vc("the openings of tile (1, 0) claimed for tile (0, 0)", &small, d, &{
			let mut s = seal.clone();
			s[8..12].copy_from_slice(&0u32.to_le_bytes());
			s
		}),
	];
	let file = json!({
		"comment": "Puzzle v2 golden vectors (consensus/SPEC-v2.md); fields in consensus/vectors/README.md. Generated by: cargo run --release -p mlpow-primitives --example gen-vectors-v2",
		"cases": cases,
		"verify_cases": verify_cases,
	});
	println!("{}", serde_json::to_string_pretty(&file).unwrap());
}
