//! The mining RPC's parsing over arbitrary bytes, on both sides of the
//! socket:
//! - the node: a JSON-RPC request, as jsonrpsee parses it, then the
//!   `mlpow_submitSeal` parameters `(version: u64, seal: String)`,
//!   positional or named, then the seal's hex and its 16-byte layout;
//! - the worker: a work item and an acceptance, as `mlpow_getWork`,
//!   `mlpow_work` notifications and `mlpow_submitSeal` answer them.
//! Nothing may panic; whatever parses must survive a round trip.

#![no_main]

use jsonrpsee_types::{Params, Request};
use libfuzzer_sys::fuzz_target;
use mlpow_primitives::Seal;
use mlpow_work::{decode_hex, Accepted, WorkItem};

fn seal_from_hex(hex: &str) {
	let Ok(bytes) = decode_hex(hex) else { return };
	match Seal::from_bytes(&bytes) {
		Some(seal) => assert_eq!(&seal.to_bytes()[..], &bytes[..]),
		None => assert_ne!(bytes.len(), 16, "every 16 bytes are a seal"),
	}
}

fn submit_params(params: Params) {
	// Positional, as the worker sends them.
	let mut seq = params.sequence();
	if let (Ok(_version), Ok(seal)) = (seq.next::<u64>(), seq.next::<String>()) {
		seal_from_hex(&seal);
	}
	// Named.
	#[derive(serde::Deserialize)]
	struct Named {
		#[allow(dead_code)]
		version: u64,
		seal: String,
	}
	if let Ok(named) = params.parse::<Named>() {
		seal_from_hex(&named.seal);
	}
}

fuzz_target!(|data: &[u8]| {
	if let Ok(req) = serde_json::from_slice::<Request>(data) {
		submit_params(req.params());
	}
	if let Ok(s) = std::str::from_utf8(data) {
		seal_from_hex(s);
	}
	if let Ok(work) = serde_json::from_slice::<WorkItem>(data) {
		let again: WorkItem = serde_json::from_str(&serde_json::to_string(&work).unwrap()).unwrap();
		assert_eq!(again, work);
	}
	if let Ok(acc) = serde_json::from_slice::<Accepted>(data) {
		let again: Accepted = serde_json::from_str(&serde_json::to_string(&acc).unwrap()).unwrap();
		assert_eq!(again, acc);
	}
});
