//! The messages, as JSON-RPC in Stratum v1's style: a request is
//! `{"id", "method", "params": [...]}`, its answer `{"id", "result",
//! "error"}` with the error as `[code, message, null]`, and a notification
//! (pool to miner) a request whose `id` is `null`.

use mlpow_primitives::ChallengeParams;
use mlpow_work::{Hex32, HexU256};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Any one line of the protocol, before it is known which kind it is.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Message {
	/// The request's id (`null` in a notification).
	#[serde(default)]
	pub id: Value,
	/// Present in requests and notifications.
	#[serde(default)]
	pub method: Option<String>,
	/// A request's or notification's parameters.
	#[serde(default)]
	pub params: Value,
	/// An answer's result.
	#[serde(default)]
	pub result: Value,
	/// An answer's error: `[code, message, data]` (or `{code, message}`).
	#[serde(default)]
	pub error: Value,
}

/// The longest `id` a request may carry (a number, or a string of at most
/// this many bytes), so that echoing it back costs nothing.
pub const MAX_ID_LEN: usize = 64;

impl Message {
	/// Parses one line; the error says why it is not a message. An `id`
	/// that is not `null`, a number or a short string is refused (and the
	/// answer's `id` is then `null`).
	pub fn parse(line: &str) -> Result<Self, String> {
		let message: Self = serde_json::from_str(line).map_err(|e| format!("not a JSON-RPC message: {e}"))?;
		match &message.id {
			Value::Null | Value::Number(_) => Ok(message),
			Value::String(s) if s.len() <= MAX_ID_LEN => Ok(message),
			_ => Err(format!("an id must be a number or a string of at most {MAX_ID_LEN} bytes")),
		}
	}

	/// The `i`th parameter as a string.
	pub fn str_param(&self, i: usize) -> Option<&str> {
		self.params.get(i)?.as_str()
	}

	/// An answer's error, if it is one: `(code, message)`.
	pub fn error(&self) -> Option<(i64, String)> {
		match &self.error {
			Value::Null => None,
			Value::Array(e) => Some((
				e.first().and_then(Value::as_i64).unwrap_or(0),
				e.get(1).and_then(Value::as_str).unwrap_or("").to_string(),
			)),
			Value::Object(e) => Some((
				e.get("code").and_then(Value::as_i64).unwrap_or(0),
				e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
			)),
			other => Some((0, other.to_string())),
		}
	}
}

/// A request line, `\n`-terminated.
pub fn request(id: u64, method: &str, params: Value) -> String {
	line(json!({ "id": id, "method": method, "params": params }))
}

/// A notification line (`id` null), `\n`-terminated.
pub fn notification(method: &str, params: Value) -> String {
	line(json!({ "id": null, "method": method, "params": params }))
}

/// A successful answer to request `id`, `\n`-terminated.
pub fn answer(id: &Value, result: Value) -> String {
	line(json!({ "id": id, "result": result, "error": null }))
}

/// A refusal of request `id` with `code` (see [`crate::codes`]), `\n`-terminated.
pub fn refusal(id: &Value, code: i32, message: &str) -> String {
	line(json!({ "id": id, "result": null, "error": [code, message, null] }))
}

fn line(value: Value) -> String {
	let mut text = value.to_string();
	text.push('\n');
	text
}

/// `mining.subscribe`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
	/// The pool's name for the connection.
	pub session: String,
	/// The nonce prefix, `0x` hex.
	pub nonce_prefix: String,
	/// Its width in bits.
	pub nonce_prefix_bits: u32,
}

/// `mining.notify`'s one parameter: a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobNotice {
	/// The pool's name for the job.
	pub job_id: String,
	/// The job builds on a new parent: drop every earlier one.
	pub clean_jobs: bool,
	/// Hash of the header to seal, without its seal.
	pub pre_hash: Hex32,
	/// The block it builds on.
	pub parent_hash: Hex32,
	/// Its number.
	pub number: u64,
	/// The puzzle's shape.
	pub params: ChallengeParams,
	/// The epoch's weights seed.
	pub weights_seed: Hex32,
	/// The block difficulty (shares are judged by the share difficulty).
	pub difficulty: HexU256,
	/// Whether chosen-mode v2 shares are taken.
	pub chosen: bool,
}

/// The longest payout address taken (SS58 addresses have at most 50
/// characters).
pub const MAX_ADDRESS_LEN: usize = 64;

/// `ADDRESS.WORKER`, split; `WORKER` defaults to `default`. The name must
/// be 1 to 32 characters of `A-Z a-z 0-9 _ -`; the address is checked by
/// the pool (it decodes SS58).
pub fn split_worker(user: &str) -> Result<(&str, &str), String> {
	let (address, name) = user.split_once('.').unwrap_or((user, "default"));
	if address.is_empty() {
		return Err("no payout address (expected ADDRESS or ADDRESS.WORKER)".into());
	}
	// SS58 addresses are at most 50 characters; base58 decoding costs the
	// square of the length, so nothing longer is decoded.
	if address.len() > MAX_ADDRESS_LEN {
		return Err(format!(
			"an address of {} characters: SS58 addresses have at most {MAX_ADDRESS_LEN}",
			address.len()
		));
	}
	let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
	if name.is_empty() || name.len() > 32 || !name.chars().all(valid) {
		return Err(format!("bad worker name {name:?}: 1 to 32 of A-Z a-z 0-9 _ -"));
	}
	Ok((address, name))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn lines_are_one_json_object_each() {
		let r = request(4, "mining.submit", json!(["a.b", "1b4", "0x00"]));
		assert_eq!(r, "{\"id\":4,\"method\":\"mining.submit\",\"params\":[\"a.b\",\"1b4\",\"0x00\"]}\n");
		let m = Message::parse(r.trim_end()).unwrap();
		assert_eq!((m.method.as_deref(), m.str_param(1)), (Some("mining.submit"), Some("1b4")));
		let e = Message::parse(refusal(&json!(4), 21, "stale").trim_end()).unwrap();
		assert_eq!(e.error(), Some((21, "stale".into())));
		assert_eq!(Message::parse(answer(&json!(4), json!(true)).trim_end()).unwrap().error(), None);
		let n = Message::parse(notification("mining.set_difficulty", json!(["0x3e8"])).trim_end()).unwrap();
		assert!(n.id.is_null());
		assert!(Message::parse("[1,2]").is_err());
		assert!(Message::parse("{\"id\":").is_err());
	}

	#[test]
	fn workers_are_address_dot_name() {
		assert_eq!(split_worker("5Grw.rig1"), Ok(("5Grw", "rig1")));
		assert_eq!(split_worker("5Grw"), Ok(("5Grw", "default")));
		assert_eq!(split_worker("5Grw.a.b"), Err("bad worker name \"a.b\": 1 to 32 of A-Z a-z 0-9 _ -".into()));
		assert!(split_worker(".rig").is_err());
		assert!(split_worker("5Grw.").is_err());
		assert!(split_worker(&format!("5Grw.{}", "x".repeat(33))).is_err());
		assert!(split_worker(&"5".repeat(65)).unwrap_err().contains("at most 64"));
		assert!(Message::parse(&format!("{{\"id\":\"{}\",\"method\":\"m\"}}", "x".repeat(65))).is_err());
		assert!(Message::parse("{\"id\":[1],\"method\":\"m\"}").is_err());
		assert!(Message::parse("{\"id\":\"abc\",\"method\":\"m\"}").is_ok());
	}
}
