//! The device-operand kernels (kernels/device.cu) on a real GPU: each, on
//! strided and transposed layouts with offsets, equals the host function
//! it stands for, and the driver's account of lent memory refuses host
//! pointers and spans past an allocation. Without a usable GPU every test
//! prints why and returns (tests/kernels_on_host_device.rs runs the same
//! arithmetic on the CPU in CI).
//!
//! On a GPU machine: `cargo nextest run -p mlpow-worker --features
//! test-hooks --test cuda_device_inproc --no-capture`, or the test binary
//! from `scripts/gpu-bundle.sh`.

#[path = "support/device_ops.rs"]
mod ops;
#[path = "support/gpu.rs"]
mod support_gpu;

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr};
use mlpow_primitives::{ChallengeParams, U256};
use mlpow_worker::{
	backend::{Job, Lane},
	chosen::{commit_a, commit_bt},
	cuda::operand::{DeviceMatrix, DeviceOut},
	freivalds,
	jobs::JobError,
	session::{Options, Session},
};
use ops::{first_bad, gather, layout, place, product, reference_piece, values};
use std::sync::Arc;

#[test]
fn device_operand_kernels_equal_their_host_twins() {
	let Some(mut lane) = support_gpu::gpu("device_operand_kernels_equal_their_host_twins") else { return };

	// Range: two bad values, the first in row-major order named.
	for transposed in [false, true] {
		let m = layout(300, 257, 3, 5, transposed);
		let mut buf = place(&values(300 * 257, 1), &m, 100);
		assert_eq!(lane.debug_range(&buf, &m).unwrap(), None);
		let at = |i: u64, j: u64| (m.ptr + i * m.row_stride + j * m.col_stride) as usize;
		buf[at(299, 0)] = 64;
		buf[at(0, 256)] = -128;
		assert_eq!(lane.debug_range(&buf, &m).unwrap(), first_bad(&buf, &m), "transposed {transposed}");
	}

	// Pieces, up to the GPU preset's (8192 x 4096).
	for (height, k, rows, depth) in [(16, 16, 3, 5), (64, 96, 40, 94), (8192, 4096, 8000, 4094)] {
		for transposed in [false, true] {
			let whole = layout(rows + 4, depth + 5, 2, 7, transposed);
			let buf = place(&values(whole.rows as usize * whole.cols as usize, u64::from(k)), &whole, 0);
			let corner = whole.ptr + 2 * whole.row_stride + 3 * whole.col_stride;
			let block = DeviceMatrix { ptr: corner, rows, cols: depth, ..whole };
			for salt_col in [k - 1, k - 2] {
				let seed: [u8; 32] = core::array::from_fn(|i| (i as u32 * 13 + salt_col) as u8);
				let (got, flag) = lane.debug_piece(&buf, &block, (height, k), salt_col, &seed).unwrap();
				assert_eq!(flag, None);
				let want = reference_piece(&buf, &block, (height, k), salt_col, &seed);
				assert!(got == want, "{height}x{k} piece of {rows}x{depth}, transposed {transposed}, salt {salt_col}");
			}
			let mut bad = buf.clone();
			let at = |i: u32, j: u32| {
				(block.ptr + u64::from(i) * block.row_stride + u64::from(j) * block.col_stride) as usize
			};
			bad[at(rows - 1, 0)] = -100;
			bad[at(0, depth - 1)] = 64;
			let (_, flag) = lane.debug_piece(&bad, &block, (height, k), k - 1, &[1; 32]).unwrap();
			assert_eq!(flag, first_bad(&bad, &block), "a bad value in the block, transposed {transposed}");
		}
	}

	// Freivalds and the fallback product, on every layout of the operands.
	for (m, n, k) in [(1, 1, 1), (300, 257, 1030), (1024, 512, 4094)] {
		for (ta, tb) in [(false, false), (false, true), (true, true)] {
			let (a, bt) = (layout(m, k, 2, 4, ta), layout(n, k, 1, 0, tb));
			let (av, btv) = (values((m * k) as usize, 5), values((n * k) as usize, 6));
			let (a_buf, bt_buf) = (place(&av, &a, 77), place(&btv, &bt, 77));
			let right = product(&av, &btv, m as usize, n as usize, k as usize);
			let c_layout = layout(m, n, 3, 0, false);
			let ldc = c_layout.row_stride;
			let before: Vec<i32> = (0..m * n).map(|v| v as i32 % 1000 - 500).collect();
			let c = place(&before, &c_layout, -1);
			let stored = lane.debug_gemm((&a_buf, &a), (&bt_buf, &bt), &c, ldc, false).unwrap();
			assert!(gather(&stored, &c_layout) == right, "{m}x{n}x{k} {ta} {tb}: the fallback product");
			let added = lane.debug_gemm((&a_buf, &a), (&bt_buf, &bt), &c, ldc, true).unwrap();
			let want: Vec<i32> = right.iter().zip(&before).map(|(r, b)| r + b).collect();
			assert!(gather(&added, &c_layout) == want, "{m}x{n}x{k} {ta} {tb}: accumulated");

			let seed = 0xfeed_beef ^ u64::from(m + n + k);
			assert!(lane.debug_holds((&a_buf, &a), (&bt_buf, &bt), &stored, ldc, seed).unwrap());
			let mut wrong = stored.clone();
			wrong[((m - 1) as u64 * ldc + u64::from(n) - 1) as usize] ^= 1;
			assert!(!lane.debug_holds((&a_buf, &a), (&bt_buf, &bt), &wrong, ldc, seed).unwrap());
			assert!(!freivalds::holds_with(
				&av,
				&btv,
				&gather(&wrong, &c_layout),
				m as usize,
				n as usize,
				k as usize,
				seed
			));
		}
	}
}

