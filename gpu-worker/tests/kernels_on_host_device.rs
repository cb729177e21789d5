//! The device-operand kernels' arithmetic, run on the CPU:
//! `tests/host_device.cpp` compiles `kernels/device.cu` with the host C++
//! compiler and runs each body over every index, on strided and transposed
//! layouts with offsets, as the in-process miner will run them on a
//! model's CUDA tensors. Each must equal the host function it stands for
//! (`plan::padded` + salt, `freivalds::holds_with`,
//! `kernel::gemm_naive`). No GPU needed; NVRTC compiling the same source
//! is `tests/kernels_compile.rs`, the same checks on a GPU
//! `tests/cuda_device_inproc.rs`.

#[path = "support/host_cxx.rs"]
mod host_cxx;
#[path = "support/device_ops.rs"]
mod ops;

use mlpow_worker::{cuda::operand::DeviceMatrix, freivalds, kernels::Words8};
use ops::{first_bad, gather, layout, place, product, reference_piece, values};
use std::{path::PathBuf, process::Command, sync::OnceLock};

fn harness() -> &'static PathBuf {
	static BIN: OnceLock<PathBuf> = OnceLock::new();
	BIN.get_or_init(|| host_cxx::compile("host_device.cpp"))
}

/// A scratch file of this test's, holding `bytes`.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
	let test = std::thread::current().name().unwrap_or("main").replace("::", "-");
	let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("host_device-{test}-{name}.bin"));
	std::fs::write(&path, bytes).unwrap();
	path
}

