//! A job's matrices as the API receives them, checked: inline base64 bytes
//! with their shape, or `.npy` files on this machine.

use super::{npy, JobError};
use base64::Engine;
use serde::Deserialize;
use std::{borrow::Cow, path::PathBuf};

/// The smallest and largest value puzzle v2 takes (7-bit signed integers).
pub const MIN_VALUE: i64 = -64;
pub const MAX_VALUE: i64 = 63;

/// The longest inner dimension a job may have: with inputs in -64..=63
/// every output stays within `64 * 64 * depth`, which `int32` holds while
/// `depth < 2^19`.
pub const MAX_DEPTH: usize = 1 << 18;

/// Base64 text, borrowed from the request when it has no JSON escapes (a
/// large job's data is then never copied before it is decoded).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// One matrix of a job: `shape` and `data` inline, or `npy` alone.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec<'a> {
	/// `[rows, cols]` of the inline `data`.
	#[serde(default)]
	pub shape: Option<[usize; 2]>,
	/// The row-major `int8` bytes, base64 (RFC 4648, with padding).
	#[serde(default, borrow)]
	pub data: Option<Text<'a>>,
	/// The absolute path of a 2-D, C-ordered, signed-integer `.npy` file
	/// that the worker can read.
	#[serde(default)]
	pub npy: Option<PathBuf>,
}

/// `jobs_submit`'s argument: `C = A * B`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec<'a> {
	/// `rows x depth`.
	#[serde(borrow)]
	pub a: MatrixSpec<'a>,
	/// `depth x cols` (as in `A @ B`).
	#[serde(borrow)]
	pub b: MatrixSpec<'a>,
	/// Free text, echoed in the status.
	#[serde(default)]
	pub label: Option<String>,
}

/// A job's checked matrices: `A` as given and `B` transposed (`Bt`,
/// `cols x depth`), the layout the puzzle multiplies.
#[derive(Clone, Debug)]
pub struct Matrices {
	pub rows: usize,
	pub depth: usize,
	pub cols: usize,
	pub a: Vec<i8>,
	pub bt: Vec<i8>,
}

impl Matrices {
	/// What a job of this shape holds: `A`, `Bt` and the `int32` product
	/// (`u64::MAX` when that overflows, which no budget allows).
	pub fn bytes(rows: usize, depth: usize, cols: usize) -> u64 {
		let (r, d, c) = (rows as u64, depth as u64, cols as u64);
		let inputs = r.checked_mul(d).zip(d.checked_mul(c)).and_then(|(a, b)| a.checked_add(b));
		let product = r.checked_mul(c).and_then(|p| p.checked_mul(4));
		inputs.zip(product).and_then(|(i, p)| i.checked_add(p)).unwrap_or(u64::MAX)
	}
}

/// The longest label a job may carry.
pub const MAX_LABEL: usize = 256;

/// What a request may use: the memory left in the job budget, and the one
/// directory whose `.npy` files the API reads and writes (none: inline only).
#[derive(Clone, Debug)]
pub struct Limits {
	pub max_bytes: u64,
	/// Canonical (symlinks resolved).
	pub files_dir: Option<PathBuf>,
}

impl Limits {
	/// `path`, canonical, if it names an existing file inside the files
	/// directory (`for_writing`: a file that may not exist yet, whose
	/// directory is inside it, named `*.npy`).
	pub fn file(&self, path: &std::path::Path, for_writing: bool) -> Result<PathBuf, String> {
		let Some(dir) = &self.files_dir else {
			return Err(format!(
				"{}: this worker exchanges no files (start it with --jobs-files-dir DIR to allow .npy files in DIR); \
				 send the data inline",
				path.display()
			));
		};
		if !path.is_absolute() {
			return Err(format!("{}: give an absolute path", path.display()));
		}
		let resolved = if for_writing {
			if path.extension().is_none_or(|e| e != "npy") {
				return Err(format!("{}: a result file's name ends in .npy", path.display()));
			}
			let parent = path.parent().ok_or_else(|| format!("{}: no directory", path.display()))?;
			let name = path.file_name().ok_or_else(|| format!("{}: no file name", path.display()))?;
			parent.canonicalize().map_err(|e| format!("{}: {e}", parent.display()))?.join(name)
		} else {
			path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?
		};
		if !resolved.starts_with(dir) {
			return Err(format!("{}: outside the worker's files directory {}", path.display(), dir.display()));
		}
		Ok(resolved)
	}
}

