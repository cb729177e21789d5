//! The v2 seal: the winning nonce and tile, and for chosen matrices the
//! commitments and the opened rows with their Merkle paths.
//!
//! ```text
//! nonce u64 LE || tile_i u32 LE || tile_j u32 LE || mode u8          (17 bytes)
//! mode 1 only:  commit_a [32] || commit_bt [32]
//!               || A rows  tile_i*t .. +t   (t*k bytes, i8)  || A path  (32 * depth(m/t))
//!               || Bt rows tile_j*t .. +t   (t*k bytes, i8)  || Bt path (32 * depth(n/t))
//! ```
//! The length is fixed by the parameters and the mode, so decoding checks it
//! before reading anything else; there is no second encoding of a seal.

use super::{commit::depth, noise::Mode};
use crate::{params::ChallengeParams, seal::Seal, Hash32};
use alloc::vec::Vec;

/// Bytes before the openings.
pub const HEAD_LEN: usize = 17;

/// The longest seal any valid parameters allow: a chosen-mode seal opening
/// `2*t*k = 2^19` bytes of rows, with paths over `65536/16 = 4096` leaves on
/// both sides (12 hashes each). About 513 KiB: a header carrying it stays
/// under Substrate's 1 MiB block-announcement limit.
pub const MAX_LEN: usize = HEAD_LEN + 64 + crate::params::MAX_OPENED_BYTES as usize + 2 * 12 * 32;

/// A decoded v2 seal, borrowing its openings from the seal bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealV2<'a> {
	/// Which nonce and tile.
	pub id: Seal,
	/// The openings, for chosen matrices.
	pub openings: Option<Openings<'a>>,
}

/// What a chosen-matrix seal opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Openings<'a> {
	/// The Merkle root of `A`'s row blocks.
	pub commit_a: Hash32,
	/// The Merkle root of `Bt`'s row blocks.
	pub commit_bt: Hash32,
	/// `t x k` bytes: rows `tile_i * t ..` of `A`.
	pub a_rows: &'a [u8],
	/// `depth(m / t)` sibling hashes, leaf level first.
	pub a_path: &'a [u8],
	/// `t x k` bytes: rows `tile_j * t ..` of `Bt`.
	pub bt_rows: &'a [u8],
	/// `depth(n / t)` sibling hashes.
	pub bt_path: &'a [u8],
}

/// The exact length of a seal of `mode` under `params` (which must be valid).
pub fn encoded_len(params: &ChallengeParams, mode: Mode) -> usize {
	match mode {
		Mode::Seeded => HEAD_LEN,
		Mode::Chosen => {
			let rows = params.t as usize * params.k as usize;
			let paths = 32 * (depth(params.tiles_m()) + depth(params.tiles_n())) as usize;
			HEAD_LEN + 64 + 2 * rows + paths
		}
	}
}

/// Decodes a seal; `None` for an unknown mode or a length other than the
/// mode's exact one. `params` must be valid (the caller checks first).
pub fn decode<'a>(params: &ChallengeParams, bytes: &'a [u8]) -> Option<SealV2<'a>> {
	let head = bytes.get(..HEAD_LEN)?;
	let id = Seal::from_bytes(&head[..16])?;
	let mode = match head[16] {
		0 => Mode::Seeded,
		1 => Mode::Chosen,
		_ => return None,
	};
	if bytes.len() != encoded_len(params, mode) {
		return None;
	}
	if mode == Mode::Seeded {
		return Some(SealV2 { id, openings: None });
	}
	let rows = params.t as usize * params.k as usize;
	let (da, db) = (32 * depth(params.tiles_m()) as usize, 32 * depth(params.tiles_n()) as usize);
	let rest = &bytes[HEAD_LEN..];
	let (commit_a, rest) = rest.split_at(32);
	let (commit_bt, rest) = rest.split_at(32);
	let (a_rows, rest) = rest.split_at(rows);
	let (a_path, rest) = rest.split_at(da);
	let (bt_rows, bt_path) = rest.split_at(rows);
	debug_assert_eq!(bt_path.len(), db);
	Some(SealV2 {
		id,
		openings: Some(Openings {
			commit_a: commit_a.try_into().ok()?,
			commit_bt: commit_bt.try_into().ok()?,
			a_rows,
			a_path,
			bt_rows,
			bt_path,
		}),
	})
}

/// The 17-byte seal of a seeded ticket.
pub fn encode_seeded(id: &Seal) -> Vec<u8> {
	let mut out = Vec::with_capacity(HEAD_LEN);
	out.extend_from_slice(&id.to_bytes());
	out.push(Mode::Seeded as u8);
	out
}

/// The seal of a chosen-matrix ticket with its openings.
pub fn encode_chosen(
	id: &Seal,
	commits: (&Hash32, &Hash32),
	a_rows: &[i8],
	a_path: &[Hash32],
	bt_rows: &[i8],
	bt_path: &[Hash32],
) -> Vec<u8> {
	let mut out = Vec::with_capacity(HEAD_LEN + 64 + 2 * a_rows.len() + 32 * (a_path.len() + bt_path.len()));
	out.extend_from_slice(&id.to_bytes());
	out.push(Mode::Chosen as u8);
	out.extend_from_slice(commits.0);
	out.extend_from_slice(commits.1);
	out.extend(a_rows.iter().map(|&v| v as u8));
	a_path.iter().for_each(|h| out.extend_from_slice(h));
	out.extend(bt_rows.iter().map(|&v| v as u8));
	bt_path.iter().for_each(|h| out.extend_from_slice(h));
	out
}

#[cfg(test)]
mod tests {
	use super::*;
	use alloc::vec;

	#[test]
	fn lengths_are_exact() {
		let p = ChallengeParams::DEV_V2; // 4 x 4 tiles: paths of 2
		assert_eq!(encoded_len(&p, Mode::Seeded), 17);
		assert_eq!(encoded_len(&p, Mode::Chosen), 17 + 64 + 2 * 16 * 64 + 4 * 32);
		let id = Seal { nonce: 9, tile_i: 1, tile_j: 2 };
		let seeded = encode_seeded(&id);
		assert_eq!(decode(&p, &seeded), Some(SealV2 { id, openings: None }));
		let (a, b) = (vec![1i8; 16 * 64], vec![-2i8; 16 * 64]);
		let chosen = encode_chosen(&id, (&[3; 32], &[4; 32]), &a, &[[5; 32]; 2], &b, &[[6; 32]; 2]);
		let o = decode(&p, &chosen).unwrap().openings.unwrap();
		assert_eq!(
			(o.commit_a, o.commit_bt, o.a_rows[0], o.bt_rows[0], o.a_path[0], o.bt_path[63]),
			([3; 32], [4; 32], 1, 254, 5, 6)
		);
		for bad in [
			&chosen[..chosen.len() - 1],
			&[&chosen[..], &[0]].concat()[..],
			&seeded[..16],
			&[&seeded[..], &[0]].concat()[..],
		] {
			assert_eq!(decode(&p, bad), None);
		}
		let mut wrong_mode = seeded.clone();
		wrong_mode[16] = 2;
		assert_eq!(decode(&p, &wrong_mode), None);
	}
}
