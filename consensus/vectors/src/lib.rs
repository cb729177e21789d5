//! The golden vectors every implementation of the consensus rules must
//! reproduce (`consensus/SPEC.md`, `consensus/SPEC-v2.md`), as one crate
//! that tests depend on: the files' text, where they are on disk (for the
//! tests that regenerate and compare them), and the format of `golden.json`.
//! Each file's fields are described in `consensus/vectors/README.md`.

#![warn(missing_docs)]

pub mod format;

pub use format::VectorFile;

/// Puzzle v1: seeds, tiles, winners, headers, challenges, difficulties,
/// verification outcomes.
pub const GOLDEN: &str = include_str!("../golden.json");
/// Puzzle v2: seeded, chosen and adversarial matrices, with their states,
/// tickets, products and seals; verification outcomes (in the order of the
/// checks) with `verify_seal`'s bytes; GPU-sized tiles; sealed headers.
pub const V2: &str = include_str!("../v2.json");
/// The ASERT retarget.
pub const ASERT: &str = include_str!("../asert.json");

/// Where a vector file (`"golden.json"`, `"v2.json"`, `"asert.json"`) lives
/// in the checkout, for tests that compare a regenerated file with it.
pub fn path(file: &str) -> std::path::PathBuf {
	std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

/// `golden.json`, parsed.
///
/// # Panics
/// If the file does not parse (a broken checkout; the tests should stop).
pub fn golden() -> VectorFile {
	serde_json::from_str(GOLDEN).expect("consensus/vectors/golden.json parses")
}

/// Challenge parameters from a JSON object with the fields `version`, `m`,
/// `k`, `n`, `t`, `r`, `epoch_length` (how every vector file writes them).
///
/// # Panics
/// If a field is missing or not a number (a broken vector file).
pub fn params(v: &serde_json::Value) -> mlpow_primitives::ChallengeParams {
	let f = |name: &str| v[name].as_u64().unwrap_or_else(|| panic!("parameter field {name}")) as u32;
	mlpow_primitives::ChallengeParams {
		version: f("version"),
		m: f("m"),
		k: f("k"),
		n: f("n"),
		t: f("t"),
		r: f("r"),
		epoch_length: f("epoch_length"),
	}
}

/// `v2.json` as JSON (its cases are read field by field).
///
/// # Panics
/// If the file does not parse.
pub fn v2() -> serde_json::Value {
	serde_json::from_str(V2).expect("consensus/vectors/v2.json parses")
}
