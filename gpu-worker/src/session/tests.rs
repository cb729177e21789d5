use super::*;
use crate::cpu;
use mlpow_primitives::{stream::weights_seed, ChallengeParams, U256};

fn session() -> (Session, mpsc::Receiver<Found>) {
	let multiplier = cpu::lanes(1).pop().unwrap();
	Session::offline(Options::new(multiplier))
}

/// Work on the dev-v2 parameters (64 x 64 x 64 pieces) at difficulty 2:
/// half of all tickets win, so every mined piece has winners.
fn work(params: ChallengeParams) -> Job {
	Job {
		version: 7,
		pre_hash: [5; 32],
		number: 3,
		difficulty: U256::from(2),
		params,
		weights_seed: weights_seed(&[1; 32], 0),
	}
}

/// Values in `-64..=63` that depend on every index.
fn matrices(rows: usize, depth: usize, cols: usize) -> Matrices {
	let a = (0..rows * depth).map(|i| ((i * 37 + 11) % 128) as i8 - 64).collect();
	let bt = (0..cols * depth).map(|i| ((i * 53 + 5) % 128) as i8 - 64).collect();
	Matrices { rows, depth, cols, a, bt }
}

fn naive(m: &Matrices) -> Vec<i32> {
	(0..m.rows * m.cols)
		.map(|e| {
			let (i, j) = (e / m.cols, e % m.cols);
			(0..m.depth).map(|z| m.a[i * m.depth + z] as i32 * m.bt[j * m.depth + z] as i32).sum()
		})
		.collect()
}

#[test]
fn without_work_the_product_is_exact_at_once_and_nothing_mines() {
	let (session, _found) = session();
	assert!(!session.mining());
	let m = matrices(70, 130, 50);
	assert_eq!(session.matmul(&m).unwrap(), naive(&m));
	let stats = session.stats();
	assert_eq!((stats.calls, stats.macs, stats.macs_plain), (1, 70 * 130 * 50, 70 * 130 * 50));
	assert_eq!((stats.macs_mined, stats.nonces, stats.winners), (0, 0, 0));
}

/// The caller's product is cut into pieces, each mined as one nonce of the
/// current work; the product is exact, and every winner is a chosen-mode
/// seal carrying the openings of the caller's (salted) matrices that
/// verifies against the work.
#[test]
fn on_v2_work_the_pieces_mine_and_the_product_stays_exact() {
	let (session, mut found) = session();
	let work = work(ChallengeParams::DEV_V2);
	session.miner().set_job(Some(work.clone()));
	assert!(session.mining());
	// 2 x 2 x 3 pieces (62 data columns a piece): rows and columns full,
	// depth 130 = 62 + 62 + 6, whose last pieces are too thin to mine.
	let m = matrices(128, 130, 128);
	assert_eq!(session.matmul(&m).unwrap(), naive(&m));
	let stats = session.stats();
	assert_eq!(stats.nonces, 8, "{stats:?}");
	assert_eq!(stats.macs_mined, 128 * 124 * 128);
	assert_eq!(stats.macs_plain, 128 * 6 * 128);
	assert_eq!(stats.tickets, 8 * ChallengeParams::DEV_V2.tickets_per_nonce());
	assert!(stats.winners >= 8, "difficulty 2: about half of the tickets win ({stats:?})");
	let mut seen = 0;
	while let Ok(f) = found.try_recv() {
		assert_eq!((f.version, f.number, f.job), (work.version, work.number, None));
		assert!(f.winner.seal.len() > 17, "a chosen seal carries its openings");
		let verified =
			mlpow_primitives::verify(&work.params, &work.weights_seed, &work.pre_hash, work.difficulty, &f.winner.seal)
				.expect("a caller's winning seal verifies");
		assert_eq!(verified.seal, f.winner.id);
		seen += 1;
	}
	assert_eq!(seen as u64, stats.winners.min(crate::miner::FOUND_QUEUE as u64));
}

