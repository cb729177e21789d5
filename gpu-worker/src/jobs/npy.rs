//! The NumPy `.npy` format (version 1.0 to 3.0), as far as the job API
//! needs it: two-dimensional, C-ordered integer arrays in, `int32` out.
//!
//! The format: the magic `\x93NUMPY`, a major and minor version byte, the
//! header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0),
//! then a Python dict literal such as
//! `{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }` padded with
//! spaces to a multiple of 64 bytes, then the raw data
//! (<https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>).

use std::{io::Read, path::Path};

/// Element types a job's input may have: any little-endian signed integer
/// (values are range-checked later, whatever their width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Int {
	I8,
	I16,
	I32,
	I64,
}

impl Int {
	fn from_descr(descr: &str) -> Option<Self> {
		Some(match descr {
			"|i1" | "<i1" | "i1" => Self::I8,
			"<i2" => Self::I16,
			"<i4" => Self::I32,
			"<i8" => Self::I64,
			_ => return None,
		})
	}

	fn width(self) -> usize {
		match self {
			Self::I8 => 1,
			Self::I16 => 2,
			Self::I32 => 4,
			Self::I64 => 8,
		}
	}
}

/// What a `.npy` file's header says: its element type, shape, and where
/// the data starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
	int: Int,
	pub rows: usize,
	pub cols: usize,
	data_offset: u64,
}

/// Opens `path` as a regular file (never a FIFO or a device, which could
/// block a reader forever).
fn open_regular(path: &Path) -> Result<std::fs::File, String> {
	let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
	let meta = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
	if !meta.is_file() {
		return Err(format!("{}: not a regular file", path.display()));
	}
	Ok(file)
}

/// Reads and checks the header of a 2-D signed-integer `.npy` file.
pub fn header(path: &Path) -> Result<Header, String> {
	let mut file = open_regular(path)?;
	let truncated = |e: std::io::Error| format!("{}: truncated header ({e})", path.display());
	let mut preamble = [0u8; 8];
	file.read_exact(&mut preamble).map_err(|e| format!("{}: not a .npy file ({e})", path.display()))?;
	if &preamble[..6] != b"\x93NUMPY" {
		return Err(format!("{}: not a .npy file (no \\x93NUMPY magic)", path.display()));
	}
	let (header_len, len_bytes) = match preamble[6] {
		1 => {
			let mut len = [0u8; 2];
			file.read_exact(&mut len).map_err(truncated)?;
			(u16::from_le_bytes(len) as usize, 2)
		}
		2 | 3 => {
			let mut len = [0u8; 4];
			file.read_exact(&mut len).map_err(truncated)?;
			(u32::from_le_bytes(len) as usize, 4)
		}
		v => return Err(format!("{}: .npy format version {v} is not supported", path.display())),
	};
	if header_len > 1 << 16 {
		return Err(format!("{}: a {header_len}-byte .npy header is not plausible", path.display()));
	}
	let mut text = vec![0u8; header_len];
	file.read_exact(&mut text).map_err(truncated)?;
	let (int, rows, cols) =
		parse_header(&String::from_utf8_lossy(&text)).map_err(|e| format!("{}: {e}", path.display()))?;
	Ok(Header { int, rows, cols, data_offset: (8 + len_bytes + header_len) as u64 })
}

/// Reads the data of the file whose `header` was read, converting each
/// element to `i8` through `convert(index, value)`, which refuses values out
/// of range. Memory: the `i8` output and a 64 KiB buffer, allocated only
/// once the file is known to hold exactly the data its header promises.
pub fn read_i8(
	path: &Path,
	header: &Header,
	mut convert: impl FnMut(usize, i64) -> Result<i8, String>,
) -> Result<Vec<i8>, String> {
	use std::io::Seek;
	let mut file = open_regular(path)?;
	let elements = header.rows.checked_mul(header.cols).ok_or("the shape overflows")?;
	let width = header.int.width();
	let data_len = (elements as u64).saturating_mul(width as u64);
	let file_len = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?.len();
	let have = file_len.saturating_sub(header.data_offset);
	if have != data_len {
		return Err(format!("{}: the header promises {data_len} bytes of data, the file has {have}", path.display()));
	}
	file.seek(std::io::SeekFrom::Start(header.data_offset)).map_err(|e| format!("{}: {e}", path.display()))?;
	let mut out = Vec::with_capacity(elements);
	let step = (1 << 16) / width * width;
	let mut buf = vec![0u8; step];
	let mut left = data_len as usize;
	while left > 0 {
		let chunk = &mut buf[..left.min(step)];
		file.read_exact(chunk).map_err(|e| format!("{}: reading the data: {e}", path.display()))?;
		for raw in chunk.chunks_exact(width) {
			let value = match header.int {
				Int::I8 => raw[0] as i8 as i64,
				Int::I16 => i16::from_le_bytes([raw[0], raw[1]]) as i64,
				Int::I32 => i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as i64,
				Int::I64 => i64::from_le_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]]),
			};
			out.push(convert(out.len(), value)?);
		}
		left -= chunk.len();
	}
	Ok(out)
}

