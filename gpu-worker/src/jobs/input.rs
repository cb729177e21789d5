//! A job's matrices as the API receives them, checked: inline base64 bytes
//! with their shape, or `.npy` files on this machine.

use super::{npy, JobError};
use base64::Engine;
use serde::Deserialize;
use std::path::PathBuf;

/// The smallest and largest value puzzle v2 takes (7-bit signed integers).
pub const MIN_VALUE: i64 = -64;
pub const MAX_VALUE: i64 = 63;

/// The longest inner dimension a job may have: with inputs in -64..=63
/// every output stays within `64 * 64 * depth`, which `int32` holds while
/// `depth < 2^19`.
pub const MAX_DEPTH: usize = 1 << 18;

/// One matrix of a job: `shape` and `data` inline, or `npy` alone.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
	/// `[rows, cols]` of the inline `data`.
	#[serde(default)]
	pub shape: Option<[usize; 2]>,
	/// The row-major `int8` bytes, base64 (RFC 4648, with padding).
	#[serde(default)]
	pub data: Option<String>,
	/// The absolute path of a 2-D, C-ordered, signed-integer `.npy` file
	/// that the worker can read.
	#[serde(default)]
	pub npy: Option<PathBuf>,
}

/// `jobs_submit`'s argument: `C = A * B`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
	/// `rows x depth`.
	pub a: MatrixSpec,
	/// `depth x cols` (as in `A @ B`).
	pub b: MatrixSpec,
	/// Free text, echoed in the status.
	#[serde(default)]
	pub label: Option<String>,
}

/// A job's checked matrices: `A` as given and `B` transposed (`Bt`,
/// `cols x depth`), the layout the puzzle multiplies.
#[derive(Debug)]
pub struct Matrices {
	pub rows: usize,
	pub depth: usize,
	pub cols: usize,
	pub a: Vec<i8>,
	pub bt: Vec<i8>,
}

impl Matrices {
	/// What a job of this shape holds: `A`, `Bt` and the `int32` product.
	pub fn bytes(rows: usize, depth: usize, cols: usize) -> u64 {
		let (r, d, c) = (rows as u64, depth as u64, cols as u64);
		r * d + d * c + 4 * r * c
	}
}

struct Loaded {
	rows: usize,
	cols: usize,
	values: Vec<i8>,
}

/// Reads, shape-checks and range-checks one matrix; `max_bytes` bounds
/// what it may allocate.
fn load(name: &str, spec: &MatrixSpec, max_bytes: u64) -> Result<Loaded, JobError> {
	let bad = |why: String| JobError::Invalid(format!("{name}: {why}"));
	let (rows, cols, wide): (usize, usize, Vec<i64>) = match spec {
		MatrixSpec { shape: Some([rows, cols]), data: Some(data), npy: None } => {
			let (rows, cols) = (*rows, *cols);
			let elements = (rows as u64).checked_mul(cols as u64).unwrap_or(u64::MAX);
			if elements > max_bytes {
				return Err(JobError::TooLarge(format!(
					"{name}: {rows} x {cols} is larger than the worker's job memory allows"
				)));
			}
			// base64 of n bytes is 4 * ceil(n / 3) characters: check before decoding.
			if data.len() as u64 != elements.div_ceil(3) * 4 {
				return Err(bad(format!(
					"shape {rows} x {cols} needs {elements} bytes ({} base64 characters), the data has {} characters",
					elements.div_ceil(3) * 4,
					data.len()
				)));
			}
			let bytes = base64::engine::general_purpose::STANDARD
				.decode(data)
				.map_err(|e| bad(format!("data is not base64: {e}")))?;
			if bytes.len() as u64 != elements {
				return Err(bad(format!("shape {rows} x {cols} needs {elements} bytes, the data has {}", bytes.len())));
			}
			(rows, cols, bytes.into_iter().map(|b| b as i8 as i64).collect())
		}
		MatrixSpec { shape: None, data: None, npy: Some(path) } => {
			if !path.is_absolute() {
				return Err(bad(format!("{}: give the .npy file's absolute path", path.display())));
			}
			let array = npy::read(path, max_bytes).map_err(|e| {
				if e.contains("larger than the job limit") {
					JobError::TooLarge(format!("{name}: {e}"))
				} else {
					bad(e)
				}
			})?;
			(array.rows, array.cols, array.values)
		}
		_ => return Err(bad("give either \"shape\" and \"data\" (base64), or \"npy\" (a file path)".into())),
	};
	if rows == 0 || cols == 0 {
		return Err(bad(format!("shape {rows} x {cols} is empty")));
	}
	if let Some(i) = wide.iter().position(|v| !(MIN_VALUE..=MAX_VALUE).contains(v)) {
		return Err(bad(format!(
			"element [{}, {}] = {} is outside {MIN_VALUE}..={MAX_VALUE}, the range puzzle v2 multiplies \
			 (7-bit signed integers)",
			i / cols,
			i % cols,
			wide[i]
		)));
	}
	Ok(Loaded { rows, cols, values: wide.into_iter().map(|v| v as i8).collect() })
}