#[test]
fn lent_memory_must_be_this_gpus_and_mapped_end_to_end() {
	let Some(mut lane) = support_gpu::gpu("lent_memory_must_be_this_gpus_and_mapped_end_to_end") else { return };
	lane.debug_lent_memory(4096, 0, 4096, false).unwrap();
	lane.debug_lent_memory(4096, 100, 3996, false).unwrap();
	// The driver may round an allocation up; 64 MiB past it is past it.
	let past = lane.debug_lent_memory(4096, 100, 64 << 20, false).unwrap_err().to_string();
	assert!(past.contains("past the end of its allocation"), "{past}");
	let host = lane.debug_lent_memory(4096, 0, 16, true).unwrap_err().to_string();
	assert!(host.contains("host memory"), "{host}");
}

/// A useful nonce on pieces cut from lent blocks (a row-major activation,
/// a transposed weight view, both smaller than the piece) and committed on
/// the device equals the host path on the same pieces: the same product
/// and the same seals, openings and all; and the block's part of the
/// product is the plain product of the blocks.
#[test]
fn a_nonce_on_pieces_cut_and_committed_on_the_device_equals_the_host_path() {
	let test = "a_nonce_on_pieces_cut_and_committed_on_the_device_equals_the_host_path";
	let Some(mut lane) = support_gpu::gpu(test) else { return };
	// Difficulties for about half the tickets (dev), and a dozen (GPU).
	for (p, difficulty) in [(ChallengeParams::DEV_V2, 2u64), (ChallengeParams::GPU_V2, 1 << 14)] {
		let (m, n, k) = (p.m, p.n, p.k);
		let (rows, cols, depth) = (m - 3, n - 5, k - 2 - 7);
		let (a, bt) = (layout(rows, depth, 2, 3, false), layout(cols, depth, 1, 0, true));
		let (av, btv) = (values((rows * depth) as usize, 7), values((cols * depth) as usize, 8));
		let (a_buf, bt_buf) = (place(&av, &a, 0), place(&btv, &bt, 0));
		let seeds = ([3u8; 32], [4u8; 32]);
		let work = Job {
			version: 1,
			pre_hash: [7; 32],
			number: 1,
			difficulty: U256::from(difficulty),
			params: p,
			weights_seed: [9; 32],
		};
		let nonce = 0x5eed;
		let (got, winners, bad) =
			lane.debug_multiply_device(&work, (&a_buf, &a), (&bt_buf, &bt), (&seeds.0, &seeds.1), nonce).unwrap();
		assert_eq!(bad, None);
		let (rows_u, cols_u, depth_u) = (rows as usize, cols as usize, depth as usize);
		let piece_a = reference_piece(&a_buf, &a, (m, k), k - 1, &seeds.0);
		let piece_bt = reference_piece(&bt_buf, &bt, (n, k), k - 2, &seeds.1);
		let host =
			lane.multiply(&work, commit_a(&p, piece_a).unwrap(), commit_bt(&p, piece_bt).unwrap(), nonce).unwrap();
		assert!(got == host.product, "{p:?}: the device pieces' product differs from the host path's");
		assert_eq!(winners, host.winners, "{p:?}: winners and seals");
		assert!(!winners.is_empty(), "{p:?}: no winner at difficulty {difficulty}");
		let plain = product(&av, &btv, rows_u, cols_u, depth_u);
		for i in 0..rows_u {
			assert!(got[i * n as usize..][..cols_u] == plain[i * cols_u..][..cols_u], "{p:?}: row {i}");
		}
	}
	// A value outside -64..63 in the weight's block: refused, naming it.
	let p = ChallengeParams::DEV_V2;
	let (a, bt) = (layout(10, 20, 0, 0, false), layout(12, 20, 0, 0, true));
	let mut bt_buf = place(&values(12 * 20, 2), &bt, 0);
	bt_buf[(5 * bt.row_stride + 7 * bt.col_stride) as usize] = 90;
	let work = Job {
		version: 1,
		pre_hash: [7; 32],
		number: 1,
		difficulty: U256::from(2u64),
		params: p,
		weights_seed: [9; 32],
	};
	let (_, _, bad) = lane
		.debug_multiply_device(&work, (&place(&values(200, 1), &a, 0), &a), (&bt_buf, &bt), (&[1; 32], &[2; 32]), 1)
		.unwrap();
	assert_eq!(bad, Some(("B", (5, 7, 90))));
}

