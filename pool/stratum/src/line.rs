//! Newline framing with a length limit: a peer cannot make the other side
//! buffer more than the limit, whatever it sends.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Why no line came.
#[derive(Debug, PartialEq, Eq)]
pub enum LineError {
	/// The line passed the limit before its newline (the rest is unread).
	TooLong(usize),
	/// The bytes are not UTF-8.
	NotUtf8,
	/// The connection failed.
	Io(String),
}

impl std::fmt::Display for LineError {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		match self {
			Self::TooLong(limit) => write!(f, "a line longer than {limit} bytes"),
			Self::NotUtf8 => f.write_str("a line that is not UTF-8"),
			Self::Io(e) => write!(f, "connection error: {e}"),
		}
	}
}

/// Reads the next non-empty line into `buf` (cleared first), without its
/// `\n` or `\r\n`: `Ok(false)` at the end of the stream. A line longer than
/// `limit` bytes is an error as soon as the limit is passed. The limit is
/// read again whenever more bytes arrive, so a reader waiting for a line
/// sees a limit raised meanwhile (a pool raises it when a job with longer
/// seals is sent).
pub async fn read_line<R: AsyncBufRead + Unpin>(
	reader: &mut R,
	buf: &mut Vec<u8>,
	limit: &AtomicUsize,
) -> Result<bool, LineError> {
	loop {
		buf.clear();
		loop {
			let available = reader.fill_buf().await.map_err(|e| LineError::Io(e.to_string()))?;
			let limit = limit.load(Ordering::Relaxed);
			if available.is_empty() {
				// The end: a last line without its newline still counts.
				return Ok(!buf.is_empty());
			}
			let (take, done) = match available.iter().position(|&b| b == b'\n') {
				Some(at) => (at + 1, true),
				None => (available.len(), false),
			};
			if buf.len() + take > limit + 1 {
				return Err(LineError::TooLong(limit));
			}
			buf.extend_from_slice(&available[..take]);
			reader.consume(take);
			if done {
				break;
			}
		}
		if buf.last() == Some(&b'\n') {
			buf.pop();
			if buf.last() == Some(&b'\r') {
				buf.pop();
			}
		}
		if !buf.is_empty() {
			std::str::from_utf8(buf).map_err(|_| LineError::NotUtf8)?;
			return Ok(true);
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use tokio::io::BufReader;

	async fn lines(input: &[u8], limit: usize) -> Vec<Result<String, LineError>> {
		// A tiny buffer, so lines arrive in pieces.
		let mut reader = BufReader::with_capacity(3, input);
		let (mut out, mut buf, limit) = (Vec::new(), Vec::new(), AtomicUsize::new(limit));
		loop {
			match read_line(&mut reader, &mut buf, &limit).await {
				Ok(true) => out.push(Ok(String::from_utf8(buf.clone()).unwrap())),
				Ok(false) => return out,
				Err(e) => {
					out.push(Err(e));
					return out;
				}
			}
		}
	}

	#[tokio::test]
	async fn lines_split_on_newlines_within_the_limit() {
		let got = lines(b"ab\r\n\n\r\ncdef\nlast", 4).await;
		assert_eq!(got, vec![Ok("ab".into()), Ok("cdef".into()), Ok("last".into())]);
		assert_eq!(lines(b"ab\r\r\n", 4).await, vec![Ok("ab\r".into())], "one \\r is the terminator's");
		assert_eq!(lines(b"abcde\nx\n", 4).await, vec![Err(LineError::TooLong(4))]);
		assert_eq!(lines(b"abcd\r\n", 4).await, vec![Err(LineError::TooLong(4))], "\\r counts");
		assert_eq!(lines(b"\xff\xfe\n", 4).await, vec![Err(LineError::NotUtf8)]);
		assert_eq!(lines(b"", 4).await, vec![]);
	}
}
