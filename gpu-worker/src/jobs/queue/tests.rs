use super::*;
use mlpow_primitives::ChallengeParams;

const P: ChallengeParams = ChallengeParams { m: 16, k: 64, n: 16, ..ChallengeParams::DEV_V2 };

fn matrices(rows: usize, depth: usize, cols: usize) -> Matrices {
	let a = (0..rows * depth).map(|i| ((i * 31 + 7) % 128) as i8 - 64).collect();
	let bt = (0..cols * depth).map(|i| ((i * 17 + 3) % 128) as i8 - 64).collect();
	Matrices { rows, depth, cols, a, bt }
}

/// What a lane computes for a piece, directly.
fn piece_product(piece: &Piece) -> Vec<i32> {
	let PuzzleShape { m, n, k, .. } = piece.at.shape;
	(0..m * n).map(|e| (0..k).map(|z| piece.a[e / n * k + z] as i32 * piece.bt[e % n * k + z] as i32).sum()).collect()
}

fn direct(m: &Matrices) -> Vec<i32> {
	(0..m.rows * m.cols)
		.map(|e| {
			let (x, y) = (e / m.cols, e % m.cols);
			(0..m.depth).map(|z| m.a[x * m.depth + z] as i32 * m.bt[y * m.depth + z] as i32).sum()
		})
		.collect()
}

#[test]
fn a_job_is_done_when_its_last_piece_is_in_and_its_product_is_exact() {
	let jobs = Jobs::new(1 << 20);
	let m = matrices(20, 100, 33);
	let want = direct(&m);
	let id = jobs.submit(m, Some("t".into())).unwrap().id;
	assert_eq!(jobs.status(id).unwrap().state, State::Queued);
	assert!(matches!(jobs.product(id), Err(JobError::NotDone(_, State::Queued))));
	let mut taken = Vec::new();
	while let Some(p) = jobs.take(&P) {
		taken.push(p);
	}
	// 2 row blocks x 3 column blocks x 2 depth blocks.
	assert_eq!(taken.len(), 12);
	assert_eq!(jobs.status(id).unwrap().state, State::Running);
	for p in &taken {
		jobs.complete(&p.at, &piece_product(p), 0);
	}
	let s = jobs.status(id).unwrap();
	assert_eq!((s.state, s.macs_done, s.pieces_done), (State::Done, s.macs_total, 12));
	assert_eq!(s.macs_mined, 12 * 16 * 16 * 64);
	assert_eq!(jobs.product(id).unwrap(), (20, 33, want));
}

/// A depth of exactly `k` leaves a 2-deep remainder after the first
/// piece (two columns go to salt): it is multiplied plainly, not mined
/// as a whole nonce, and the product is exact.
#[test]
fn thin_depth_remainders_are_multiplied_plainly() {
	let jobs = Jobs::new(1 << 20);
	let m = matrices(16, 64, 16);
	let want = direct(&m);
	let id = jobs.submit(m, None).unwrap().id;
	let p = jobs.take(&P).unwrap();
	assert_eq!(p.at.block.depth, 0..62);
	assert!(jobs.take(&P).is_none(), "the 2-deep rest was multiplied plainly in take");
	jobs.complete(&p.at, &piece_product(&p), 0);
	let s = jobs.status(id).unwrap();
	assert_eq!((s.state, s.pieces_done, s.macs_plain), (State::Done, 1, 16 * 2 * 16));
	assert_eq!(jobs.product(id).unwrap().2, want);
	// A job no deeper than a piece's depth is mined however thin.
	let shallow = jobs.submit(matrices(3, 5, 2), None).unwrap().id;
	assert_eq!(jobs.take(&P).unwrap().at.job, shallow);
}

/// A parameter change mid-job: the rest is cut in the new shape, and
/// the product is still exact.
#[test]
fn the_rest_of_a_job_follows_a_new_puzzle_shape() {
	let jobs = Jobs::new(1 << 20);
	let m = matrices(40, 70, 20);
	let want = direct(&m);
	let id = jobs.submit(m, None).unwrap().id;
	let first = jobs.take(&P).unwrap();
	jobs.complete(&first.at, &piece_product(&first), 0);
	let bigger = ChallengeParams { m: 32, k: 128, n: 32, ..P };
	while let Some(p) = jobs.take(&bigger) {
		jobs.complete(&p.at, &piece_product(&p), 0);
	}
	assert_eq!(jobs.product(id).unwrap().2, want);
}

/// Every piece is salted afresh: the same data never makes the same
/// matrices (so its Merkle hashes cannot be matched or guessed), and
/// without the salt columns the two are the same.
#[test]
fn pieces_of_the_same_data_are_salted_differently() {
	let jobs = Jobs::new(1 << 20);
	jobs.submit(matrices(16, 62, 16), None).unwrap();
	jobs.submit(matrices(16, 62, 16), None).unwrap();
	let (one, two) = (jobs.take(&P).unwrap(), jobs.take(&P).unwrap());
	assert_ne!((one.at.job, &one.a, &one.bt), (two.at.job, &two.a, &two.bt));
	let data = |m: &[i8]| m.chunks(64).flat_map(|row| row[..62].to_vec()).collect::<Vec<_>>();
	assert_eq!((data(&one.a), data(&one.bt)), (data(&two.a), data(&two.bt)));
	assert_ne!(one.a, two.a);
	assert_ne!(one.bt, two.bt);
}

#[test]
fn a_piece_given_back_is_taken_again() {
	let jobs = Jobs::new(1 << 20);
	let m = matrices(5, 5, 5);
	let want = direct(&m);
	let id = jobs.submit(m, None).unwrap().id;
	let p = jobs.take(&P).unwrap();
	assert!(jobs.take(&P).is_none());
	jobs.give_back(p.at);
	let p = jobs.take(&P).unwrap();
	jobs.complete(&p.at, &piece_product(&p), 1);
	assert_eq!(jobs.status(id).unwrap().tickets_won, 1);
	assert_eq!(jobs.product(id).unwrap().2, want);
}

#[test]
fn jobs_queue_in_order_and_cancel_and_remove_free_them() {
	let bytes = Matrices::bytes(8, 8, 8) + JOB_OVERHEAD;
	let jobs = Jobs::new(2 * bytes);
	let one = jobs.submit(matrices(8, 8, 8), None).unwrap().id;
	let two = jobs.submit(matrices(8, 8, 8), None).unwrap().id;
	assert!(matches!(jobs.submit(matrices(8, 8, 8), None), Err(JobError::TooLarge(_))));
	assert_eq!(jobs.take(&P).unwrap().at.job, one);
	assert_eq!(jobs.cancel(two).unwrap().state, State::Cancelled);
	assert!(jobs.take(&P).is_none(), "a cancelled job has nothing to take");
	assert!(matches!(jobs.product(two), Err(JobError::NotDone(_, State::Cancelled))));
	jobs.remove(two).unwrap();
	assert_eq!(jobs.memory().1, bytes);
	assert!(matches!(jobs.status(two), Err(JobError::Unknown(_))));
	assert!(jobs.submit(matrices(8, 8, 8), None).is_ok(), "removing freed the memory");
	assert_eq!(jobs.list().iter().map(|s| s.id).collect::<Vec<_>>(), vec![one, 3]);
	// A piece of a removed job is dropped when it finishes.
	let p = jobs.take(&P).unwrap();
	jobs.remove(p.at.job).unwrap();
	jobs.complete(&p.at, &piece_product(&p), 0);
}