/// The address of a test buffer.
fn addr<T>(stream: &Arc<CudaStream>, buf: &CudaSlice<T>) -> u64 {
	buf.device_ptr(stream).0
}

/// `Session::matmul_device` end to end on the GPU: a session whose
/// multiplier is the GPU lane, operands uploaded by the test as a model's
/// would be (a row-major activation, a weight in PyTorch's `out x in`
/// layout and as its transposed view), the product exact (CPU reference,
/// or Freivalds on the host at the GPU preset), pieces mined with winners
/// sent, plain without work, and values out of range refused before
/// anything is written.
#[test]
fn a_sessions_device_products_are_exact_and_mine() {
	let test = "a_sessions_device_products_are_exact_and_mine";
	let Some(lane) = support_gpu::gpu(test) else { return };
	let ctx = CudaContext::new(lane.info().ordinal).unwrap();
	let stream = ctx.default_stream();
	let (session, mut found) = Session::offline(Options::new(Box::new(lane)));
	let up = |v: &[i8]| stream.clone_htod(v).unwrap();
	// Depths with a short remainder after whole pieces (64 = 62 + 2 at
	// dev-v2, 4096 = 4094 + 2 at the GPU preset: folded into the pieces'
	// correction) and with a long one (300 = 4 x 62 + 52: a piece of its own).
	for (p, (rows, depth, cols), difficulty) in [
		(ChallengeParams::DEV_V2, (100, 300, 90), 16u64),
		(ChallengeParams::DEV_V2, (100, 64, 90), 2),
		(ChallengeParams::GPU_V2, (8192, 4096, 8192), 1 << 14),
	] {
		let work = Job {
			version: 3,
			pre_hash: [1; 32],
			number: 9,
			difficulty: U256::from(difficulty),
			params: p,
			weights_seed: [2; 32],
		};
		session.miner().set_job(Some(work));
		let (av, wv) = (values(rows * depth, 1), values(cols * depth, 2));
		let (a_buf, w_buf) = (up(&av), up(&wv));
		let a = DeviceMatrix::row_major(addr(&stream, &a_buf), rows as u32, depth as u32);
		let bt = DeviceMatrix::row_major(addr(&stream, &w_buf), cols as u32, depth as u32);
		let out_buf = stream.alloc_zeros::<i32>(rows * cols).unwrap();
		let out = DeviceOut::row_major(addr(&stream, &out_buf), rows as u32, cols as u32);
		let before = session.stats();
		// SAFETY: the test's own buffers, alive and idle during the call.
		unsafe { session.matmul_device(&a, &bt, &out, None) }.unwrap();
		let got = stream.clone_dtoh(&out_buf).unwrap();
		if rows * cols * depth <= 1 << 24 {
			assert!(got == product(&av, &wv, rows, cols, depth), "{p:?}: the product");
		} else {
			assert!(freivalds::holds(&av, &wv, &got, rows, cols, depth), "{p:?}: the product");
		}
		let stats = session.stats();
		assert!(stats.macs_mined > before.macs_mined, "{p:?}: nothing mined: {stats:?}");
		assert_eq!(stats.macs - before.macs, (rows * cols * depth) as u64);
		assert!(stats.winners > before.winners, "{p:?}: no winner: {stats:?}");
		// About one winner a nonce: every one is sent on (none dropped).
		assert_eq!(stats.dropped, before.dropped);
		for _ in before.winners..stats.winners {
			let f = found.try_recv().expect("every winner sent on");
			assert_eq!((f.version, f.number), (3, 9));
		}
	}

	// The weight as `B` (depth x cols, row-major) seen transposed: the
	// product exact; the stats before the call.
	let transposed = |(rows, depth, cols): (usize, usize, usize), seed: u64, stream_arg: Option<u64>| {
		let (av, bv) = (values(rows * depth, seed), values(depth * cols, seed + 1));
		let (a_buf, b_buf) = (up(&av), up(&bv));
		let a = DeviceMatrix::row_major(addr(&stream, &a_buf), rows as u32, depth as u32);
		let bt = DeviceMatrix::row_major(addr(&stream, &b_buf), depth as u32, cols as u32).t();
		let out_buf = stream.alloc_zeros::<i32>(rows * cols).unwrap();
		let out = DeviceOut::row_major(addr(&stream, &out_buf), rows as u32, cols as u32);
		let before = session.stats();
		// SAFETY: as above.
		unsafe { session.matmul_device(&a, &bt, &out, stream_arg) }.unwrap();
		let btv: Vec<i8> = (0..cols * depth).map(|e| bv[(e % depth) * cols + e / depth]).collect();
		assert!(stream.clone_dtoh(&out_buf).unwrap() == product(&av, &btv, rows, cols, depth));
		before
	};
	// No work: plain, nothing mined.
	session.miner().set_job(None);
	let before = transposed((33, 70, 45), 3, Some(0));
	assert_eq!(session.stats().macs_mined, before.macs_mined);
	// Mined, 64 deep at dev-v2: each mined tile's piece (62) folds the 2
	// columns left, read through the view's strides.
	session.miner().set_job(Some(Job {
		version: 4,
		pre_hash: [7; 32],
		number: 10,
		difficulty: U256::from(2u64),
		params: ChallengeParams::DEV_V2,
		weights_seed: [2; 32],
	}));
	let before = transposed((64, 64, 64), 5, None);
	let stats = session.stats();
	// One piece, mined, with its 2 columns folded (counted as plain).
	assert_eq!((stats.nonces - before.nonces, stats.macs_mined - before.macs_mined), (1, 64 * 64 * 62));
	assert_eq!(stats.macs_plain - before.macs_plain, 64 * 64 * 2);
	while found.try_recv().is_ok() {}

	// A value out of range: refused, naming it, the output untouched.
	let (rows, depth, cols) = (33, 70, 45);
	let mut bad = values(rows * depth, 3);
	bad[5 * depth + 7] = -65;
	let (bad_buf, b_buf) = (up(&bad), up(&values(depth * cols, 4)));
	let a = DeviceMatrix::row_major(addr(&stream, &bad_buf), rows as u32, depth as u32);
	let bt = DeviceMatrix::row_major(addr(&stream, &b_buf), depth as u32, cols as u32).t();
	let out_buf = stream.clone_htod(&vec![7i32; rows * cols]).unwrap();
	let out = DeviceOut::row_major(addr(&stream, &out_buf), rows as u32, cols as u32);
	// SAFETY: as above.
	match unsafe { session.matmul_device(&a, &bt, &out, Some(1)) } {
		Err(JobError::Invalid(why)) => assert!(why.contains("-65 at (5, 7)"), "{why}"),
		other => panic!("not refused: {other:?}"),
	}
	assert!(stream.clone_dtoh(&out_buf).unwrap().iter().all(|&v| v == 7));
}

