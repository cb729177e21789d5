// The fused correction of a useful nonce (kernels/v2.cu, "3."): what both
// transcript kernels (v2.cu, v2_wgmma.cu) and the host harness share to
// compute `D` in their epilogue from int8 limbs, and to write the exact
// product where the caller says. NVRTC gets it pasted in place of v2.cu's
// #include (kernels.rs `source()`); the host harness includes it.

#ifndef MLPOW_V2_CORRECTION_CUH
#define MLPOW_V2_CORRECTION_CUH

// |U| <= 64 k/r and |V| <= 128 k/r (sums of k/r int8 values), too wide for
// int8 tensor cores, so each is split into `limbs` int8 limbs in base 128:
// U = sum_l 128^l U_l, the low limbs in -64..63 and the top one what
// remains (the host picks `limbs` so that it fits -127..127: 2 at the
// presets, at most 3, since `validate` keeps k <= r * r). Then
//     D = sum_l 128^l [U_l | E] * [G | V_l]^T,
// each term a 2r-deep int8 product, summed from the top limb down by
// Horner's rule (times 128 between limbs). Every int32 sum here wraps, as
// the noisy product's do; the exact product fits int32, so the result is
// exact. `corr.a` row x holds, limb by limb from l = 0, U_l[x][0..r] then
// E_L[x][0..r] as values; `corr.b` row y G_L[y][0..r] then V_l[y][0..r];
// then, with `corr.extra`, 32 more columns: a short stretch of the caller's
// depth that the piece leaves over (its last 2 of k are salt), folded in
// as -A_rem on A's side and Bt_rem on Bt's (zeros past its width), so that
// the output gains A_rem * Bt_rem^T with no pass of its own over the
// output. `width` bytes a row, rows padded with zeros to whole blocks.
struct V2Corr {
	const i8 *a, *b;
	u32 limbs, extra;
};
static_assert(sizeof(V2Corr) == 24, "V2Corr is cuda::v2::Correction");

MLPOW_FN u32 v2_corr_width(V2Corr corr, u32 r) {
	return corr.limbs * 2 * r + corr.extra * V2_BK;
}

// The correction's k-steps: 2r / 32 a limb, and the remainder's one; none
// without limbs (seeded mining).
MLPOW_FN u32 v2_corr_steps(V2Corr corr, u32 r) {
	return corr.a && corr.b ? corr.limbs * (2 * r / V2_BK) + corr.extra : 0;
}

// Row `idx / r`, column `idx % r` of a side's limbs (rows of `width` bytes
// in `dst`): the limbs of `sums[idx]` and the value of the raw noise byte
// `noise[idx]`, side 0 (A's) as [U_l | E], side 1 (Bt's) as [G | V_l].
MLPOW_FN void mlpow2_limbs_one(u64 idx, i8 *dst, u32 width, const i32 *sums, const i8 *noise, u32 r, u32 limbs,
	int side) {
	const u64 row = idx / r;
	const u32 q = (u32)(idx % r);
	const i8 e = v2_seven(noise[idx]);
	i32 w = sums[idx];
	for (u32 l = 0; l < limbs; l++) {
		// The low limbs: w mod 128 in -64..63; exact division after.
		const i32 limb = l + 1 == limbs ? w : ((w + 64) & 127) - 64;
		w = (w - limb) / 128;
		i8 *at = dst + row * width + l * 2 * r;
		at[side ? r + q : q] = (i8)limb;
		at[side ? q : r + q] = e;
	}
}

// Item `idx` of the folded remainder (`rows x depth`, depth <= 32): its
// value at (row, z) of `src` (strides `rs`, `cs`), negated on A's side,
// into column `col0 + z` of row `row` of `dst` (rows of `width` bytes).
MLPOW_FN void mlpow2_slab_one(u64 idx, i8 *dst, u32 width, u32 col0, const i8 *src, u64 rs, u64 cs, u32 depth,
	int negate) {
	const u64 row = idx / depth;
	const u32 z = (u32)(idx % depth);
	const i8 v = src[row * rs + z * cs];
	dst[row * width + col0 + z] = negate ? (i8)-v : v;
}

// Where correction step `c` starts in a row of `corr.a` / `corr.b`: 32 of
// a limb's 2r-deep product (top limb first), then the folded remainder's.
MLPOW_FN u32 v2_corr_col(u32 c, u32 r, u32 limbs) {
	const u32 per_limb = 2 * r / V2_BK;
	if (c >= limbs * per_limb) return limbs * 2 * r;
	return (limbs - 1 - c / per_limb) * 2 * r + (c % per_limb) * V2_BK;
}

// Whether correction step `c` begins a lower limb, so that the sum so far
// is multiplied by 128 first (the folded remainder's step adds to limb 0,
// unscaled).
MLPOW_FN bool v2_corr_shifts(u32 c, u32 r, u32 limbs) {
	const u32 per_limb = 2 * r / V2_BK;
	return c > 0 && c < limbs * per_limb && c % per_limb == 0;
}

// Where step `step` of a block's pipeline reads (`steps` main steps, then
// the correction's): the rows' bases on A's side and Bt's, the step's
// index along a row and the rows' length, as `v2_global_offset` takes
// them. Shared by the kernel and the host harness.
struct V2StepSource {
	const i8 *a, *bt;
	u32 kt, row;
};

MLPOW_FN V2StepSource v2_step_source(u32 step, u32 steps, const i8 *a, const i8 *bt, V2Corr corr, u32 k, u32 r) {
	if (step < steps) return V2StepSource{a, bt, step, k};
	const u32 col = v2_corr_col(step - steps, r, corr.limbs);
	return V2StepSource{corr.a + col, corr.b + col, 0, v2_corr_width(corr, r)};
}

// Where a useful job's exact product goes: the top-left `rows x cols` of
// the piece's (the caller's block; the rest is the piece's padding) at
// `ptr`, rows `ldc` apart, stored, or added (`accumulate`: a later piece
// along the depth, written in place; the fused kernel only). `ptr` null:
// no product (seeded mining). 32 bytes, `cuda::v2::ProductOut`.
struct V2Out {
	i32 *ptr;
	u64 ldc;
	u32 rows, cols;
	u32 accumulate, reserved;
};
static_assert(sizeof(V2Out) == 32, "V2Out is cuda::v2::ProductOut");

#endif  // MLPOW_V2_CORRECTION_CUH
