//! Writes `consensus/vectors/v2.json`, the puzzle v2 golden vectors:
//! `cargo run --release -p mlpow-primitives --example gen-vectors-v2 > consensus/vectors/v2.json`
//!
//! Only after a deliberate change of the v2 rules (with SPEC-v2.md) or of the
//! file's layout. Every field is described in `consensus/vectors/README.md`;
//! the file is checked by `tests/v2_vectors.rs` against the library and
//! against an independent transcription of `consensus/SPEC-v2.md`, by
//! `runtime/tests/header_vectors.rs` (headers, `verify_seal`) and by
//! `gpu-worker/tests/kernels_on_host_v2.rs` (the CUDA kernels on the host).

use blake2::{digest::consts::U32, Blake2b, Digest};
use codec::{Compact, Encode};
use mlpow_primitives::{
	kernel,
	stream::{job_seed, weights_seed},
	v2::{
		noise::{self, Commitments},
		seal::encode_seeded,
		Job, Miner, Mode,
	},
	verify, ChallengeParams, Hash32, Seal, VerifyError, U256,
};
use serde_json::{json, Value};

/// The dev chain's genesis difficulty (`runtime/src/genesis_config_presets.rs`,
/// the `dev-v2` chain's too): the difficulty of the seeded header vector.
const DEV_GENESIS_DIFFICULTY: u64 = 200_000;

/// Alice's sr25519 public key (`//Alice`), the author in the header vectors.
const ALICE: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

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
	// Every seal that passes the checks before the target has a ticket, a
	// losing one included: the same seal at difficulty 1, where all win.
	let ticket = match &r {
		Ok(v) => Some(v.digest),
		Err(VerifyError::AboveTarget) => Some(verify(p, ws, pre, U256::one(), seal).unwrap().digest),
		Err(_) => None,
	};
	// `verify_seal(pre_hash, seal)`: the arguments up to the seal bytes, and
	// the result (`SealCheck` is the digest alone, so it encodes as one).
	let mut args_head = pre.to_vec();
	args_head.extend(Compact(seal.len() as u32).encode());
	assert_eq!([&args_head[..], seal].concat(), (pre, seal.to_vec()).encode());
	json!({
		"name": name,
		"params": params_json(p),
		"pre_hash": h(pre),
		"weights_seed": h(ws),
		"difficulty": d.to_string(),
		"seal": h(seal),
		"outcome": match &r { Ok(_) => "Ok".to_string(), Err(e) => format!("{e:?}") },
		"digest": r.ok().map(|v| h(&v.digest)),
		"ticket": ticket.map(|t| h(&t)),
		"args_scale_head": h(&args_head),
		"result_scale": h(&r.map(|v| v.digest).encode()),
	})
}

fn blake2_256(data: &[u8]) -> Hash32 {
	Blake2b::<U32>::digest(data).into()
}

/// `sp_runtime::generic::DigestItem`, the variants the headers use.
#[derive(Encode, Clone)]
enum DigestItem {
	#[codec(index = 5)]
	Seal([u8; 4], Vec<u8>),
	#[codec(index = 6)]
	PreRuntime([u8; 4], Vec<u8>),
	#[codec(index = 8)]
	RuntimeEnvironmentUpdated,
}

/// `sp_runtime::generic::Header<u32, BlakeTwo256>`, field for field.
#[derive(Encode)]
struct Header {
	parent_hash: Hash32,
	#[codec(compact)]
	number: u32,
	state_root: Hash32,
	extrinsics_root: Hash32,
	digest: Vec<DigestItem>,
}

fn digest_log(item: &DigestItem) -> Value {
	let scale = h(&item.encode());
	match item {
		DigestItem::PreRuntime(id, data) => json!({
			"kind": "PreRuntime",
			"engine_id": String::from_utf8(id.to_vec()).unwrap(),
			"data": h(data),
			"scale": scale,
		}),
		DigestItem::RuntimeEnvironmentUpdated => {
			json!({"kind": "RuntimeEnvironmentUpdated", "engine_id": null, "data": null, "scale": scale})
		}
		DigestItem::Seal(..) => unreachable!("the seal is not among the items before it"),
	}
}

