//! Admission: the job API's HTTP requests count against the job memory
//! budget before their bodies are read.
//!
//! jsonrpsee reads a request's body whole, and a blocking method gets a
//! copy of its params; so a request of `len` body bytes can hold about
//! [`BODY_COPIES`] times that before any method runs. Each request
//! reserves that much of the budget (with [`Jobs`]' held jobs, one
//! account) from its `Content-Length` (a body without one: the largest
//! allowed) and is refused at once, with a JSON-RPC error, if it does not
//! fit: busy (retry) or too large. Methods add what they allocate on top
//! (a job's matrices, a result being encoded) through the [`Hold`] they
//! find in the request's extensions.
//!
//! The reservations live as long as the connection, not the request: a
//! response's bytes wait in hyper's write buffer until the client has read
//! them, after the response body (and anything attached to it) is gone.
//! So every response says `Connection: close`, and hyper drops the
//! connection's service, [`Admit`], and with it its [`Hold`], once the
//! response is written out or the client is gone.

use super::{Jobs, Refused, Reservation};
use jsonrpsee::{
	core::BoxError,
	server::{HttpBody, HttpRequest, HttpResponse},
};
use std::{
	future::Future,
	pin::Pin,
	sync::{Arc, Mutex},
	task::{Context, Poll},
};

/// Copies of a request's body that may be in memory at once: the body as
/// read, the params copied for a blocking method, and a string that
/// carries JSON escapes (unescaped into a copy). Decoded matrices are the
/// job's own and reserved by `jobs_submit` when their shapes are known.
pub const BODY_COPIES: u64 = 3;

/// What any request holds besides its body: the parsed request, small
/// answers (statuses, errors), headers.
pub const REQUEST_BASE: u64 = 64 << 10;

/// The reservation for a request of `len` body bytes.
pub fn request_bytes(len: u64) -> u64 {
	len.saturating_mul(BODY_COPIES).saturating_add(REQUEST_BASE)
}

/// The longest request body a budget admits.
pub fn max_body(budget: u64) -> u32 {
	(budget.saturating_sub(REQUEST_BASE) / BODY_COPIES).min(u32::MAX as u64) as u32
}

/// The reservations of one connection's requests, released when the
/// connection is closed (see the module's documentation).
#[derive(Clone, Default)]
pub struct Hold(Arc<Mutex<Vec<Reservation>>>);

impl Hold {
	/// Keeps `reservation` until the connection is closed.
	pub fn keep(&self, reservation: Reservation) {
		self.0.lock().unwrap_or_else(|p| p.into_inner()).push(reservation);
	}

	/// What this connection has reserved, in bytes.
	pub fn bytes(&self) -> u64 {
		self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(Reservation::bytes).sum()
	}
}

/// Why a reservation was refused, for a JSON-RPC error: busy when only
/// other requests in progress are in the way (`own`: what the asking
/// request has reserved already, which waiting does not free).
pub fn refusal(what: &str, refused: Refused, own: u64) -> super::JobError {
	let mib = |b: u64| b.div_ceil(1 << 20);
	let Refused { asked, budget, held, reserved } = refused;
	if held.saturating_add(own).saturating_add(asked) <= budget {
		super::JobError::Busy(format!(
			"{what} needs {} MiB of job memory and requests in progress have {} MiB of the {} MiB",
			mib(asked),
			mib(reserved.saturating_sub(own)),
			budget >> 20
		))
	} else {
		super::JobError::TooLarge(format!(
			"{what} needs {} MiB of job memory; the worker's budget is {} MiB, of which held jobs take {} MiB{}; \
			 fetch and remove finished jobs (jobs_remove), use .npy files (--jobs-files-dir), or start the worker \
			 with a larger --jobs-memory-mib",
			mib(asked),
			budget >> 20,
			mib(held),
			if own > 0 { format!(" and this request {} MiB", mib(own)) } else { String::new() }
		))
	}
}

/// Adds [`Admit`] to each connection's service.
#[derive(Clone)]
pub struct AdmitLayer {
	jobs: Arc<Jobs>,
	max_body: u32,
}

impl AdmitLayer {
	pub fn new(jobs: Arc<Jobs>, max_body: u32) -> Self {
		Self { jobs, max_body }
	}
}

impl<S> tower::Layer<S> for AdmitLayer {
	type Service = Admit<S>;

	/// Called once per connection (jsonrpsee builds the middleware for
	/// each), so the [`Hold`] is the connection's.
	fn layer(&self, inner: S) -> Self::Service {
		Admit { inner, jobs: self.jobs.clone(), max_body: self.max_body, hold: Hold::default() }
	}
}

/// One connection's admission: reserves, then passes the request on with
/// the connection's [`Hold`] in its extensions; closes the connection
/// after the response.
#[derive(Clone)]
pub struct Admit<S> {
	inner: S,
	jobs: Arc<Jobs>,
	max_body: u32,
	hold: Hold,
}

impl<S, B> tower::Service<HttpRequest<B>> for Admit<S>
where
	S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
	S::Error: Into<BoxError> + 'static,
	S::Future: Send + 'static,
{
	type Response = HttpResponse;
	type Error = BoxError;
	type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

	fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
		self.inner.poll_ready(cx).map_err(Into::into)
	}

	fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
		let refuse = |status: u16, e: super::JobError| {
			Box::pin(std::future::ready(Ok::<_, BoxError>(error_response(status, e))))
		};
		let declared =
			request.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
		let len = match declared {
			Some(len) if len > self.max_body as u64 => {
				return refuse(
					413,
					super::JobError::TooLarge(format!(
						"the request is {} MiB; with this worker's job memory ({} MiB, which must hold {BODY_COPIES} \
						 copies of a request while it is read) the job API takes at most {} MiB; send .npy files \
						 (--jobs-files-dir) or start the worker with a larger --jobs-memory-mib",
						len.div_ceil(1 << 20),
						self.jobs.memory().0 >> 20,
						self.max_body >> 20
					)),
				);
			}
			Some(len) => len,
			// Chunked: jsonrpsee reads up to the limit.
			None => self.max_body as u64,
		};
		match self.jobs.reserve(request_bytes(len)) {
			Ok(reservation) => self.hold.keep(reservation),
			Err(refused) => {
				let e = refusal(&format!("reading a {} KiB request", len.div_ceil(1024)), refused, 0);
				let status = if matches!(e, super::JobError::Busy(_)) { 503 } else { 413 };
				return refuse(status, e);
			}
		}
		request.extensions_mut().insert(self.hold.clone());
		let inner = self.inner.call(request);
		Box::pin(async move {
			let mut response = inner.await.map_err(Into::into)?;
			if let Ok(close) = "close".parse() {
				response.headers_mut().insert("connection", close);
			}
			Ok(response)
		})
	}
}

/// A JSON-RPC error answer to a request that was not read (so its id is
/// unknown: `null`), with an HTTP status that says the same.
fn error_response(status: u16, e: super::JobError) -> HttpResponse {
	let body = serde_json::json!({
		"jsonrpc": "2.0",
		"error": { "code": e.code(), "message": e.to_string() },
		"id": null,
	})
	.to_string();
	let mut builder = HttpResponse::builder()
		.status(status)
		.header("content-type", "application/json; charset=utf-8")
		// The body was not read: the connection cannot carry another request.
		.header("connection", "close");
	if status == 503 {
		builder = builder.header("retry-after", "1");
	}
	builder.body(HttpBody::from(body.clone())).unwrap_or_else(|_| HttpResponse::new(HttpBody::from(body)))
}
