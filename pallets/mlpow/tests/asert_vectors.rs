//! ASERT golden vectors, `consensus/vectors/asert.json`, checked two ways:
//! against `pallet_mlpow::asert::next_difficulty` (the code the runtime
//! runs) and against `spec`, a transcription of SPEC.md "The retarget, step
//! by step" written here without calling the pallet.
//!
//! The file is generated from `CASES` below by the pallet's function; after
//! a deliberate change of the cases (never of the rule), regenerate it with
//! `MLPOW_WRITE_ASERT_VECTORS=1 cargo test -p pallet-mlpow --test asert_vectors`.
//! Its fields are described in `consensus/vectors/README.md`.

use pallet_mlpow::asert::{next_difficulty, Anchor};
use serde::{Deserialize, Serialize};
use sp_core::{U256, U512};

fn path() -> std::path::PathBuf {
	mlpow_vectors::path("asert.json")
}

/// The dev and local presets' launch time (ms since the Unix epoch).
const LAUNCH: u64 = 1_795_737_600_000;
/// The dev chain's target block time and half-life (16 blocks).
const T: u64 = 3_000;
const TAU: u64 = 16 * T;
/// The runtime's `MinDifficulty` and `MaxDifficulty` (2^192).
const MIN: u64 = 1_000;
fn max_difficulty() -> U256 {
	U256::one() << 192
}

/// Decimal strings for integers wider than 2^53 (JSON numbers are doubles).
mod dec {
	use serde::{de::Error, Deserialize, Deserializer, Serializer};
	use std::{fmt::Display, str::FromStr};

	pub fn serialize<V: Display, S: Serializer>(v: &V, s: S) -> Result<S::Ok, S::Error> {
		s.serialize_str(&v.to_string())
	}

	pub fn deserialize<'de, V: FromStr, D: Deserializer<'de>>(d: D) -> Result<V, D::Error>
	where
		V::Err: Display,
	{
		String::deserialize(d)?.parse().map_err(D::Error::custom)
	}
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct AsertFile {
	comment: String,
	vectors: Vec<Vector>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Vector {
	name: String,
	#[serde(with = "dec")]
	anchor_height: u64,
	#[serde(with = "dec")]
	anchor_timestamp_ms: u64,
	#[serde(with = "dec")]
	anchor_difficulty: U256Dec,
	#[serde(with = "dec")]
	height: u64,
	#[serde(with = "dec")]
	timestamp_ms: u64,
	#[serde(with = "dec")]
	target_ms: u64,
	#[serde(with = "dec")]
	half_life_ms: u64,
	#[serde(with = "dec")]
	min: U256Dec,
	#[serde(with = "dec")]
	max: U256Dec,
	/// Intermediates of SPEC's steps, to find where a port goes wrong.
	#[serde(with = "dec")]
	ahead_ms: i128,
	#[serde(with = "dec")]
	exponent: i128,
	#[serde(with = "dec")]
	shifts: i128,
	frac: u32,
	pow2_frac: u32,
	#[serde(with = "dec")]
	next_difficulty: U256Dec,
}

/// A U256 that prints and parses as a decimal number.
#[derive(Debug, PartialEq, Clone, Copy)]
struct U256Dec(U256);

impl std::fmt::Display for U256Dec {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		write!(f, "{}", self.0)
	}
}

impl std::str::FromStr for U256Dec {
	type Err = String;
	fn from_str(s: &str) -> Result<Self, String> {
		U256::from_dec_str(s).map(U256Dec).map_err(|e| format!("{e:?}"))
	}
}

/// SPEC.md, "The retarget, step by step", transcribed.
mod spec {
	use super::*;

	pub struct Steps {
		pub ahead: i128,
		pub exponent: i128,
		pub shifts: i128,
		pub frac: u128,
		pub pow2_frac: u128,
		pub next: U256,
	}

	/// `floor(2^16 * 2^(frac / 2^16))`, approximately: aserti3-2d's cubic.
	pub fn pow2_frac(frac: u128) -> u128 {
		let poly = 195_766_423_245_049 * frac + 971_821_376 * frac * frac + 5_127 * frac * frac * frac + (1 << 47);
		65_536 + (poly >> 48)
	}

