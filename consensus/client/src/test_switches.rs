//! The switches of debug builds that let the tests make, with a real node,
//! what an attacker or a slow machine would: a hostile node serving junk
//! seals ([`accepts_any_seal`]), a test clock that stamps an attacker's
//! chain from the launch time on ([`stamp_spacing_ms`]), and a node that
//! imports blocks slowly ([`import_delay_ms`]). Builds without debug
//! assertions (release builds) compile each to nothing, and a debug node
//! whose environment names any of them refuses to start on a chain that is
//! not a development chain (`node/src/service.rs`, [`set_in_environment`]),
//! whatever the variable's value or file holds then: the files are read
//! again for every block, so a check of their contents at start-up could
//! be passed with an empty file and the switch turned on later.
//!
//! The hostile node: a test needs a peer that serves blocks whose seals do not verify, and
//! the only process that speaks Substrate's network protocols is the node
//! itself. So a *debug* build of the node started with
//! `MLPOW_TEST_ACCEPT_ANY_SEAL=1` accepts every seal, its own included (its
//! mining RPC then imports a junk seal and announces the block), and logs
//! loudly that it does. Release builds compile this to `false`: the
//! variable does nothing there, so no deployed node can be switched into it;
//! and a debug node refuses to start with it on any chain that is not a
//! development chain (`node/src/service.rs`), so a debug node run on a real
//! network's spec cannot be switched into it either.

/// The environment variable of [`accepts_any_seal`].
pub const ACCEPT_ANY_SEAL_ENV: &str = "MLPOW_TEST_ACCEPT_ANY_SEAL";

/// The test switches' variables set in this node's environment: every one
/// that is set, in a debug build; none in a release build, where they do
/// nothing.
pub fn set_in_environment() -> Vec<&'static str> {
	if !cfg!(debug_assertions) {
		return Vec::new();
	}
	[ACCEPT_ANY_SEAL_ENV, STAMP_SPACING_FILE_ENV, IMPORT_DELAY_FILE_ENV]
		.into_iter()
		.filter(|var| std::env::var_os(var).is_some())
		.collect()
}

/// Whether this node accepts every seal (debug builds, with the variable set).
#[cfg(debug_assertions)]
pub fn accepts_any_seal() -> bool {
	static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
	*ON.get_or_init(|| {
		let on = std::env::var(ACCEPT_ANY_SEAL_ENV).is_ok_and(|v| v == "1");
		if on {
			log::warn!(
				target: "mlpow",
				"☠️  MLPOW_TEST_ACCEPT_ANY_SEAL=1: this debug node accepts EVERY seal and serves junk to its peers (a \
				 hostile node for tests; honest nodes refuse its blocks and ban it)"
			);
		}
		on
	})
}

/// Whether this node accepts every seal: never, in a release build.
#[cfg(not(debug_assertions))]
pub const fn accepts_any_seal() -> bool {
	false
}

/// The environment variable naming a file that holds a test clock's block
/// spacing in milliseconds (see [`stamp_spacing_ms`]).
pub const STAMP_SPACING_FILE_ENV: &str = "MLPOW_TEST_STAMP_SPACING_FILE";

/// A debug node's test clock for the blocks it builds: with
/// `MLPOW_TEST_STAMP_SPACING_FILE` naming a file that holds a number of
/// milliseconds, each block this node builds is stamped that long after its
/// parent (block 1 at the chain's launch time) instead of with its clock,
/// read again for every block so that a test can change the spacing as the
/// chain grows. This is how a test makes the attacker's chain of issue 22
/// (stamped from the launch time on, on schedule to gather work, then six
/// target times apart to drive its difficulty to the floor) with a real
/// node. Like [`accepts_any_seal`], release builds compile it to `None`
/// and a node refuses it on a chain that is not a development chain.
pub fn stamp_spacing_ms() -> Option<u64> {
	millis_in_file(STAMP_SPACING_FILE_ENV)
}

/// The environment variable naming a file that holds a delay in
/// milliseconds (see [`import_delay_ms`]).
pub const IMPORT_DELAY_FILE_ENV: &str = "MLPOW_TEST_IMPORT_DELAY_FILE";

/// A debug node that imports slowly: with `MLPOW_TEST_IMPORT_DELAY_FILE`
/// naming a file that holds a number of milliseconds, the import queue
/// waits that long before it verifies each block from the network, read
/// again for every block so that a test can slow a node down after it
/// synced. This is how a test shows that finality waits for a heavier chain
/// that sync imports for longer than the node's settle time (issue 22,
/// property 3), without mining thousands of blocks: the node stands for a
/// slow machine or a slow link. Release builds compile it to `None`.
pub fn import_delay_ms() -> Option<u64> {
	millis_in_file(IMPORT_DELAY_FILE_ENV)
}

/// The number of milliseconds in the file that the variable `env` names,
/// read now; `None` without the variable, the file or a number, and always
/// in a release build.
fn millis_in_file(env: &str) -> Option<u64> {
	if !cfg!(debug_assertions) {
		return None;
	}
	let path = std::env::var_os(env)?;
	let text = std::fs::read_to_string(&path).ok()?;
	let millis = text.trim().parse().ok();
	if millis.is_none() {
		log::warn!(target: "mlpow", "{env}: {path:?} holds no number of milliseconds");
	}
	millis
}