/// Where one matrix's values come from, its shape known and checked.
enum Source<'a> {
	Inline { rows: usize, cols: usize, data: &'a str },
	Npy { path: PathBuf, header: npy::Header },
}

impl<'a> Source<'a> {
	fn of(name: &str, spec: &'a MatrixSpec<'_>, limits: &Limits) -> Result<Self, JobError> {
		let bad = |why: String| JobError::Invalid(format!("{name}: {why}"));
		let source = match spec {
			MatrixSpec { shape: Some([rows, cols]), data: Some(data), npy: None } => {
				let data = &data.0;
				let elements = (*rows as u64).saturating_mul(*cols as u64);
				// base64 of n bytes is 4 * ceil(n / 3) characters.
				let chars = elements.div_ceil(3).saturating_mul(4);
				if data.len() as u64 != chars {
					return Err(bad(format!(
						"shape {rows} x {cols} needs {elements} bytes ({chars} base64 characters), the data has {} \
						 characters",
						data.len()
					)));
				}
				Source::Inline { rows: *rows, cols: *cols, data }
			}
			MatrixSpec { shape: None, data: None, npy: Some(path) } => {
				let path = limits.file(path, false).map_err(bad)?;
				let header = npy::header(&path).map_err(bad)?;
				Source::Npy { path, header }
			}
			_ => return Err(bad("give either \"shape\" and \"data\" (base64), or \"npy\" (a file path)".into())),
		};
		let (rows, cols) = source.shape();
		if rows == 0 || cols == 0 {
			return Err(bad(format!("shape {rows} x {cols} is empty")));
		}
		Ok(source)
	}

	fn shape(&self) -> (usize, usize) {
		match self {
			Source::Inline { rows, cols, .. } => (*rows, *cols),
			Source::Npy { header, .. } => (header.rows, header.cols),
		}
	}

	/// The values, range-checked, as `i8`. Allocates the matrix once (the
	/// caller has checked its size against the budget).
	fn values(&self, name: &str) -> Result<Vec<i8>, JobError> {
		let (_, cols) = self.shape();
		let check = |i: usize, v: i64| -> Result<i8, String> {
			if (MIN_VALUE..=MAX_VALUE).contains(&v) {
				Ok(v as i8)
			} else {
				Err(format!(
					"element [{}, {}] = {v} is outside {MIN_VALUE}..={MAX_VALUE}, the range puzzle v2 multiplies \
					 (7-bit signed integers)",
					i / cols,
					i % cols
				))
			}
		};
		let bad = |why: String| JobError::Invalid(format!("{name}: {why}"));
		match self {
			Source::Inline { data, .. } => {
				let bytes = base64::engine::general_purpose::STANDARD
					.decode(data)
					.map_err(|e| bad(format!("data is not base64: {e}")))?;
				let (rows, cols) = self.shape();
				if bytes.len() != rows * cols {
					return Err(bad(format!(
						"shape {rows} x {cols} needs {} bytes, the data has {}",
						rows * cols,
						bytes.len()
					)));
				}
				// In place: u8 to i8 reuses the decoded buffer.
				let values: Vec<i8> = bytes.into_iter().map(|b| b as i8).collect();
				if let Some(i) = values.iter().position(|&v| !(MIN_VALUE..=MAX_VALUE).contains(&(v as i64))) {
					return Err(bad(check(i, values[i] as i64).unwrap_err()));
				}
				Ok(values)
			}
			Source::Npy { path, header } => npy::read_i8(path, header, check).map_err(bad),
		}
	}
}