impl JobSpec {
	/// Loads and checks both matrices. `max_bytes` bounds the whole job
	/// (inputs and product).
	pub fn load(&self, max_bytes: u64) -> Result<Matrices, JobError> {
		let a = load("a", &self.a, max_bytes)?;
		let b = load("b", &self.b, max_bytes)?;
		if a.cols != b.rows {
			return Err(JobError::Invalid(format!(
				"a is {} x {} and b is {} x {}: a's columns must equal b's rows",
				a.rows, a.cols, b.rows, b.cols
			)));
		}
		let (rows, depth, cols) = (a.rows, a.cols, b.cols);
		if depth > MAX_DEPTH {
			return Err(JobError::Invalid(format!(
				"the inner dimension {depth} is over {MAX_DEPTH}: the int32 product could overflow; split it and add \
				 the partial products"
			)));
		}
		if Matrices::bytes(rows, depth, cols) > max_bytes {
			return Err(JobError::TooLarge(format!(
				"a {rows} x {depth} by {depth} x {cols} job needs {} MiB, more than the worker's job memory ({} MiB)",
				Matrices::bytes(rows, depth, cols).div_ceil(1 << 20),
				max_bytes >> 20
			)));
		}
		// B (depth x cols) to Bt (cols x depth).
		let mut bt = vec![0i8; cols * depth];
		for (z, row) in b.values.chunks_exact(cols).enumerate() {
			for (y, &v) in row.iter().enumerate() {
				bt[y * depth + z] = v;
			}
		}
		Ok(Matrices { rows, depth, cols, a: a.values, bt })
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn inline(rows: usize, cols: usize, values: &[i8]) -> MatrixSpec {
		let bytes: Vec<u8> = values.iter().map(|&v| v as u8).collect();
		MatrixSpec {
			shape: Some([rows, cols]),
			data: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
			npy: None,
		}
	}

	fn npy(path: &str) -> MatrixSpec {
		MatrixSpec { npy: Some(path.into()), ..Default::default() }
	}

	#[test]
	fn loads_and_transposes_b() {
		let spec = JobSpec { a: inline(1, 2, &[1, 2]), b: inline(2, 3, &[1, 2, 3, 4, 5, 6]), label: None };
		let m = spec.load(1 << 20).unwrap();
		assert_eq!((m.rows, m.depth, m.cols), (1, 2, 3));
		assert_eq!(m.bt, vec![1, 4, 2, 5, 3, 6]);
	}

	#[test]
	fn bad_jobs_say_why() {
		let ok = || inline(2, 2, &[0; 4]);
		let cases: Vec<(JobSpec, &str)> = vec![
			(JobSpec { a: inline(2, 2, &[0, 0, 64, 0]), b: ok(), label: None }, "[1, 0] = 64 is outside -64..=63"),
			(JobSpec { a: ok(), b: inline(2, 2, &[0, -65, 0, 0]), label: None }, "b: element [0, 1] = -65"),
			(JobSpec { a: ok(), b: inline(3, 2, &[0; 6]), label: None }, "columns must equal b's rows"),
			(JobSpec { a: inline(0, 2, &[]), b: ok(), label: None }, "empty"),
			(
				JobSpec {
					a: MatrixSpec { shape: Some([2, 2]), data: Some("AAAA".into()), npy: None },
					b: ok(),
					label: None,
				},
				"needs 4 bytes (8 base64 characters)",
			),
			(
				JobSpec {
					a: MatrixSpec { shape: Some([2, 2]), data: Some("!!!!!!!!".into()), npy: None },
					b: ok(),
					label: None,
				},
				"not base64",
			),
			(JobSpec { a: npy("a.npy"), b: ok(), label: None }, "absolute path"),
			(JobSpec { a: npy("/nonexistent/a.npy"), b: ok(), label: None }, "a: /nonexistent"),
			(
				JobSpec {
					a: MatrixSpec { shape: Some([1 << 40, 1 << 40]), data: Some(String::new()), npy: None },
					b: ok(),
					label: None,
				},
				"larger than the worker's job memory",
			),
			(JobSpec { a: MatrixSpec { npy: Some("/a.npy".into()), ..ok() }, b: ok(), label: None }, "either"),
			(JobSpec { a: MatrixSpec::default(), b: ok(), label: None }, "either"),
		];
		for (spec, why) in cases {
			let err = spec.load(1 << 20).unwrap_err().to_string();
			assert!(err.contains(why), "{err:?} should say {why:?}");
		}
		let big = JobSpec { a: inline(64, 64, &[1; 4096]), b: inline(64, 64, &[1; 4096]), label: None };
		assert!(matches!(big.load(10_000), Err(JobError::TooLarge(_))));
	}
}