/// The element type and the two dimensions named by a header dict.
fn parse_header(header: &str) -> Result<(Int, usize, usize), String> {
	let field = |name: &str| -> Result<&str, String> {
		let key = format!("'{name}':");
		let start = header.find(&key).ok_or_else(|| format!("the .npy header has no '{name}'"))? + key.len();
		Ok(header[start..].trim_start())
	};
	let descr = field("descr")?;
	let descr = descr.strip_prefix('\'').and_then(|d| d.split('\'').next()).ok_or("unreadable 'descr'")?;
	let int = Int::from_descr(descr).ok_or_else(|| {
		format!("element type {descr:?} is not a little-endian signed integer (int8, int16, int32 or int64)")
	})?;
	if !field("fortran_order")?.starts_with("False") {
		return Err("the array is in Fortran order; save it C-ordered (numpy.ascontiguousarray)".into());
	}
	let shape = field("shape")?;
	let shape = shape.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or("unreadable 'shape'")?;
	let dims: Vec<usize> = shape
		.split(',')
		.map(str::trim)
		.filter(|s| !s.is_empty())
		.map(|s| s.trim_end_matches('L').parse::<usize>().map_err(|_| format!("unreadable dimension {s:?}")))
		.collect::<Result<_, _>>()?;
	match dims[..] {
		[rows, cols] => Ok((int, rows, cols)),
		_ => Err(format!("the array has shape ({shape}); a matrix needs two dimensions")),
	}
}

/// The write buffer of [`write_i32`].
pub const WRITE_BUFFER: u64 = 1 << 16;