impl JobSpec<'_> {
	/// Checks both matrices' shapes against each other and the budget
	/// first, then reads them (one allocation each, of the checked size).
	pub fn load(&self, limits: &Limits) -> Result<Matrices, JobError> {
		let max = limits.max_bytes;
		self.load_with(limits, |bytes, _| {
			if bytes > max {
				return Err(too_large(bytes, max));
			}
			Ok(())
		})
		.map(|(m, ())| m)
	}

	/// As [`JobSpec::load`], but the memory is asked of `reserve(job,
	/// peak)` once the shapes are checked, before anything is allocated:
	/// `job` is what the job will hold (its matrices and product), `peak`
	/// that plus what reading takes for a while (`B` before it is
	/// transposed, a file's read buffer).
	pub fn load_with<R>(
		&self,
		limits: &Limits,
		reserve: impl FnOnce(u64, u64) -> Result<R, JobError>,
	) -> Result<(Matrices, R), JobError> {
		if self.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL) {
			return Err(JobError::Invalid(format!("the label is longer than {MAX_LABEL} bytes")));
		}
		let a = Source::of("a", &self.a, limits)?;
		let b = Source::of("b", &self.b, limits)?;
		let ((rows, a_cols), (b_rows, cols)) = (a.shape(), b.shape());
		if a_cols != b_rows {
			return Err(JobError::Invalid(format!(
				"a is {rows} x {a_cols} and b is {b_rows} x {cols}: a's columns must equal b's rows"
			)));
		}
		let depth = a_cols;
		if depth > MAX_DEPTH {
			return Err(JobError::Invalid(format!(
				"the inner dimension {depth} is over {MAX_DEPTH}: the int32 product could overflow; split it and add \
				 the partial products"
			)));
		}
		let bytes = Matrices::bytes(rows, depth, cols);
		let peak = bytes.saturating_add((depth as u64).saturating_mul(cols as u64)).saturating_add(READ_BUFFERS);
		let reserved = reserve(bytes, peak).map_err(|e| match e {
			JobError::TooLarge(why) => {
				JobError::TooLarge(format!("a {rows} x {depth} by {depth} x {cols} job needs {why}"))
			}
			e => e,
		})?;
		let a_values = a.values("a")?;
		let b_values = b.values("b")?;
		// B (depth x cols) to Bt (cols x depth).
		let mut bt = vec![0i8; cols * depth];
		for (z, row) in b_values.chunks_exact(cols).enumerate() {
			for (y, &v) in row.iter().enumerate() {
				bt[y * depth + z] = v;
			}
		}
		Ok((Matrices { rows, depth, cols, a: a_values, bt }, reserved))
	}
}

/// What reading `.npy` files takes besides the matrices: a 64 KiB buffer.
const READ_BUFFERS: u64 = 1 << 16;

/// The end of a "job needs ..." message: `bytes` against `free`.
pub fn too_large(bytes: u64, free: u64) -> JobError {
	JobError::TooLarge(format!("{} MiB, more than the {} MiB of job memory free", bytes.div_ceil(1 << 20), free >> 20))
}

#[cfg(test)]
mod tests {
	use super::*;