fn i8_bytes(v: &[i8]) -> Vec<u8> {
	v.iter().map(|&x| x as u8).collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
	v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32s(bytes: &[u8]) -> Vec<i32> {
	bytes.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// Runs the harness; its standard output.
fn run(args: &[String]) -> String {
	let out = Command::new(harness()).args(args).output().expect("running the harness");
	assert!(out.status.success(), "harness {args:?}: {}", String::from_utf8_lossy(&out.stderr));
	String::from_utf8(out.stdout).unwrap()
}

fn s(x: impl ToString) -> String {
	x.to_string()
}

fn strides(m: &DeviceMatrix) -> [String; 2] {
	[s(m.row_stride), s(m.col_stride)]
}

/// `first_out_of_range` on the host: (row, column, value) or None.
fn range(buf: &[i8], m: &DeviceMatrix) -> Option<(u32, u32, i8)> {
	let f = file("m", &i8_bytes(&buf[m.ptr as usize..]));
	let [rs, cs] = strides(m);
	let items = u64::from(m.rows) * u64::from(m.cols);
	parse_first(&run(&[s("range"), s(items), s(m.cols), rs, cs, f.display().to_string()]), m.cols)
}

#[test]
fn the_range_check_finds_the_first_value_outside_seven_bits_in_row_major_order() {
	for transposed in [false, true] {
		for (rows, cols) in [(1, 1), (5, 7), (33, 65)] {
			let m = layout(rows, cols, 3, 5, transposed);
			let good = values(rows as usize * cols as usize, 11);
			// The padding (100, out of range) is never read.
			let mut buf = place(&good, &m, 100);
			assert_eq!(range(&buf, &m), None, "{rows}x{cols} transposed {transposed}");
			// Two bad values, at (rows-1, 0) and (0, cols-1): in a transposed
			// layout the first in row-major order is the later in memory.
			let at = |i: u32, j: u32| (m.ptr + u64::from(i) * m.row_stride + u64::from(j) * m.col_stride) as usize;
			buf[at(rows - 1, 0)] = 64;
			buf[at(0, cols - 1)] = -65;
			let want = first_bad(&buf, &m);
			assert!(want.is_some());
			assert_eq!(range(&buf, &m), want, "{rows}x{cols} transposed {transposed}");
			for extreme in [i8::MIN, i8::MAX] {
				let mut one = place(&good, &m, 0);
				one[at(rows - 1, cols - 1)] = extreme;
				assert_eq!(range(&one, &m), Some((rows - 1, cols - 1, extreme)));
			}
		}
	}
}

/// The range check with a copy (a registered weight's own copy, made in
/// the same pass): row-major, every byte written, and exactly the values
/// checked, out-of-range ones included (the caller refuses the copy then).
#[test]
fn the_range_checks_copy_is_what_it_checked_in_row_major_order() {
	for transposed in [false, true] {
		for (rows, cols) in [(1, 1), (5, 7), (33, 65)] {
			let m = layout(rows, cols, 3, 5, transposed);
			let mut good = values(rows as usize * cols as usize, 12);
			let buf = place(&good, &m, 100);
			let (first, copy) = range_copy(&buf, &m);
			assert_eq!(first, None);
			assert_eq!(copy, good, "{rows}x{cols} transposed {transposed}");
			let last = good.len() - 1;
			good[last] = -100;
			let (first, copy) = range_copy(&place(&good, &m, 0), &m);
			assert_eq!(first, Some((rows - 1, cols - 1, -100)));
			assert_eq!(copy, good);
		}
	}
}

/// `first_out_of_range` with a copy, on the host: the flag and the copy.
fn range_copy(buf: &[i8], m: &DeviceMatrix) -> (Option<(u32, u32, i8)>, Vec<i8>) {
	let f = file("m", &i8_bytes(&buf[m.ptr as usize..]));
	let out = file("copy", &[]);
	let [rs, cs] = strides(m);
	let items = u64::from(m.rows) * u64::from(m.cols);
	let line = run(&[s("range"), s(items), s(m.cols), rs, cs, f.display().to_string(), out.display().to_string()]);
	let copy = std::fs::read(&out).unwrap().into_iter().map(|b| b as i8).collect();
	(parse_first(&line, m.cols), copy)
}

/// Parses the harness's range flag: (row, column, value) in a matrix
/// `cols` wide, or None.
fn parse_first(line: &str, cols: u32) -> Option<(u32, u32, i8)> {
	let fields: Vec<&str> = line.split_whitespace().collect();
	match fields.as_slice() {
		["first", "none"] => None,
		["first", idx, value] => {
			let idx: u64 = idx.parse().unwrap();
			Some(((idx / u64::from(cols)) as u32, (idx % u64::from(cols)) as u32, value.parse().unwrap()))
		}
		other => panic!("harness printed {other:?}"),
	}
}

/// `mlpow2_piece` on the host: the piece, and the first value it copied
/// that is outside -64..63.
fn piece(
	buf: &[i8],
	block: &DeviceMatrix,
	(height, k): (u32, u32),
	salt_col: u32,
	seed: &[u8; 32],
) -> (Vec<i8>, Option<(u32, u32, i8)>) {
	let src = file("src", &i8_bytes(&buf[block.ptr as usize..]));
	let out = file("piece", &[]);
	let [rs, cs] = strides(block);
	let key = Words8::context_key(mlpow_worker::kernels::CTX_PIECE_SALT);
	let hex_words = |w: &Words8| hex::encode(w.0.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
	let flag = run(&[
		s("piece"),
		s(height),
		s(k),
		s(block.rows),
		s(block.cols),
		rs,
		cs,
		s(salt_col),
		hex_words(&key),
		hex::encode(seed),
		src.display().to_string(),
		out.display().to_string(),
	]);
	(std::fs::read(out).unwrap().into_iter().map(|b| b as i8).collect(), parse_first(&flag, block.cols))
}

#[test]
fn a_piece_cut_on_the_device_is_the_hosts_padded_and_salted_piece() {
	// (height, k) of a piece; blocks of the source that fill it or not.
	for (height, k, rows, depth) in
		[(16, 16, 16, 14), (16, 16, 3, 5), (64, 96, 40, 94), (32, 320, 1, 1), (128, 64, 128, 62)]
	{
		for transposed in [false, true] {
			// The block sits inside a larger matrix, at row 2 and column 3.
			let whole = layout(rows + 4, depth + 5, 2, 7, transposed);
			let buf = place(&values(whole.rows as usize * whole.cols as usize, u64::from(k)), &whole, 0);
			let block = DeviceMatrix { rows, cols: depth, ..whole };
			let block = {
				let corner = whole.ptr + 2 * whole.row_stride + 3 * whole.col_stride;
				DeviceMatrix { ptr: corner, ..block }
			};
			for salt_col in [k - 1, k - 2] {
				let seed: [u8; 32] = core::array::from_fn(|i| (i as u32 * 7 + k + salt_col) as u8);
				let (got, flag) = piece(&buf, &block, (height, k), salt_col, &seed);
				assert_eq!(flag, None);
				let want = reference_piece(&buf, &block, (height, k), salt_col, &seed);
				assert_eq!(
					got, want,
					"{height}x{k} piece of a {rows}x{depth} block, transposed {transposed}, salt in {salt_col}"
				);
				// Another seed, another salt: the salt is the seed's.
				let (other, _) = piece(&buf, &block, (height, k), salt_col, &[0xee; 32]);
				assert_ne!(got, other);
				assert!(got.iter().all(|v| (-64..=63).contains(v)));
			}
			// Values outside -64..63 in the block are flagged as they are
			// copied (the first in row-major order); outside it, never read.
			let mut bad = buf.clone();
			let at = |i: u32, j: u32| {
				(block.ptr + u64::from(i) * block.row_stride + u64::from(j) * block.col_stride) as usize
			};
			bad[at(rows - 1, 0)] = -100;
			bad[at(0, depth - 1)] = 64;
			bad[(whole.ptr + whole.row_stride + whole.col_stride) as usize] = i8::MIN; // row 1, column 1 of the whole: outside
			let (_, flag) = piece(&bad, &block, (height, k), k - 1, &[1; 32]);
			assert_eq!(flag, first_bad(&bad, &block), "{height}x{k} piece of {rows}x{depth}, transposed {transposed}");
			assert!(flag.is_some());
		}
	}
}

fn product_args(
	command: &str,
	(a_buf, a): (&[i8], &DeviceMatrix),
	(bt_buf, bt): (&[i8], &DeviceMatrix),
	c: &[i32],
	ldc: u64,
	extra: &[String],
) -> (Vec<String>, PathBuf) {
	let (af, btf, cf) = (
		file("a", &i8_bytes(&a_buf[a.ptr as usize..])),
		file("bt", &i8_bytes(&bt_buf[bt.ptr as usize..])),
		file("c", &i32_bytes(c)),
	);
	let ([ars, acs], [brs, bcs]) = (strides(a), strides(bt));
	let mut args = vec![s(command), s(a.rows), s(bt.rows), s(a.cols), ars, acs, brs, bcs, s(ldc)];
	args.extend_from_slice(extra);
	args.extend([&af, &btf, &cf].map(|f| f.display().to_string()));
	(args, cf)
}

/// Freivalds on the host: the vector x, Bt^T x, and how many rows fail.
fn freivalds_run(
	(a_buf, a): (&[i8], &DeviceMatrix),
	(bt_buf, bt): (&[i8], &DeviceMatrix),
	c: &[i32],
	ldc: u64,
	seed: u64,
) -> (Vec<u64>, Vec<u64>, u32) {
	let (args, _) = product_args("freivalds", (a_buf, a), (bt_buf, bt), c, ldc, &[s(32), s(seed)]);
	let out = run(&args);
	let (mut x, mut y, mut bad) = (Vec::new(), Vec::new(), None);
	for line in out.lines() {
		let f: Vec<&str> = line.split(' ').collect();
		match f[0] {
			"x" => x.push(f[2].parse().unwrap()),
			"y" => y.push(f[2].parse().unwrap()),
			"bad" => bad = Some(f[1].parse().unwrap()),
			other => panic!("harness printed {other}"),
		}
	}
	(x, y, bad.expect("a verdict"))
}

#[test]
fn freivalds_on_the_device_draws_the_hosts_vector_and_catches_what_it_catches() {
	for (m, n, k, transposed) in [(1, 1, 1, false), (7, 5, 33, true), (40, 70, 129, false), (33, 17, 64, true)] {
		let a = layout(m, k, 1, 3, false);
		let bt = layout(n, k, 2, 1, transposed);
		let (av, btv) = (values((m * k) as usize, 1), values((n * k) as usize, 2));
		let (a_buf, bt_buf) = (place(&av, &a, 99), place(&btv, &bt, 99));
		let ldc = u64::from(n) + 3;
		let right = product(&av, &btv, m as usize, n as usize, k as usize);
		let c_layout = layout(m, n, 3, 0, false);
		let c = place(&right, &c_layout, 0x5555_5555);
		let seed = 0x1234_5678_9abc_def0 ^ u64::from(m * n * k);
		let (x, y, bad) = freivalds_run((&a_buf, &a), (&bt_buf, &bt), &c, ldc, seed);
		assert_eq!(x, freivalds::vector(seed, n as usize), "the host's vector for the seed");
		let want_y: Vec<u64> = (0..k as usize)
			.map(|z| {
				(0..n as usize)
					.fold(0u64, |s, r| s.wrapping_add((btv[r * k as usize + z] as i64 as u64).wrapping_mul(x[r])))
			})
			.collect();
		assert_eq!(y, want_y);
		assert_eq!(bad, 0, "{m}x{n}x{k}: the right product");
		assert!(freivalds::holds_with(&av, &btv, &right, m as usize, n as usize, k as usize, seed));
		// One entry off by 1, by 2^31, and (where there are two rows) two
		// rows swapped: the same verdict as the host's, rows counted.
		let last = (m as usize - 1, n as usize - 1);
		let mut wrongs: Vec<(Vec<i32>, u32)> = Vec::new();
		for delta in [1, i32::MIN] {
			let mut w = right.clone();
			w[last.0 * n as usize + last.1] = w[last.0 * n as usize + last.1].wrapping_add(delta);
			wrongs.push((w, 1));
		}
		if m > 1 {
			let mut w = right.clone();
			let (r0, r1) = w.split_at_mut(n as usize);
			r0.swap_with_slice(&mut r1[..n as usize]);
			if w != right {
				wrongs.push((w, 2));
			}
		}
		for (w, rows) in wrongs {
			let (_, _, bad) = freivalds_run((&a_buf, &a), (&bt_buf, &bt), &place(&w, &c_layout, 0), ldc, seed);
			assert_eq!(bad, rows, "{m}x{n}x{k}: a wrong product");
			assert!(!freivalds::holds_with(&av, &btv, &w, m as usize, n as usize, k as usize, seed));
		}
	}
}

/// The fallback GEMM on the host: `c` afterwards.
fn gemm(
	(a_buf, a): (&[i8], &DeviceMatrix),
	(bt_buf, bt): (&[i8], &DeviceMatrix),
	c: &[i32],
	ldc: u64,
	accumulate: bool,
) -> Vec<i32> {
	let (args, cf) = product_args("gemm", (a_buf, a), (bt_buf, bt), c, ldc, &[s(u8::from(accumulate))]);
	run(&args);
	i32s(&std::fs::read(cf).unwrap())
}

#[test]
fn the_fallback_product_is_exact_on_any_strides() {
	for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 9, 300)] {
		for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
			let (a, bt) = (layout(m, k, 2, 4, ta), layout(n, k, 1, 0, tb));
			let (av, btv) = (values((m * k) as usize, 5), values((n * k) as usize, 6));
			let (a_buf, bt_buf) = (place(&av, &a, 77), place(&btv, &bt, 77));
			let right = product(&av, &btv, m as usize, n as usize, k as usize);
			let c_layout = layout(m, n, 2, 0, false);
			let before: Vec<i32> = (0..m * n).map(|v| v as i32 * 31 - 9).collect();
			let c = place(&before, &c_layout, -1);
			let stored = gemm((&a_buf, &a), (&bt_buf, &bt), &c, c_layout.row_stride, false);
			assert_eq!(gather(&stored, &c_layout), right, "{m}x{n}x{k} {ta} {tb}");
			// The padding between rows is left alone.
			assert!(stored
				.iter()
				.enumerate()
				.all(|(i, &v)| (i as u64 % c_layout.row_stride) < u64::from(n) || v == -1));
			let added = gemm((&a_buf, &a), (&bt_buf, &bt), &c, c_layout.row_stride, true);
			let want: Vec<i32> = right.iter().zip(&before).map(|(r, b)| r + b).collect();
			assert_eq!(gather(&added, &c_layout), want);
		}
	}
}