/// A v2 header sealed with the first winning ticket for it in (nonce,
/// tile_i, tile_j) order, of the job `job` makes for its `pre_hash`.
#[allow(clippy::too_many_arguments)]
fn header(
	name: &str,
	number: u32,
	digest: Vec<DigestItem>,
	p: &ChallengeParams,
	ws: &Hash32,
	difficulty: u64,
	matrices_of_case: Option<&str>,
	job: &dyn Fn(&Hash32) -> Job,
) -> Value {
	let mut hd = Header {
		parent_hash: arbitrary(&format!("parent_hash {name}")),
		number,
		state_root: arbitrary(&format!("state_root {name}")),
		extrinsics_root: arbitrary(&format!("extrinsics_root {name}")),
		digest: digest.clone(),
	};
	let unsealed = hd.encode();
	let pre = blake2_256(&unsealed);
	let job = job(&pre);
	let d = U256::from(difficulty);
	let win = Miner::new(&job, &pre, d).unwrap().search(0..u64::MAX).expect("a winner");
	assert_eq!(verify(p, ws, &pre, d, &win.seal), Ok(win.verified));
	let seal_item = DigestItem::Seal(*b"pow_", win.seal.clone());
	let item = seal_item.encode();
	let head = &item[..item.len() - win.seal.len()];
	hd.digest.push(seal_item);
	let sealed = hd.encode();
	let id = win.verified.seal;
	json!({
		"name": name,
		"parent_hash": h(&hd.parent_hash),
		"number": number,
		"state_root": h(&hd.state_root),
		"extrinsics_root": h(&hd.extrinsics_root),
		"digest": digest.iter().map(digest_log).collect::<Vec<_>>(),
		"unsealed_scale": h(&unsealed),
		"pre_hash": h(&pre),
		"params": params_json(p),
		"weights_seed": h(ws),
		"difficulty": difficulty.to_string(),
		"mode": job.mode() as u8,
		"matrices_of_case": matrices_of_case,
		"seal": {
			"nonce": id.nonce.to_string(),
			"tile_i": id.tile_i,
			"tile_j": id.tile_j,
			"bytes": h(&win.seal),
			"ticket": h(&win.verified.digest),
		},
		"seal_item_head": h(head),
		"sealed_scale": h(&sealed),
		"block_hash": h(&blake2_256(&sealed)),
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
	// r = 128 (the largest rank: two chunks), and k = 96: three chunks of
	// 32, rows 96 bytes long, so odd rows start 32 bytes into a 64-byte
	// block of their stream (as do odd noise rows, r = 32).
	let r128 = ChallengeParams { m: 32, k: 256, n: 48, t: 16, r: 128, ..ChallengeParams::DEV_V2 };
	let k96 = ChallengeParams { m: 48, k: 96, n: 32, t: 16, r: 32, ..ChallengeParams::DEV_V2 };
	let chosen_in = |p: &ChallengeParams, label: &str| {
		let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
		Job::chosen(p, matrix(m * k, &format!("A {label}")), matrix(n * k, &format!("Bt {label}"))).unwrap()
	};
	let (r128_seeded, r128_chosen) = (Job::seeded(&r128, &pre, &ws).unwrap(), chosen_in(&r128, "r = 128"));
	let (k96_seeded, k96_chosen) = (Job::seeded(&k96, &pre, &ws).unwrap(), chosen_in(&k96, "k = 96"));
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
		case("seeded, r = 128", &r128_seeded, &pre, &ws, 9),
		case("chosen, r = 128", &r128_chosen, &pre, &ws, 10),
		case("seeded, k = 96 (odd rows start 32 bytes into a 64-byte block)", &k96_seeded, &pre, &ws, 11),
		case("chosen, k = 96 (odd rows start 32 bytes into a 64-byte block)", &k96_chosen, &pre, &ws, 12),
	];

	// Verification outcomes, one for each way a seal can fail.
	let job = chosen(matrix(m * k, "A"), matrix(n * k, "Bt"));
	let mut miner = Miner::new(&job, &pre, U256::one()).unwrap();
	let win = miner.try_nonce(5).swap_remove(3); // tile (1, 0)
	let seal = win.seal;
	let rows = 16 * 128;
	// Where the parts of the chosen seal start: A's rows, A's path (one
	// hash, 2 leaves), Bt's rows, Bt's path (two hashes, 3 leaves).
	let (a_at, bt_at) = (17 + 64, 17 + 64 + rows + 32);
	let edit_all = |edits: &[(usize, &dyn Fn(u8) -> u8)]| {
		let mut s = seal.clone();
		for (at, f) in edits {
			s[*at] = f(s[*at]);
		}
		s
	};
	let edit = |at: usize, f: &dyn Fn(u8) -> u8| edit_all(&[(at, f)]);
	let d = U256::from(3);
	let hard = U256::MAX;
	let seeded = encode_seeded(&Seal { nonce: 5, tile_i: 1, tile_j: 0 });
	let with_tile = |s: &[u8], i: u32, j: u32| {
		let mut s = s.to_vec();
		s[8..12].copy_from_slice(&i.to_le_bytes());
		s[12..16].copy_from_slice(&j.to_le_bytes());
		s
	};
	let vc = |name: &str, p: &ChallengeParams, d: U256, s: &[u8]| verify_case(name, p, &pre, &ws, d, s);
	let to_64 = |_| 64u8;
	let flip = |b: u8| b ^ 1;
	let mut verify_cases = vec![
		vc("chosen seal, every ticket wins at difficulty 1", &small, U256::one(), &seal),
		vc("chosen seal at difficulty 3", &small, d, &seal),
		vc("chosen seal at difficulty 2^256 - 1", &small, hard, &seal),
		vc("seeded seal at difficulty 1", &small, U256::one(), &seeded),
		vc("seeded seal at difficulty 2^256 - 1", &small, hard, &seeded),
		vc("zero difficulty", &small, U256::zero(), &seal),
		vc("r = 48", &ChallengeParams { r: 48, ..small }, d, &seal),
		vc("k = 1056 > r*r = 1024", &ChallengeParams { k: 1056, ..small }, d, &seal),
		vc("2*t*k = 2^20 (r = 128)", &ChallengeParams { m: 64, n: 64, t: 32, k: 16384, r: 128, ..small }, d, &seal),
		vc("16-byte (v1) seal", &small, d, &seal[..16]),
		vc("mode byte 2", &small, d, &{
			let mut s = seeded.clone();
			s[16] = 2;
			s
		}),
		vc("seeded seal of 18 bytes", &small, d, &[&seeded[..], &[0]].concat()),
		vc("mode byte 0 (seeded) with a chosen seal's length", &small, d, &{
			let mut s = seal.clone();
			s[16] = 0;
			s
		}),
		vc("chosen seal without its openings", &small, d, &seal[..17]),
		vc("chosen seal one byte short", &small, d, &seal[..seal.len() - 1]),
		vc("chosen seal one byte long", &small, d, &[&seal[..], &[0]].concat()),
		vc("tile_i = m/t", &small, d, &with_tile(&seal, 2, 0)),
		vc("tile_j = n/t, seeded", &small, d, &with_tile(&seeded, 1, 3)),
		vc("an opened A value of 64", &small, d, &edit(a_at + 9, &to_64)),
		vc("an opened Bt value of -65", &small, d, &edit(bt_at + 9, &|_| (-65i8) as u8)),
		vc("an opened A value changed, in range", &small, d, &edit(a_at + 9, &|b| ((b as i8) ^ 1) as u8)),
		vc("an opened Bt value changed, in range", &small, d, &edit(bt_at, &|b| ((b as i8) ^ 2) as u8)),
		vc("an A path hash changed", &small, d, &edit(a_at + rows, &flip)),
		vc("a Bt path hash changed (the last byte of the seal)", &small, d, &edit(seal.len() - 1, &flip)),
		vc("commit_a changed", &small, d, &edit(17, &flip)),
		vc("commit_bt changed", &small, d, &edit(17 + 32, &flip)),
		vc("the openings of tile (1, 0) claimed for tile (0, 0)", &small, d, &with_tile(&seal, 0, 0)),
		// Two faults: the first check's error (SPEC-v2 "Verifying a v2 seal").
		vc("order, steps 1 and 2: r = 48 and difficulty 0", &ChallengeParams { r: 48, ..small }, U256::zero(), &seal),
		vc(
			"order, rules 9 and 10: epoch_length 0 and r = 48",
			&ChallengeParams { r: 48, epoch_length: 0, ..small },
			d,
			&seal,
		),
		vc(
			"order, rules 10 and 11: k > r*r and 2*t*k = 2^20",
			&ChallengeParams { m: 64, n: 64, t: 32, k: 16384, r: 32, ..small },
			d,
			&seal,
		),
		vc("order, steps 2 and 3: difficulty 0 and a 16-byte seal", &small, U256::zero(), &seal[..16]),
		vc("order, steps 3 and 4: an 18-byte seeded seal with tile_i = m/t", &small, d, &{
			[&with_tile(&seeded, 2, 0)[..], &[0]].concat()
		}),
		vc("order, steps 4 and 5: tile_i = m/t and an opened A value of 64", &small, d, &{
			let mut s = edit(a_at + 9, &to_64);
			s[8..12].copy_from_slice(&2u32.to_le_bytes());
			s
		}),
		vc(
			"order, steps 5.1 and 5.2: an opened Bt value of 64 and an A path hash changed",
			&small,
			d,
			&edit_all(&[(a_at + rows, &flip), (bt_at + rows - 1, &to_64)]),
		),
		vc(
			"order, steps 5.2 and 5.3: an A path hash and a Bt path hash changed",
			&small,
			d,
			&edit_all(&[(a_at + rows, &flip), (seal.len() - 1, &flip)]),
		),
		vc("order, steps 5 and 7: commit_a changed, at difficulty 2^256 - 1", &small, hard, &edit(17, &flip)),
		vc(
			"order, steps 4 and 7: seeded, tile_j = n/t, at difficulty 2^256 - 1",
			&small,
			hard,
			&with_tile(&seeded, 0, 3),
		),
		// r = 128 and k = 96 (rows off the 64-byte grid), single tiles.
		vc("seeded, r = 128, tile (1, 2), difficulty 1", &r128, U256::one(), &r128_seeded.seal(&sid(10, 1, 2))),
		vc("chosen, r = 128, tile (1, 1), difficulty 2", &r128, U256::from(2), &r128_chosen.seal(&sid(10, 1, 1))),
		vc("seeded, k = 96, tile (1, 1), difficulty 1", &k96, U256::one(), &k96_seeded.seal(&sid(11, 1, 1))),
		vc("chosen, k = 96, tile (2, 0), difficulty 1", &k96, U256::one(), &k96_chosen.seal(&sid(12, 2, 0))),
	];

	let (gpu, gpu_cases) = gpu_set();
	verify_cases.extend(gpu_cases);

	// Headers: sealed for the dev-v2 chain's genesis challenge (seeded), and
	// for chosen matrices whose seals need two and four bytes of length.
	let genesis_ws = weights_seed(&[0; 32], 0);
	let alice: Hash32 = hex::decode(ALICE).unwrap().try_into().unwrap();
	// The payload is the SCALE of an AccountId32: its 32 bytes, no length.
	let author = DigestItem::PreRuntime(*b"pow_", alice.encode());
	let dev = ChallengeParams::DEV_V2;
	let k512 = ChallengeParams { m: 32, k: 512, n: 32, t: 16, r: 32, ..ChallengeParams::DEV_V2 };
	let headers = vec![
		header(
			"seeded, dev-v2 genesis challenge, block 1",
			1,
			vec![author.clone()],
			&dev,
			&genesis_ws,
			DEV_GENESIS_DIFFICULTY,
			None,
			&|pre| Job::seeded(&dev, pre, &genesis_ws).unwrap(),
		),
		header(
			"chosen (the matrices of case \"chosen, random\"), two-byte seal length",
			1_000,
			vec![author, DigestItem::RuntimeEnvironmentUpdated],
			&small,
			&genesis_ws,
			DEV_GENESIS_DIFFICULTY,
			Some("chosen, random"),
			&|_| chosen(matrix(m * k, "A"), matrix(n * k, "Bt")),
		),
		header(
			"chosen, k = 512, four-byte seal length, no author",
			u32::MAX,
			vec![],
			&k512,
			&genesis_ws,
			1_000,
			None,
			&|_| chosen_in(&k512, "k = 512"),
		),
	];
	let file = json!({
		"comment": "Puzzle v2 golden vectors (consensus/SPEC-v2.md); fields in consensus/vectors/README.md. Generated by: cargo run --release -p mlpow-primitives --example gen-vectors-v2",
		"cases": cases,
		"verify_cases": verify_cases,
		"gpu": gpu,
		"headers": headers,
	});
	println!("{}", serde_json::to_string_pretty(&file).unwrap());
}

fn sid(nonce: u64, tile_i: u32, tile_j: u32) -> Seal {
	Seal { nonce, tile_i, tile_j }
}

/// The GPU parameters, seeded: single tiles (the matrices are 64 MiB), the
/// first winning tile of a nonce, and verification cases at that size.
fn gpu_set() -> (Value, Vec<Value>) {
	let p = ChallengeParams::GPU_V2;
	let pre = arbitrary("pre_hash gpu");
	let ws = weights_seed(&arbitrary("epoch anchor gpu"), 3);
	let js = job_seed(&pre, &ws);
	let nonce = 0u64;
	let seed = noise::noise_seed(&pre, &p, Mode::Seeded, &Commitments { a: js, bt: ws }, nonce);
	let ticket = |nonce, i, j| verify(&p, &ws, &pre, U256::one(), &encode_seeded(&sid(nonce, i, j))).unwrap().digest;
	let (lm, ln) = (p.tiles_m() - 1, p.tiles_n() - 1);
	let picks = [(0, 0), (0, 1), (1, 0), (lm / 2, ln * 3 / 5), (lm, ln)];
	let tickets: Vec<Value> =
		picks.iter().map(|&(i, j)| json!({"tile_i": i, "tile_j": j, "ticket": h(&ticket(nonce, i, j))})).collect();
	let d = U256::from(1000);
	let tiles_n = p.tiles_n();
	let (index, first) = (0..p.tickets_per_nonce() as u32)
		.find_map(|idx| {
			let seal = encode_seeded(&sid(nonce, idx / tiles_n, idx % tiles_n));
			verify(&p, &ws, &pre, d, &seal).ok().map(|v| (idx, (seal, v)))
		})
		.expect("a winner among 2^18 tiles at difficulty 1000");
	let (seal, won) = first;
	let max_winning = U256::MAX / U256::from_big_endian(&won.digest);
	let last = encode_seeded(&sid(u64::MAX, lm, ln));
	let vc = |name: &str, d: U256, s: &[u8]| verify_case(name, &p, &pre, &ws, d, s);
	let cases = vec![
		vc("GPU parameters, seeded: the first winning tile of nonce 0 at difficulty 1000", d, &seal),
		vc("GPU parameters, seeded: that tile at the largest difficulty it wins", max_winning, &seal),
		vc("GPU parameters, seeded: that tile at one more, a losing ticket", max_winning + 1, &seal),
		vc("GPU parameters, seeded: nonce 2^64 - 1, the last tile, difficulty 1", U256::one(), &last),
	];
	let gpu = json!({
		"name": "GPU parameters, seeded",
		"params": params_json(&p),
		"pre_hash": h(&pre),
		"weights_seed": h(&ws),
		"job_seed": h(&js),
		"nonce": nonce.to_string(),
		"noise_seed": h(&seed),
		"tickets": tickets,
		"difficulty": d.to_string(),
		"first_winner": {
			"tile_i": won.seal.tile_i,
			"tile_j": won.seal.tile_j,
			"tile_index": index,
			"seal": h(&seal),
			"ticket": h(&won.digest),
		},
	});
	(gpu, cases)
}