/// A decode step (one row) fills 1/64 of a piece: multiplied plainly, and
/// the statistics say so. With `min_fill` 0 it mines anyway, still exactly.
#[test]
fn small_products_multiply_plainly_unless_asked() {
	let (session, _found) = session();
	session.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	let m = matrices(1, 62, 64);
	assert_eq!(session.matmul(&m).unwrap(), naive(&m));
	assert_eq!((session.stats().nonces, session.stats().macs_plain), (0, 62 * 64));

	let mut options = Options::new(cpu::lanes(1).pop().unwrap());
	options.min_fill = 0.0;
	let (eager, _found) = Session::offline(options);
	eager.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	assert_eq!(eager.matmul(&m).unwrap(), naive(&m));
	assert_eq!((eager.stats().nonces, eager.stats().macs_mined), (1, 62 * 64));
}

/// Pieces that the product fills only in part (rows past 64, columns past
/// 64, a depth that leaves a thin remainder) are mined, their exact
/// products added straight into the caller's output at their blocks: the
/// product is exact, and nothing outside a block is touched.
#[test]
fn partly_filled_pieces_mine_into_their_blocks_exactly() {
	let mut options = Options::new(cpu::lanes(1).pop().unwrap());
	options.min_fill = 0.0;
	let (session, _found) = Session::offline(options);
	session.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	for (rows, depth, cols) in [(100, 130, 90), (65, 62, 1), (1, 200, 129), (17, 63, 33)] {
		let before = session.stats();
		let m = matrices(rows, depth, cols);
		assert_eq!(session.matmul(&m).unwrap(), naive(&m), "{rows} x {depth} x {cols}");
		let after = session.stats();
		let pieces = rows.div_ceil(64) * cols.div_ceil(64) * depth.div_ceil(62);
		assert_eq!(after.nonces - before.nonces, pieces as u64, "{rows} x {depth} x {cols}");
		assert_eq!(after.macs_mined - before.macs_mined, (rows * depth * cols) as u64);
	}
}

/// Under puzzle v1 a chain has no chosen matrices: nothing mines.
#[test]
fn a_v1_chain_multiplies_plainly() {
	let (session, _found) = session();
	session.miner().set_job(Some(work(ChallengeParams::DEV)));
	assert!(!session.mining(), "v1 has no chosen matrices");
	let m = matrices(64, 62, 64);
	assert_eq!(session.matmul(&m).unwrap(), naive(&m));
	assert_eq!(session.stats().nonces, 0);
}

/// Work a node sends with parameters that fail the consensus checks is
/// not mined: the product is still exact.
#[test]
fn malformed_work_is_not_mined() {
	let (session, _found) = session();
	session.miner().set_job(Some(work(ChallengeParams { k: 1, ..ChallengeParams::DEV_V2 })));
	assert!(!session.mining());
	let m = matrices(64, 62, 64);
	assert_eq!(session.matmul(&m).unwrap(), naive(&m));
	assert_eq!(session.stats().nonces, 0);
}

/// Calls from several threads at once all get exact products; a piece
/// whose thread finds the multiplier busy is multiplied plainly.
#[test]
fn concurrent_callers_get_exact_products() {
	let (session, _found) = session();
	session.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	let m = matrices(128, 124, 128);
	let want = naive(&m);
	std::thread::scope(|s| {
		for _ in 0..3 {
			s.spawn(|| {
				for _ in 0..3 {
					assert_eq!(session.matmul(&m).unwrap(), want);
				}
			});
		}
	});
	let stats = session.stats();
	assert_eq!(stats.calls, 9);
	assert_eq!(stats.macs_mined + stats.macs_plain, stats.macs);
	assert!(stats.nonces > 0, "{stats:?}");
}

