//! Challenge parameters from untrusted bytes, both ways they arrive: SCALE
//! (extrinsics, storage, the runtime API) and JSON (the mining RPC's work
//! items). Decoding and `validate` must never panic, and a set that
//! validates must satisfy every rule of SPEC.md ("Parameters"), so the
//! bounds that keep verification cheap and sums exact hold.

#![no_main]

use codec::{Decode, Encode};
use libfuzzer_sys::fuzz_target;
use mlpow_primitives::ChallengeParams;

fn check(p: &ChallengeParams) {
	if p.validate().is_err() {
		return;
	}
	let (m, k, n, t) = (p.m as u64, p.k as u64, p.n as u64, p.t as u64);
	assert_eq!(p.version, 1);
	for d in [m, k, n, t] {
		assert!(d > 0 && d % 16 == 0, "{p:?}");
	}
	assert!(k <= 65_536 && m <= 65_536 && n <= 65_536 && t <= 128, "{p:?}");
	assert!(m % t == 0 && n % t == 0, "{p:?}");
	assert!(t * t * k <= 1 << 24, "verification too expensive: {p:?}");
	assert!((1..=1_000_000).contains(&p.epoch_length), "{p:?}");
	// The widest possible sum stays inside i32 (|a*b| <= 2^14 per term).
	assert!(k * (1 << 14) <= i32::MAX as u64 + 1, "{p:?}");
}

fuzz_target!(|data: &[u8]| {
	let mut input = data;
	if let Ok(p) = ChallengeParams::decode(&mut input) {
		// SCALE is exact: 24 bytes, and they re-encode to themselves.
		assert_eq!(p.encode(), data[..24]);
		check(&p);
	}
	if let Ok(p) = serde_json::from_slice::<ChallengeParams>(data) {
		check(&p);
		let again: ChallengeParams = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
		assert_eq!(again, p);
	}
});