	fn inline(rows: usize, cols: usize, values: &[i8]) -> MatrixSpec<'static> {
		let bytes: Vec<u8> = values.iter().map(|&v| v as u8).collect();
		MatrixSpec {
			shape: Some([rows, cols]),
			data: Some(Text(base64::engine::general_purpose::STANDARD.encode(bytes).into())),
			npy: None,
		}
	}

	fn npy(path: &str) -> MatrixSpec<'static> {
		MatrixSpec { npy: Some(path.into()), ..Default::default() }
	}

	fn limits(max_bytes: u64) -> Limits {
		Limits { max_bytes, files_dir: None }
	}

	fn job(a: MatrixSpec<'static>, b: MatrixSpec<'static>) -> JobSpec<'static> {
		JobSpec { a, b, label: None }
	}

	#[test]
	fn loads_and_transposes_b() {
		let m = job(inline(1, 2, &[1, 2]), inline(2, 3, &[1, 2, 3, 4, 5, 6])).load(&limits(1 << 20)).unwrap();
		assert_eq!((m.rows, m.depth, m.cols), (1, 2, 3));
		assert_eq!(m.bt, vec![1, 4, 2, 5, 3, 6]);
	}

	#[test]
	fn bad_jobs_say_why() {
		let ok = || inline(2, 2, &[0; 4]);
		let raw = |shape: [usize; 2], data: &'static str| MatrixSpec {
			shape: Some(shape),
			data: Some(Text(data.into())),
			npy: None,
		};
		let cases: Vec<(JobSpec, &str)> = vec![
			(job(inline(2, 2, &[0, 0, 64, 0]), ok()), "a: element [1, 0] = 64 is outside -64..=63"),
			(job(ok(), inline(2, 2, &[0, -65, 0, 0])), "b: element [0, 1] = -65"),
			(job(ok(), inline(3, 2, &[0; 6])), "columns must equal b's rows"),
			(job(inline(0, 2, &[]), ok()), "empty"),
			(job(raw([2, 2], "AAAA"), ok()), "needs 4 bytes (8 base64 characters)"),
			(job(raw([2, 2], "!!!!!!!!"), ok()), "not base64"),
			(job(npy("/a.npy"), ok()), "--jobs-files-dir"),
			(job(MatrixSpec { npy: Some("/a.npy".into()), ..ok() }, ok()), "either"),
			(job(MatrixSpec::default(), ok()), "either"),
			// Sizes that overflow are refused, not multiplied out.
			(job(raw([1 << 40, 1 << 40], ""), ok()), "base64 characters"),
			(job(inline(1, 1, &[1]), raw([1, usize::MAX], "")), "base64 characters"),
			(JobSpec { label: Some("x".repeat(MAX_LABEL + 1)), ..job(ok(), ok()) }, "label"),
		];
		for (spec, why) in cases {
			let err = spec.load(&limits(1 << 20)).unwrap_err().to_string();
			assert!(err.contains(why), "{err:?} should say {why:?}");
		}
		let big = job(inline(64, 64, &[1; 4096]), inline(64, 64, &[1; 4096]));
		assert!(matches!(big.load(&limits(10_000)), Err(JobError::TooLarge(_))));
		assert_eq!(Matrices::bytes(1 << 31, 1, 1 << 31), u64::MAX, "4 * rows * cols overflows: no budget fits");
	}

	/// `.npy` files only from the files directory, symlinks resolved.
	#[test]
	fn files_stay_inside_the_files_directory() {
		let root = std::env::temp_dir().join(format!("mlpow-files-{}", std::process::id()));
		let (inside, outside) = (root.join("inside"), root.join("outside"));
		std::fs::create_dir_all(&inside).unwrap();
		std::fs::create_dir_all(&outside).unwrap();
		let header = "{'descr': '|i1', 'fortran_order': False, 'shape': (1, 1), }\n";
		let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
		bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
		bytes.extend_from_slice(header.as_bytes());
		bytes.push(3);
		std::fs::write(inside.join("a.npy"), &bytes).unwrap();
		std::fs::write(outside.join("secret.npy"), &bytes).unwrap();
		std::os::unix::fs::symlink(outside.join("secret.npy"), inside.join("link.npy")).unwrap();
		let limits = Limits { max_bytes: 1 << 20, files_dir: Some(inside.canonicalize().unwrap()) };
		let at = |p: &std::path::Path| npy(p.to_str().unwrap());
		let m = job(at(&inside.join("a.npy")), at(&inside.join("a.npy"))).load(&limits).unwrap();
		assert_eq!((m.a.clone(), m.bt.clone()), (vec![3], vec![3]));
		for path in [outside.join("secret.npy"), inside.join("link.npy"), inside.join("../outside/secret.npy")] {
			let err = job(at(&path), at(&inside.join("a.npy"))).load(&limits).unwrap_err().to_string();
			assert!(err.contains("outside the worker's files directory"), "{err}");
		}
		assert!(limits.file(&inside.join("c.npy"), true).is_ok());
		assert!(limits.file(&inside.join("c.txt"), true).unwrap_err().contains(".npy"));
		assert!(limits.file(&outside.join("c.npy"), true).unwrap_err().contains("outside"));
		std::fs::remove_dir_all(&root).unwrap();
	}
}