/// Bad input is refused with the reason, and the session goes on.
#[test]
fn bad_input_is_refused_with_the_reason() {
	let (session, _found) = session();
	session.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	let good = matrices(3, 4, 5);
	let cases: Vec<(Matrices, &str)> = vec![
		(Matrices { rows: 0, a: vec![], ..good.clone() }, "empty shape"),
		(Matrices { cols: 0, bt: vec![], ..good.clone() }, "empty shape"),
		(Matrices { a: vec![0; 11], ..good.clone() }, "A holds 11 values, not 3 x 4"),
		(Matrices { bt: vec![0; 21], ..good.clone() }, "B holds 21 values, not 4 x 5"),
		(Matrices { a: [vec![64], vec![0; 11]].concat(), ..good.clone() }, "A holds 64, outside"),
		(Matrices { bt: [vec![0; 19], vec![-65]].concat(), ..good.clone() }, "B holds -65, outside"),
		(Matrices { rows: usize::MAX / 2, depth: 1, cols: 4, a: vec![], bt: vec![0; 4] }, "A holds 0 values"),
		(Matrices { rows: 1, depth: MAX_DEPTH + 1, cols: 1, a: vec![], bt: vec![] }, "could overflow int32"),
	];
	for (m, why) in cases {
		match session.matmul(&m) {
			Err(JobError::Invalid(got)) => assert!(got.contains(why), "{got:?} should say {why:?}"),
			other => panic!("{why}: {other:?}"),
		}
	}
	assert_eq!(session.stats().calls, 0, "refused calls count for nothing");
	assert_eq!(session.matmul(&good).unwrap(), naive(&good));
}

/// A registered weight's pieces are committed by the first call that uses
/// them and reused by every later call, whose products stay exact and
/// whose winners verify; a new puzzle shape commits them anew.
#[test]
fn a_registered_weight_commits_each_piece_once() {
	let (session, mut found) = session();
	let work = work(ChallengeParams::DEV_V2);
	session.miner().set_job(Some(work.clone()));
	// 2 column blocks x 2 depth blocks of 62: four pieces of the weight.
	let m = matrices(128, 124, 128);
	let weight = Weight::new(m.depth, m.cols, m.bt.clone()).unwrap();
	assert_eq!(weight.pieces_prepared(), 0);
	assert_eq!(session.matmul_by(&m.a, m.rows, &weight).unwrap(), naive(&m));
	assert_eq!(weight.pieces_prepared(), 4);
	let block = Block { rows: 0..64, cols: 64..128, depth: 62..124 };
	let first = weight.piece(&work.params, &block).unwrap();
	// Other activations, the same weight: nothing committed again.
	let other = Matrices { a: m.a.iter().map(|v| v.wrapping_mul(3).clamp(-64, 63)).collect(), ..m.clone() };
	assert_eq!(session.matmul_by(&other.a, other.rows, &weight).unwrap(), naive(&other));
	assert_eq!(weight.pieces_prepared(), 4);
	assert!(Arc::ptr_eq(&first, &weight.piece(&work.params, &block).unwrap()), "the same committed piece");
	assert_eq!(session.stats().nonces, 16);
	let mut seen = 0;
	while let Ok(f) = found.try_recv() {
		mlpow_primitives::verify(&work.params, &work.weights_seed, &work.pre_hash, work.difficulty, &f.winner.seal)
			.expect("a winner of a registered weight's piece verifies");
		seen += 1;
	}
	assert!(seen > 0);

	// k = 128 (126 data columns): one depth block, two column blocks.
	let wider = ChallengeParams { k: 128, ..ChallengeParams::DEV_V2 };
	assert!(wider.validate().is_ok());
	session.miner().set_job(Some(Job { params: wider, ..work }));
	assert_eq!(session.matmul_by(&m.a, m.rows, &weight).unwrap(), naive(&m));
	assert_eq!(weight.pieces_prepared(), 2, "committed anew for the new shape, the old ones dropped");
}