	/// `exponent_of` maps `ahead * 65536` and `tau` to the exponent: SPEC
	/// truncates toward zero; tests pass floor division to show it matters.
	pub fn steps(v: &Vector, exponent_of: fn(i128, i128) -> i128) -> Steps {
		let target = v.target_ms.max(1) as i128;
		let tau = v.half_life_ms.max(1) as i128;
		let blocks = if v.height >= v.anchor_height { (v.height - v.anchor_height) as i128 } else { 0 };
		let ahead = target * blocks - (v.timestamp_ms as i128 - v.anchor_timestamp_ms as i128);
		let exponent = exponent_of(ahead * 65_536, tau);
		let shifts = exponent.div_euclid(65_536);
		let frac = exponent.rem_euclid(65_536) as u128;
		let pow2_frac = pow2_frac(frac);
		let (min, max) = (v.min.0, v.max.0);
		let next = if shifts > 512 {
			max
		} else if shifts < -512 {
			min
		} else {
			// D_a * p < 2^256 * 2^18: 512 bits hold it. The result is
			// floor(D_a * p * 2^shifts / 2^16), capped at 2^256 - 1.
			let x = U512::from(v.anchor_difficulty.0) * U512::from(pow2_frac);
			let s = shifts - 16;
			let value = if s >= 0 {
				if x.is_zero() {
					U256::zero()
				} else if x.bits() as i128 + s > 256 {
					U256::MAX
				} else {
					U256::try_from(x << s as usize).unwrap()
				}
			} else if -s >= 512 {
				U256::zero()
			} else {
				U256::try_from(x >> (-s) as usize).unwrap_or(U256::MAX)
			};
			value.max(min).min(max.max(min))
		};
		Steps { ahead, exponent, shifts, frac, pow2_frac, next }
	}

	/// Division truncating toward zero, written out (not Rust's `/`).
	pub fn truncating(num: i128, den: i128) -> i128 {
		let q = (num.unsigned_abs() / den as u128) as i128;
		if num < 0 {
			-q
		} else {
			q
		}
	}