/// Writes `values` (`rows x cols`, row-major) as an `int32` `.npy` file
/// (format 1.0), through a temporary file renamed into place so that a
/// reader never sees half a file. Memory: a [`WRITE_BUFFER`].
pub fn write_i32(path: &Path, rows: usize, cols: usize, values: &[i32]) -> Result<(), String> {
	use std::io::Write;
	assert_eq!(values.len(), rows * cols, "the caller passes a whole matrix");
	let mut header = format!("{{'descr': '<i4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
	// Magic (6) + version (2) + length (2) + header + '\n', a multiple of 64.
	let unpadded = 10 + header.len() + 1;
	header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
	header.push('\n');
	// A fresh, unpredictable temporary name next to the target, created
	// exclusively: never a file (or a planted symlink) that already exists.
	let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
	let tmp = path.with_extension(format!("npy.{}.{nonce:x}.partial", std::process::id()));
	let file = std::fs::OpenOptions::new()
		.write(true)
		.create_new(true)
		.open(&tmp)
		.map_err(|e| format!("{}: {e}", tmp.display()))?;
	let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER as usize, file);
	let written = (|| -> std::io::Result<()> {
		out.write_all(b"\x93NUMPY\x01\x00")?;
		out.write_all(&(header.len() as u16).to_le_bytes())?;
		out.write_all(header.as_bytes())?;
		for v in values {
			out.write_all(&v.to_le_bytes())?;
		}
		out.into_inner().map(drop).map_err(|e| e.into_error())
	})();
	written.and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
		let _ = std::fs::remove_file(&tmp);
		format!("{}: {e}", path.display())
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
		npy_ordered(descr, "False", shape, data)
	}

	fn npy_ordered(descr: &str, fortran: &str, shape: &str, data: &[u8]) -> Vec<u8> {
		let header = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
		let mut b = b"\x93NUMPY\x01\x00".to_vec();
		b.extend_from_slice(&(header.len() as u16).to_le_bytes());
		b.extend_from_slice(header.as_bytes());
		b.extend_from_slice(data);
		b
	}

	/// The shape and the values (widened, unchecked) of a file holding `bytes`.
	fn read_bytes(bytes: &[u8]) -> Result<(usize, usize, Vec<i64>), String> {
		static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
		let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
		let path = std::env::temp_dir().join(format!("mlpow-npy-{}-{n}.npy", std::process::id()));
		std::fs::write(&path, bytes).unwrap();
		let out = header(&path).and_then(|h| {
			let mut wide = Vec::new();
			read_i8(&path, &h, |_, v| {
				wide.push(v);
				Ok(0)
			})?;
			Ok((h.rows, h.cols, wide))
		});
		std::fs::remove_file(&path).unwrap();
		out
	}

	#[test]
	fn reads_every_integer_width() {
		let a = read_bytes(&npy("|i1", "(2, 3)", &[1, 2, 3, 0xff, 0x80, 7])).unwrap();
		assert_eq!(a, (2, 3, vec![1, 2, 3, -1, -128, 7]));
		let data: Vec<u8> = [-5i64, 300].iter().flat_map(|v| v.to_le_bytes()).collect();
		assert_eq!(read_bytes(&npy("<i8", "(1, 2)", &data)).unwrap().2, vec![-5, 300]);
		let data: Vec<u8> = [-2i16, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
		assert_eq!(read_bytes(&npy("<i2", "(2, 1)", &data)).unwrap().2, vec![-2, 9]);
		// More than one 64 KiB read.
		let data: Vec<u8> = (0..40_000i32).flat_map(|v| v.to_le_bytes()).collect();
		assert_eq!(read_bytes(&npy("<i4", "(200, 200)", &data)).unwrap().2, (0..40_000).collect::<Vec<i64>>());
	}

	#[test]
	fn refuses_what_it_cannot_read_with_the_reason() {
		let cases: [(Vec<u8>, &str); 8] = [
			(b"hello world, not numpy".to_vec(), "magic"),
			(npy("<f4", "(1, 1)", &[0; 4]), "little-endian signed integer"),
			(npy("|u1", "(1, 1)", &[0]), "little-endian signed integer"),
			(npy("|i1", "(4,)", &[0; 4]), "two dimensions"),
			(npy("|i1", "(2, 2, 2)", &[0; 8]), "two dimensions"),
			(npy("|i1", "(2, 3)", &[0; 5]), "promises 6 bytes of data, the file has 5"),
			(npy("|i1", "(2, 3)", &[0; 7]), "promises 6 bytes of data, the file has 7"),
			// A huge shape is refused before anything is allocated for it.
			(npy("|i1", "(100000, 100000)", &[0; 5]), "promises 10000000000 bytes"),
		];
		for (bytes, why) in cases {
			let err = read_bytes(&bytes).unwrap_err();
			assert!(err.contains(why), "{err} (expected {why:?})");
		}
		let fortran = npy_ordered("|i1", "True", "(1, 1)", &[0]);
		assert!(read_bytes(&fortran).unwrap_err().contains("Fortran"));
		// A directory is not a regular file.
		assert!(header(&std::env::temp_dir()).unwrap_err().contains("not a regular file"));
	}

	#[test]
	fn writes_what_numpy_reads() {
		let dir = std::env::temp_dir().join(format!("mlpow-npy-w-{}", std::process::id()));
		std::fs::create_dir_all(&dir).unwrap();
		let path = dir.join("c.npy");
		write_i32(&path, 2, 2, &[1, -2, i32::MAX, i32::MIN]).unwrap();
		let bytes = std::fs::read(&path).unwrap();
		// The header block is a multiple of 64 bytes and ends in a newline.
		let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
		assert_eq!((10 + header_len) % 64, 0);
		assert_eq!(bytes[10 + header_len - 1], b'\n');
		let h = header(&path).unwrap();
		assert_eq!((h.rows, h.cols), (2, 2));
		let mut back = Vec::new();
		read_i8(&path, &h, |_, v| {
			back.push(v);
			Ok(0)
		})
		.unwrap();
		assert_eq!(back, vec![1, -2, i32::MAX as i64, i32::MIN as i64]);
		// Written again over the old file, and no temporary file is left behind.
		write_i32(&path, 1, 1, &[5]).unwrap();
		assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
		std::fs::remove_dir_all(&dir).unwrap();
	}
}