/// A weight is checked when it is registered, and a call's `A` against it.
#[test]
fn a_bad_weight_or_a_mismatched_call_is_refused() {
	let cases = [
		(0, 2, vec![], "empty shape"),
		(2, 2, vec![0; 3], "B holds 3 values, not 2 x 2"),
		(1, 2, vec![0, 64], "B holds 64"),
	];
	for (depth, cols, bt, why) in cases {
		match Weight::new(depth, cols, bt) {
			Err(JobError::Invalid(got)) => assert!(got.contains(why), "{got:?} should say {why:?}"),
			other => panic!("{why}: {:?}", other.map(|w| w.pieces_prepared())),
		}
	}
	let (session, _found) = session();
	let weight = Weight::new(4, 5, vec![1; 20]).unwrap();
	match session.matmul_by(&[0; 6], 2, &weight) {
		Err(JobError::Invalid(got)) => assert!(got.contains("A holds 6 values, not 2 x 4"), "{got}"),
		other => panic!("{other:?}"),
	}
	assert_eq!(session.matmul_by(&[1; 8], 2, &weight).unwrap(), vec![4; 10]);
}

/// A session that packs small calls sharing a weight (`window`).
fn packing_session(window: Duration) -> (Session, mpsc::Receiver<Found>) {
	let multiplier = cpu::lanes(1).pop().unwrap();
	Session::offline(Options { pack_window: window, ..Options::new(multiplier) })
}

/// Eight threads' decode steps (4 rows each) with one registered weight
/// meet in one batch: 32 rows fill half of a dev-v2 piece (64 x 64 x 62),
/// so the batch is mined as one nonce, and each caller gets exactly its own
/// rows. Alone, each would be an eighth of the half a piece must fill, and
/// would mine nothing. (The batch closes when its rows fill the piece, so
/// the long window is waited out only if a thread never comes.)
#[test]
fn small_calls_sharing_a_weight_are_packed_into_one_mined_piece() {
	let (session, _found) = packing_session(Duration::from_secs(60));
	session.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	let m = matrices(32, 62, 64);
	let weight = Weight::new(62, 64, m.bt.clone()).unwrap();
	let want = naive(&m);
	let meet = std::sync::Barrier::new(8);
	let started = Instant::now();
	std::thread::scope(|s| {
		for t in 0..8 {
			let (session, weight, want, meet, m) = (&session, &weight, &want, &meet, &m);
			s.spawn(move || {
				let rows = t * 4..t * 4 + 4;
				meet.wait();
				let got = session.matmul_by(&m.a[rows.start * 62..rows.end * 62], 4, weight).unwrap();
				assert_eq!(got, want[rows.start * 64..rows.end * 64], "thread {t}'s rows");
			});
		}
	});
	// The batch went when its rows filled the piece, not at the window's end.
	assert!(started.elapsed() < Duration::from_secs(30), "the batch waited out its window");
	let stats = session.stats();
	assert_eq!((stats.calls, stats.calls_packed), (8, 8), "{stats:?}");
	assert_eq!((stats.nonces, stats.macs_mined, stats.macs_plain), (1, 32 * 62 * 64, 0), "{stats:?}");
}

/// A small call that no other joins waits out the window and is then
/// multiplied plainly, exactly; without work, or for a call big enough
/// alone, nothing waits and nothing is packed.
#[test]
fn a_lone_small_call_waits_out_the_window_and_nothing_waits_without_work() {
	let m = matrices(4, 62, 64);
	let weight = Weight::new(62, 64, m.bt.clone()).unwrap();
	{
		let (session, _found) = packing_session(Duration::from_millis(200));
		session.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
		let started = Instant::now();
		assert_eq!(session.matmul_by(&m.a, 4, &weight).unwrap(), naive(&m));
		assert!(started.elapsed() >= Duration::from_millis(200), "the call waited for company");
		let stats = session.stats();
		assert_eq!((stats.calls, stats.calls_packed, stats.nonces, stats.macs_plain), (1, 0, 0, 4 * 62 * 64));
	}
	// A long window: a call that waited in it would show.
	let window = Duration::from_secs(60);
	let (session, _found) = packing_session(window);
	// No work: at once, plainly.
	let started = Instant::now();
	assert_eq!(session.matmul_by(&m.a, 4, &weight).unwrap(), naive(&m));
	// A call big enough alone: at once, mined.
	session.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	let big = matrices(64, 62, 64);
	let big_weight = Weight::new(62, 64, big.bt.clone()).unwrap();
	assert_eq!(session.matmul_by(&big.a, 64, &big_weight).unwrap(), naive(&big));
	assert!(started.elapsed() < window / 2, "a call waited that had nothing to wait for");
	let stats = session.stats();
	assert_eq!((stats.calls, stats.calls_packed, stats.nonces), (2, 0, 1), "{stats:?}");
}