	pub fn flooring(num: i128, den: i128) -> i128 {
		num.div_euclid(den)
	}
}

struct Case {
	name: &'static str,
	anchor: (u64, u64, U256),
	height: u64,
	timestamp: u64,
	target: u64,
	half_life: u64,
	min: U256,
	max: U256,
}

/// Block 1 of a dev chain launched on time, at the dev genesis difficulty.
fn dev(name: &'static str, height: u64, timestamp: u64) -> Case {
	Case {
		name,
		anchor: (1, LAUNCH, U256::from(200_000)),
		height,
		timestamp,
		target: T,
		half_life: TAU,
		min: U256::from(MIN),
		max: max_difficulty(),
	}
}

/// The cases whose exponent is negative and not a whole multiple: there
/// truncation toward zero and floor division give different difficulties.
const TRUNCATION_CASES: [&str; 3] = [
	"1 ms behind schedule",
	"1.5 half-lives and 1 ms behind, anchor 10^9",
	"512-bit intermediate: anchor 2^256-1, 1 ms behind",
];

fn cases() -> Vec<Case> {
	let u256_max = U256::MAX;
	let big = |name, d: U256, height, timestamp, min: U256, max: U256| Case {
		anchor: (1, LAUNCH, d),
		min,
		max,
		..dev(name, height, timestamp)
	};
	let reanchored = |name, height, timestamp| Case {
		anchor: (5_000, LAUNCH + 15_000_000, U256::from(300_000)),
		..dev(name, height, timestamp)
	};
	vec![
		dev("block 2 on schedule", 2, LAUNCH + T),
		dev("100 blocks on schedule", 101, LAUNCH + 100 * T),
		dev("one half-life ahead: exactly double", 33, LAUNCH + 48_000),
		dev("two half-lives behind: exactly a quarter", 11, LAUNCH + 30_000 + 2 * TAU),
		dev("1 ms ahead of schedule", 11, LAUNCH + 30_000 - 1),
		dev("1 ms behind schedule", 11, LAUNCH + 30_000 + 1),
		// A large anchor difficulty, so that one unit of the exponent shows.
		big(
			"1.5 half-lives and 1 ms behind, anchor 10^9",
			U256::from(1_000_000_000u64),
			11,
			LAUNCH + 30_000 + 72_001,
			U256::from(MIN),
			max_difficulty(),
		),
		dev("12345 ms ahead", 11, LAUNCH + 30_000 - 12_345),
		dev("timestamp before the anchor's", 1, LAUNCH - T),
		dev("ten half-lives behind: clamped to the floor", 11, LAUNCH + 30_000 + 10 * TAU),
		Case {
			min: U256::from(262_144u64),
			..dev("floor of the GPU preset's tickets per nonce", 11, LAUNCH + 30_000 + TAU)
		},
		big("clamped to MaxDifficulty", U256::one() << 191, 65, LAUNCH + 96_000, U256::from(MIN), max_difficulty()),
		big("shifts = 512: saturates", U256::from(200_000), 8_193, LAUNCH, U256::from(MIN), u256_max),
		big("shifts = 513: max", U256::from(200_000), 8_209, LAUNCH, U256::from(MIN), u256_max),
		big("shifts = -512: min", U256::from(200_000), 1, LAUNCH + 512 * TAU, U256::one(), u256_max),
		big("shifts = -513: min", U256::from(200_000), 1, LAUNCH + 513 * TAU, U256::one(), u256_max),
		dev("huge lateness: timestamp 2^64-1", 2, u64::MAX),
		dev("huge earliness: block 2^32-1 50 ms after the anchor", u32::MAX as u64, LAUNCH + 50),
		big("512-bit intermediate: anchor 2^256-1, 1 ms behind", u256_max, 11, LAUNCH + 30_001, U256::one(), u256_max),
		big(
			"512-bit intermediate: anchor 2^256-1, 240 half-lives behind",
			u256_max,
			1,
			LAUNCH + 240 * TAU,
			U256::one(),
			u256_max,
		),
		big(
			"anchor difficulty 0, shifts = 512 (unreachable on chain)",
			U256::zero(),
			8_193,
			LAUNCH,
			U256::one(),
			u256_max,
		),
		big(
			"anchor difficulty 0, shifts = 513 (unreachable on chain)",
			U256::zero(),
			8_209,
			LAUNCH,
			U256::one(),
			u256_max,
		),
		reanchored("re-anchored by governance at block 5000; block 5001 on schedule", 5_001, LAUNCH + 15_003_000),
		reanchored("re-anchored at block 5000; block 5001 50 ms after it", 5_001, LAUNCH + 15_000_050),
		reanchored("height below the anchor counts as 0 blocks", 4_999, LAUNCH + 15_003_000),
		Case {
			target: 6_000,
			half_life: 96_000,
			..dev("local testnet: 6 s target, 96 s half-life", 41, LAUNCH + 250_017)
		},
		Case {
			target: 0,
			half_life: 0,
			..dev("target and half-life 0 count as 1 ms (unreachable on chain)", 2, LAUNCH)
		},
	]
}

fn generate() -> AsertFile {
	let vectors = cases()
		.into_iter()
		.map(|c| {
			let (h_a, t_a, d_a) = c.anchor;
			let anchor = Anchor { height: h_a, timestamp: t_a, difficulty: d_a };
			let next = next_difficulty(&anchor, c.height, c.timestamp, c.target, c.half_life, c.min, c.max);
			let mut v = Vector {
				name: c.name.into(),
				anchor_height: h_a,
				anchor_timestamp_ms: t_a,
				anchor_difficulty: U256Dec(d_a),
				height: c.height,
				timestamp_ms: c.timestamp,
				target_ms: c.target,
				half_life_ms: c.half_life,
				min: U256Dec(c.min),
				max: U256Dec(c.max),
				ahead_ms: 0,
				exponent: 0,
				shifts: 0,
				frac: 0,
				pow2_frac: 0,
				next_difficulty: U256Dec(next),
			};
			let s = spec::steps(&v, spec::truncating);
			(v.ahead_ms, v.exponent, v.shifts) = (s.ahead, s.exponent, s.shifts);
			(v.frac, v.pow2_frac) = (s.frac as u32, s.pow2_frac as u32);
			v
		})
		.collect();
	AsertFile {
		comment: "ASERT retarget vectors; the algorithm is consensus/SPEC.md \"The retarget, step by step\", \
			fields in consensus/vectors/README.md; generated by pallets/mlpow/tests/asert_vectors.rs"
			.into(),
		vectors,
	}
}

fn load() -> AsertFile {
	let text = std::fs::read_to_string(path()).expect("consensus/vectors/asert.json exists");
	serde_json::from_str(&text).expect("asert.json parses")
}

#[test]
fn the_file_is_what_the_cases_generate() {
	let text = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
	if std::env::var_os("MLPOW_WRITE_ASERT_VECTORS").is_some() {
		// Renamed into place whole: the other tests read the file meanwhile.
		let tmp = path().with_extension("json.tmp");
		std::fs::write(&tmp, &text).unwrap();
		std::fs::rename(&tmp, path()).unwrap();
	}
	let on_disk = std::fs::read_to_string(path()).expect("consensus/vectors/asert.json exists");
	assert!(on_disk == text, "asert.json is stale: regenerate it (see this file's doc comment)");
}

#[test]
fn the_pallet_reproduces_every_vector() {
	for v in load().vectors {
		let anchor =
			Anchor { height: v.anchor_height, timestamp: v.anchor_timestamp_ms, difficulty: v.anchor_difficulty.0 };
		let got = next_difficulty(&anchor, v.height, v.timestamp_ms, v.target_ms, v.half_life_ms, v.min.0, v.max.0);
		assert_eq!(got, v.next_difficulty.0, "{}", v.name);
	}
}

#[test]
fn the_spec_reproduces_every_vector_and_its_steps() {
	for v in load().vectors {
		let s = spec::steps(&v, spec::truncating);
		assert_eq!((s.ahead, s.exponent, s.shifts), (v.ahead_ms, v.exponent, v.shifts), "{}", v.name);
		assert_eq!((s.frac, s.pow2_frac), (v.frac as u128, v.pow2_frac as u128), "{}", v.name);
		assert_eq!(s.next, v.next_difficulty.0, "{}", v.name);
	}
}

/// JavaScript reads JSON numbers as doubles: only `frac` and `pow2_frac`
/// (below 2^18) are numbers; everything wider is a decimal string.
#[test]
fn wide_integers_are_decimal_strings() {
	let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
	for v in file["vectors"].as_array().unwrap() {
		for (field, value) in v.as_object().unwrap() {
			let number = matches!(field.as_str(), "frac" | "pow2_frac");
			assert_eq!(value.is_number(), number, "{field}: {value}");
			assert!(number || value.is_string(), "{field}: {value}");
		}
	}
}

/// The vectors pin what a port is most likely to get wrong.
#[test]
fn the_vectors_cover_the_edges() {
	let vectors = load().vectors;
	for name in TRUNCATION_CASES {
		let v = vectors.iter().find(|v| v.name == name).expect(name);
		let floored = spec::steps(v, spec::flooring);
		assert!(v.exponent < 0 && floored.exponent == v.exponent - 1, "{name}");
		assert_ne!(floored.next, v.next_difficulty.0, "{name}: floor division must give another difficulty");
	}
	let has = |f: &dyn Fn(&Vector) -> bool| vectors.iter().any(f);
	assert!(has(&|v| v.exponent != 0 && v.frac == 0), "an exact multiple of the half-life");
	assert!(has(&|v| v.next_difficulty == v.min && v.shifts >= -512), "clamped to the floor");
	assert!(has(&|v| v.next_difficulty == v.max && v.shifts <= 512), "clamped to the maximum");
	assert!(has(&|v| v.shifts > 512) && has(&|v| v.shifts < -512), "shifts beyond 512 both ways");
	assert!(has(&|v| v.anchor_height > 1 && v.height == v.anchor_height + 1), "a re-anchored schedule");
	let plain = |v: &&Vector| v.next_difficulty != v.min && v.next_difficulty != v.max;
	assert!(vectors.iter().filter(plain).count() >= 10, "most vectors are not clamped");
}
