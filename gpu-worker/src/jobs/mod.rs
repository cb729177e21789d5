//! Useful mode: the worker as a local int8 matrix-multiplication service
//! whose every job is also mining (puzzle v2, chosen matrices).
//!
//! People send `A` and `B` (any shape, values in `-64..=63`) to the job API
//! ([`api`]); the job is cut into the chain's puzzle shape ([`plan`]) and
//! queued ([`queue`]); mining lanes take its pieces before anything else,
//! mine one nonce on each (noise, the transcript, the tickets) and recover
//! the piece's exact product from the noisy one. A winning ticket's seal
//! carries the openings of the piece's matrices, so the node publishes a
//! block every node can check. With no job waiting, lanes mine seeded
//! matrices as before.
//!
//! Jobs live in the worker's memory: they survive new blocks (a piece's
//! product is exact whatever the header; only its tickets go stale), node
//! restarts and reconnects (the lanes pause without work and resume), but
//! not a restart of the worker.

mod admit;
pub mod api;
pub mod input;
pub mod npy;
pub mod plan;
pub mod queue;
mod reserve;

pub use queue::{Jobs, Piece, PieceAt, State, Status};
pub use reserve::{Refused, Reservation};

/// JSON-RPC error codes of the job API.
pub mod codes {
	/// The job is malformed: shapes, data, value ranges, file.
	pub const INVALID_JOB: i32 = 2000;
	/// The job does not fit the worker's job memory now.
	pub const TOO_LARGE: i32 = 2001;
	/// No job has that id (never submitted, or removed).
	pub const UNKNOWN_JOB: i32 = 2002;
	/// The job has no product yet (or was cancelled).
	pub const NOT_DONE: i32 = 2003;
	/// The result could not be written where asked.
	pub const WRITE_FAILED: i32 = 2004;
	/// The job memory is taken by other requests in progress: retry.
	pub const BUSY: i32 = 2005;
	/// The GPU failed to compute (a driver error, or a product that failed
	/// its check twice): nothing it wrote is to be trusted.
	pub const DEVICE_FAILED: i32 = 2006;
}

/// Why the job API refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
	Invalid(String),
	TooLarge(String),
	Unknown(u64),
	NotDone(u64, State),
	WriteFailed(String),
	Busy(String),
	Device(String),
}

impl JobError {
	/// The JSON-RPC error code ([`codes`]).
	pub fn code(&self) -> i32 {
		match self {
			Self::Invalid(_) => codes::INVALID_JOB,
			Self::TooLarge(_) => codes::TOO_LARGE,
			Self::Unknown(_) => codes::UNKNOWN_JOB,
			Self::NotDone(..) => codes::NOT_DONE,
			Self::WriteFailed(_) => codes::WRITE_FAILED,
			Self::Busy(_) => codes::BUSY,
			Self::Device(_) => codes::DEVICE_FAILED,
		}
	}
}

impl std::fmt::Display for JobError {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		match self {
			Self::Invalid(why) => write!(f, "invalid job: {why}"),
			Self::TooLarge(why) => write!(f, "job too large: {why}"),
			Self::Unknown(id) => write!(f, "no job {id} (never submitted, or removed)"),
			Self::NotDone(id, State::Cancelled) => write!(f, "job {id} was cancelled and has no product"),
			Self::NotDone(id, state) => write!(f, "job {id} is {state:?}, not done yet"),
			Self::WriteFailed(why) => write!(f, "could not write the result: {why}"),
			Self::Busy(why) => write!(f, "busy: the job API's memory budget is in use, retry: {why}"),
			Self::Device(why) => write!(f, "the GPU failed: {why}"),
		}
	}
}

impl std::error::Error for JobError {}