/// A batch whose opener waits for rows while the work goes away (a node
/// restart) stops waiting: no one else would join, since calls without
/// work are not packed.
#[test]
fn a_batch_stops_waiting_when_the_work_goes() {
	let window = Duration::from_secs(60);
	let (session, _found) = packing_session(window);
	session.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	let m = matrices(4, 62, 64);
	let weight = Weight::new(62, 64, m.bt.clone()).unwrap();
	let started = Instant::now();
	std::thread::scope(|s| {
		let call = s.spawn(|| session.matmul_by(&m.a, 4, &weight).unwrap());
		// The call is waiting in its batch before the work goes (not a
		// sleep: under load the call could start after it).
		let opened = Instant::now();
		while session.packer.open_batches() == 0 {
			assert!(opened.elapsed() < window / 4, "the call never opened a batch");
			std::thread::yield_now();
		}
		session.miner().set_job(None);
		assert_eq!(call.join().unwrap(), naive(&m));
	});
	assert!(started.elapsed() < window / 2, "the batch waited out its window without work");
}

/// Closing a session with nothing found is clean, even with no time given
/// (its node task is still trying to connect: an empty look is confirmed
/// by a second one 10 ms later, past the deadline).
#[test]
fn an_idle_session_closes_cleanly_even_with_no_time() {
	let multiplier = cpu::lanes(1).pop().unwrap();
	let session = Session::connect("ws://127.0.0.1:9", Options::new(multiplier)).unwrap();
	assert!(session.close(Duration::ZERO), "nothing was found, so nothing was left");
}

/// Operands in GPU memory on a CPU multiplier are refused with the reason,
/// after the descriptions' own checks, and nothing is counted or read
/// (the addresses here are not memory at all).
#[test]
fn device_operands_on_a_cpu_multiplier_are_refused_with_the_reason() {
	use crate::cuda::operand::{DeviceMatrix, DeviceOut};
	let (s, _rx) = session();
	s.miner().set_job(Some(work(ChallengeParams::DEV_V2)));
	let a = DeviceMatrix::row_major(0x10_0000, 64, 62);
	let bt = DeviceMatrix::row_major(0x20_0000, 64, 62);
	let out = DeviceOut::row_major(0x30_0000, 64, 64);
	let refused = |a: &DeviceMatrix, bt: &DeviceMatrix, out: &DeviceOut| {
		// SAFETY: refused before any address is used (the test's point).
		match unsafe { s.matmul_device(a, bt, out, None) } {
			Err(JobError::Invalid(why)) => why,
			other => panic!("not refused: {other:?}"),
		}
	};
	assert!(refused(&a, &bt, &out).contains("backend=\"cuda\""));
	// SAFETY: refused before the address is used.
	match unsafe { s.register_weight_device(&bt, None) } {
		Err(JobError::Invalid(why)) => assert!(why.contains("backend=\"cuda\""), "{why}"),
		other => panic!("not refused: {other:?}"),
	}
	let wrong = DeviceMatrix::row_major(0x20_0000, 64, 61);
	assert!(refused(&a, &wrong, &out).contains("inner dimensions differ"));
	let overlapping = DeviceOut::row_major(0x10_0000 + 64, 64, 64);
	assert!(refused(&a, &bt, &overlapping).contains("shares memory"));
	assert_eq!(s.stats().calls, 0);
	assert_eq!(s.stats().nonces, 0);
}
