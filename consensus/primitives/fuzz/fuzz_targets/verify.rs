//! `verify` over arbitrary bytes: it must return, never panic, never blow up
//! memory, and be deterministic.
//!
//! Input layout: `mode` byte, then 32 bytes of weights seed, 32 of pre-hash,
//! 32 of difficulty (big-endian), then, when `mode & 1`, 28 bytes decoded as
//! SCALE `ChallengeParams` (else the dev set, v2's when `mode & 4`, so most
//! runs reach the tile), and the rest as the seal. `mode & 2` forces
//! difficulty 1 so the Ok path is exercised as well.

#![no_main]

use codec::Decode;
use libfuzzer_sys::fuzz_target;
use mlpow_primitives::{verify, ChallengeParams, U256};

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
	if data.len() < n {
		return None;
	}
	let (head, tail) = data.split_at(n);
	*data = tail;
	Some(head)
}

fuzz_target!(|input: &[u8]| {
	let mut data = input;
	let Some(&[mode]) = take(&mut data, 1) else { return };
	let (Some(ws), Some(pre), Some(d)) = (take(&mut data, 32), take(&mut data, 32), take(&mut data, 32)) else {
		return;
	};
	let ws: [u8; 32] = ws.try_into().unwrap();
	let pre: [u8; 32] = pre.try_into().unwrap();
	let difficulty = if mode & 2 != 0 { U256::one() } else { U256::from_big_endian(d) };
	let params = if mode & 1 != 0 {
		let Some(mut raw) = take(&mut data, 28) else { return };
		match ChallengeParams::decode(&mut raw) {
			Ok(p) => p,
			Err(_) => return,
		}
	} else if mode & 4 != 0 {
		ChallengeParams::DEV_V2
	} else {
		ChallengeParams::DEV
	};
	let first = verify(&params, &ws, &pre, difficulty, data);
	if let Ok(v) = &first {
		assert!(params.validate().is_ok());
		// The seal starts with the ticket's id; in v1 it is nothing else.
		assert_eq!(&v.seal.to_bytes()[..], &data[..16]);
		assert!(params.version != 1 || data.len() == 16);
	}
	assert_eq!(first, verify(&params, &ws, &pre, difficulty, data));
});