/// A weight registered from device memory (`Session::register_weight_device`):
/// copied and range-checked once, its pieces committed by the first mined
/// call and reused by the next ones, products exact, and later writes to
/// the caller's tensor not seen; a value out of range refused at
/// registration, naming it.
#[test]
fn a_registered_device_weight_commits_its_pieces_once_and_keeps_its_values() {
	let test = "a_registered_device_weight_commits_its_pieces_once_and_keeps_its_values";
	let Some(lane) = support_gpu::gpu(test) else { return };
	let ctx = CudaContext::new(lane.info().ordinal).unwrap();
	let stream = ctx.default_stream();
	let (session, _found) = Session::offline(Options::new(Box::new(lane)));
	let work = Job {
		version: 3,
		pre_hash: [4; 32],
		number: 11,
		difficulty: U256::from(16u64),
		params: ChallengeParams::DEV_V2,
		weights_seed: [5; 32],
	};
	session.miner().set_job(Some(work));
	// 250 = 4 x 62 + 2: each tile's last piece folds the 2 columns left.
	let (rows, depth, cols) = (100, 250, 90);
	let wv = values(cols * depth, 6);
	let mut w_buf = stream.clone_htod(&wv).unwrap();
	let bt = DeviceMatrix::row_major(addr(&stream, &w_buf), cols as u32, depth as u32);
	// SAFETY: the test's own buffer, alive and idle during the call.
	let weight = unsafe { session.register_weight_device(&bt, None) }.unwrap();
	assert_eq!((weight.shape(), weight.pieces_prepared()), ((depth, cols), 0));
	// The caller's tensor changes after registration: not seen.
	stream.memcpy_htod(&vec![1i8; cols * depth], &mut w_buf).unwrap();
	let mut made = 0;
	for call in 0..3u64 {
		let av = values(rows * depth, 10 + call);
		let a_buf = stream.clone_htod(&av).unwrap();
		let a = DeviceMatrix::row_major(addr(&stream, &a_buf), rows as u32, depth as u32);
		let out_buf = stream.alloc_zeros::<i32>(rows * cols).unwrap();
		let out = DeviceOut::row_major(addr(&stream, &out_buf), rows as u32, cols as u32);
		let before = session.stats();
		// SAFETY: as above.
		unsafe { session.matmul_device_by(&a, &weight, &out, Some(1)) }.unwrap();
		assert!(stream.clone_dtoh(&out_buf).unwrap() == product(&av, &wv, rows, cols, depth), "call {call}");
		assert!(session.stats().macs_mined > before.macs_mined, "call {call} mined nothing");
		if call == 0 {
			made = weight.pieces_committed();
			assert!(made > 0, "the first mined call commits the weight's pieces");
		}
		assert_eq!(weight.pieces_committed(), made, "call {call} committed the weight again");
		assert_eq!(weight.pieces_prepared() as u64, made);
	}
	// A shape that does not multiply is refused before anything runs.
	let a_buf = stream.clone_htod(&values(rows * 7, 1)).unwrap();
	let a = DeviceMatrix::row_major(addr(&stream, &a_buf), rows as u32, 7);
	let out_buf = stream.alloc_zeros::<i32>(rows * cols).unwrap();
	let out = DeviceOut::row_major(addr(&stream, &out_buf), rows as u32, cols as u32);
	// SAFETY: as above.
	assert!(matches!(unsafe { session.matmul_device_by(&a, &weight, &out, None) }, Err(JobError::Invalid(_))));
	// Out of range at registration: refused, naming the value and where
	// it is in B (depth x cols).
	let mut bad = wv.clone();
	bad[3 * depth + 8] = 99;
	let bad_buf = stream.clone_htod(&bad).unwrap();
	let bt = DeviceMatrix::row_major(addr(&stream, &bad_buf), cols as u32, depth as u32);
	// SAFETY: as above.
	match unsafe { session.register_weight_device(&bt, None) } {
		Err(JobError::Invalid(why)) => assert!(why.contains("99 at (8, 3)"), "{why}"),
		other => panic!("not refused: {other:?}"),
	}
}
