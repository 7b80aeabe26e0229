//! Our own f32 matrix product for x86-64, with AVX-512 and AVX2/FMA
//! micro-kernels chosen at run time ([`crate::simd::level`]).
//!
//! Written here rather than left to the `gemm` crate (still used on other
//! architectures) for two reasons measured on a 2-core Xeon with AVX-512:
//! `gemm` picks its instruction set internally from the CPU, so the engine could
//! not be forced to its AVX2 path to measure and test it on an AVX-512 machine;
//! and the products the attention makes (k = 64, thousands of calls per segment)
//! need their packed operands kept across calls, which `gemm`'s interface does
//! not allow.
//!
//! The layout is the usual one (Goto/BLIS): B is packed in `KC × NR` column
//! panels, A in `MR × KC` row panels, and a register-blocked micro-kernel adds
//! `MR × NR` tiles of C, vectorised along C's rows (contiguous in memory).

#![allow(unsafe_code)]

use std::cell::RefCell;

use crate::simd::Simd;

/// A read-only matrix operand: element `(i, j)` is at `ptr[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: a MatRef is only made from a borrowed slice that outlives the product
// (see `ops::matmul`), and is only read.
unsafe impl Send for MatRef {}
unsafe impl Sync for MatRef {}

/// A right-hand operand that packs itself: a plain matrix ([`MatRef`]) or one
/// made on the fly, such as a convolution's unfolded input (an implicit im2col:
/// the unfolded matrix is never written out, only its packed panels).
pub(crate) trait BSource: Sync {
    /// Writes `B(p0 + p, j0 + j)` for `p < kc`, `j < nc` into `out` as panels of
    /// `nr` columns, k-major (`out[panel][p][j]`), zero-padded to whole panels.
    ///
    /// # Safety
    /// The block lies inside the operand; `out` holds `kc · nc` rounded up to
    /// whole panels.
    unsafe fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]);
}

impl BSource for MatRef {
    unsafe fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded from the caller.
        unsafe {
            if nr == x86::Avx512::NR {
                pack_b::<x86::Avx512>(*self, p0, kc, j0, nc, out);
            } else {
                pack_b::<x86::Avx2>(*self, p0, kc, j0, nc, out);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (p0, kc, j0, nc, nr, out);
    }
}

/// The output: row-major with row stride `ld`.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    ld: usize,
}

// SAFETY: threads write disjoint row or column ranges of the output (see
// `sgemm`), which the caller borrows uniquely for the duration.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// Depth of a packed block: a `KC × NR` panel of B (32 KB with AVX-512) stays in
/// the first-level cache while every `MR × KC` panel of A streams past it.
const KC: usize = 192;
/// Columns of B packed at a time (2 MB with `KC`: the last-level cache's share).
const NC: usize = 2048;

/// One instruction set's micro-kernel and its tile.
pub(crate) trait Kernel {
    /// Rows of the C tile (broadcasts of A).
    const MR: usize;
    /// Columns of the C tile (vectors of B).
    const NR: usize;
    /// Rows of A packed at a time (the second-level cache's share).
    const MC: usize;
    /// `c[MR × NR] (+)= a · b` over `kc` steps; `a` is `kc × MR` (k-major), `b`
    /// is `kc × NR`, `c` has row stride `ldc`.
    ///
    /// # Safety
    /// The CPU supports the kernel's instruction set; `a`, `b` hold `kc` steps;
    /// `c` addresses an `MR × NR` tile with row stride `ldc`.
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, acc: bool);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kernel;
    use std::arch::x86_64::*;

    /// 12 × 32: 24 accumulators in 32 zmm registers, two vectors of B and one
    /// broadcast of A per step (24 FMAs against 14 loads).
    pub struct Avx512;

    impl Kernel for Avx512 {
        const MR: usize = 12;
        const NR: usize = 32;
        const MC: usize = 384;

        #[inline]
        unsafe fn tile(
            kc: usize,
            a: *const f32,
            b: *const f32,
            c: *mut f32,
            ldc: usize,
            acc: bool,
        ) {
            // SAFETY: forwarded from the caller's contract.
            unsafe { tile512(kc, a, b, c, ldc, acc) }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn tile512(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, acc: bool) {
        const MR: usize = 12;
        let mut r = [[_mm512_setzero_ps(); 2]; MR];
        // SAFETY (whole body): `a` holds kc·MR and `b` kc·32 floats, `c` an
        // MR × 32 tile with row stride ldc (the trait's contract).
        unsafe {
            for p in 0..kc {
                let b0 = _mm512_loadu_ps(b.add(p * 32));
                let b1 = _mm512_loadu_ps(b.add(p * 32 + 16));
                let ap = a.add(p * MR);
                for (i, ri) in r.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(i));
                    ri[0] = _mm512_fmadd_ps(av, b0, ri[0]);
                    ri[1] = _mm512_fmadd_ps(av, b1, ri[1]);
                }
            }
            for (i, ri) in r.iter().enumerate() {
                let cp = c.add(i * ldc);
                let (mut v0, mut v1) = (ri[0], ri[1]);
                if acc {
                    v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cp));
                    v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cp.add(16)));
                }
                _mm512_storeu_ps(cp, v0);
                _mm512_storeu_ps(cp.add(16), v1);
            }
        }
    }

    /// 6 × 16: 12 accumulators in 16 ymm registers (the classic Haswell tile).
    pub struct Avx2;

    impl Kernel for Avx2 {
        const MR: usize = 6;
        const NR: usize = 16;
        const MC: usize = 144;

        #[inline]
        unsafe fn tile(
            kc: usize,
            a: *const f32,
            b: *const f32,
            c: *mut f32,
            ldc: usize,
            acc: bool,
        ) {
            // SAFETY: forwarded from the caller's contract.
            unsafe { tile256(kc, a, b, c, ldc, acc) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile256(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, acc: bool) {
        const MR: usize = 6;
        let mut r = [[_mm256_setzero_ps(); 2]; MR];
        // SAFETY (whole body): as in tile512, with 16-float rows.
        unsafe {
            for p in 0..kc {
                let b0 = _mm256_loadu_ps(b.add(p * 16));
                let b1 = _mm256_loadu_ps(b.add(p * 16 + 8));
                let ap = a.add(p * MR);
                for (i, ri) in r.iter_mut().enumerate() {
                    let av = _mm256_set1_ps(*ap.add(i));
                    ri[0] = _mm256_fmadd_ps(av, b0, ri[0]);
                    ri[1] = _mm256_fmadd_ps(av, b1, ri[1]);
                }
            }
            for (i, ri) in r.iter().enumerate() {
                let cp = c.add(i * ldc);
                let (mut v0, mut v1) = (ri[0], ri[1]);
                if acc {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cp));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cp.add(8)));
                }
                _mm256_storeu_ps(cp, v0);
                _mm256_storeu_ps(cp.add(8), v1);
            }
        }
    }
}

thread_local! {
    /// Packing buffers (A block, B block, edge tile), reused across products.
    static BUFS: RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// Packs rows `i0..i0+mc` and depths `p0..p0+kc` of `a` into `MR`-row panels,
/// k-major, zero-padded to whole panels.
///
/// # Safety
/// Every `(i, p)` in the block lies inside `a`'s buffer.
unsafe fn pack_a<K: Kernel>(
    a: MatRef,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    out: &mut [f32],
) {
    let mr = K::MR;
    for (ip, panel) in out
        .chunks_exact_mut(mr * kc)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        let rows = mr.min(mc - ip * mr);
        if rows < mr {
            panel.fill(0.0);
        }
        if a.rs == 1 {
            // Column-major A (the attention's transposed scores): each step's
            // rows are contiguous, one short copy per step.
            for p in 0..kc {
                // SAFETY: rows (i0 + ip·mr ..+ rows) at depth p0 + p are inside
                // the block and contiguous.
                let src = unsafe {
                    std::slice::from_raw_parts(
                        a.ptr
                            .offset((i0 + ip * mr) as isize + (p0 + p) as isize * a.cs),
                        rows,
                    )
                };
                panel[p * mr..p * mr + rows].copy_from_slice(src);
            }
            continue;
        }
        for i in 0..rows {
            // SAFETY: (i0 + ip·mr + i, p0 + p) is inside the block.
            let base = unsafe {
                a.ptr
                    .offset((i0 + ip * mr + i) as isize * a.rs + p0 as isize * a.cs)
            };
            for p in 0..kc {
                // SAFETY: as above.
                panel[p * mr + i] = unsafe { *base.offset(p as isize * a.cs) };
            }
        }
    }
}

/// Packs depths `p0..p0+kc` and columns `j0..j0+nc` of `b` into `NR`-column
/// panels, k-major, zero-padded to whole panels.
///
/// # Safety
/// Every `(p, j)` in the block lies inside `b`'s buffer.
unsafe fn pack_b<K: Kernel>(
    b: MatRef,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    out: &mut [f32],
) {
    let nr = K::NR;
    for (jp, panel) in out
        .chunks_exact_mut(nr * kc)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let cols = nr.min(nc - jp * nr);
        if cols < nr {
            panel.fill(0.0);
        }
        let base = |p: usize, j: usize| {
            // SAFETY: (p0 + p, j0 + jp·nr + j) is inside the block.
            unsafe {
                b.ptr
                    .offset((p0 + p) as isize * b.rs + (j0 + jp * nr + j) as isize * b.cs)
            }
        };
        if b.cs == 1 && cols == nr {
            for p in 0..kc {
                // SAFETY: a row of NR contiguous floats inside the block. With
                // the length a constant, the copy is two vector moves instead of
                // a call to memcpy per row.
                let src = unsafe { std::slice::from_raw_parts(base(p, 0), K::NR) };
                panel[p * K::NR..(p + 1) * K::NR].copy_from_slice(src);
            }
        } else if b.cs == 1 {
            for p in 0..kc {
                // SAFETY: a row of `cols` contiguous floats inside the block.
                let src = unsafe { std::slice::from_raw_parts(base(p, 0), cols) };
                panel[p * nr..p * nr + cols].copy_from_slice(src);
            }
        } else {
            for j in 0..cols {
                let col = base(0, j);
                for p in 0..kc {
                    // SAFETY: as above.
                    panel[p * nr + j] = unsafe { *col.offset(p as isize * b.rs) };
                }
            }
        }
    }
}

/// One `mrr × nrr` tile of C (at most `MR × NR`): straight into C when whole,
/// through `edge` when it is cut by C's border.
///
/// # Safety
/// As [`Kernel::tile`], for a tile of `mrr × nrr` at `cp`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile_or_edge<K: Kernel>(
    kc: usize,
    ap: *const f32,
    bp: *const f32,
    cp: *mut f32,
    ldc: usize,
    mrr: usize,
    nrr: usize,
    acc: bool,
    edge: &mut [f32],
) {
    let nr = K::NR;
    if mrr == K::MR && nrr == nr {
        // SAFETY: a whole tile (the caller's contract).
        unsafe { K::tile(kc, ap, bp, cp, ldc, acc) };
        return;
    }
    // SAFETY: the edge buffer holds a whole tile.
    unsafe { K::tile(kc, ap, bp, edge.as_mut_ptr(), nr, false) };
    for i in 0..mrr {
        for j in 0..nrr {
            // SAFETY: inside the partial tile.
            unsafe {
                let d = cp.add(i * ldc + j);
                *d = if acc { *d } else { 0.0 } + edge[i * nr + j];
            }
        }
    }
}

/// `c (+)= a · b` for rows `rows` and columns `cols` of C on this thread.
///
/// # Safety
/// The operands cover `m × k` and `k × n`; `c` covers the rows and columns
/// given, and no other thread writes them.
#[allow(clippy::too_many_arguments)]
unsafe fn run<K: Kernel, B: BSource + ?Sized>(
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    k: usize,
    a: MatRef,
    b: &B,
    c: Out,
    accumulate: bool,
) {
    let (mr, nr) = (K::MR, K::NR);
    BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (abuf, bbuf, edge) = &mut *bufs;
        let mc_max = K::MC.min(rows.len().div_ceil(mr) * mr);
        let nc_max = NC.min(cols.len().div_ceil(nr) * nr);
        let kc_max = KC.min(k);
        abuf.resize(mc_max * kc_max, 0.0);
        bbuf.resize(nc_max * kc_max, 0.0);
        edge.resize(mr * nr, 0.0);
        for jc in cols.clone().step_by(NC) {
            let nc = NC.min(cols.end - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // SAFETY: the block lies inside b (the caller's contract).
                unsafe { b.pack(pc, kc, jc, nc, K::NR, bbuf) };
                let acc = accumulate || pc > 0;
                for ic in rows.clone().step_by(K::MC) {
                    let mc = K::MC.min(rows.end - ic);
                    // SAFETY: the block lies inside a.
                    unsafe { pack_a::<K>(a, ic, mc, pc, kc, abuf) };
                    for jr in (0..nc).step_by(nr) {
                        let nrr = nr.min(nc - jr);
                        let bp = bbuf[jr * kc..].as_ptr();
                        for ir in (0..mc).step_by(mr) {
                            let mrr = mr.min(mc - ir);
                            let ap = abuf[ir * kc..].as_ptr();
                            // SAFETY: (ic + ir, jc + jr) is a tile of this
                            // thread's part of C.
                            let cp = unsafe { c.ptr.add((ic + ir) * c.ld + jc + jr) };
                            // SAFETY: the tile lies in this thread's part of C
                            // and the kernel's level was checked by the caller.
                            unsafe { tile_or_edge::<K>(kc, ap, bp, cp, c.ld, mrr, nrr, acc, edge) };
                        }
                    }
                }
            }
        }
    });
}

/// `c[m × n] (+)= a · b` with the kernels of `level` (Avx2 or Avx512), `c`
/// row-major with row stride `ldc`, split over up to `threads` threads.
///
/// # Safety
/// `level` is supported by the CPU; `a` covers `m × k`, `b` covers `k × n`, `c`
/// covers `m` rows of `ldc ≥ n` floats, uniquely borrowed and not aliasing `a`
/// or `b`; `m, n, k > 0`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    level: Simd,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    threads: usize,
) {
    // SAFETY: forwarded.
    unsafe { sgemm_with(level, m, n, k, a, &b, c, ldc, accumulate, threads) }
}

/// [`sgemm`] with any [`BSource`] as the right-hand operand.
///
/// # Safety
/// As [`sgemm`]; `b`'s `pack` is sound for every block of `k × n`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_with<B: BSource + ?Sized>(
    level: Simd,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: &B,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    threads: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let out = Out { ptr: c, ld: ldc };
        match level {
            // SAFETY: forwarded from this function's contract.
            Simd::Avx512 => unsafe {
                split::<x86::Avx512, B>(m, n, k, a, b, out, accumulate, threads)
            },
            Simd::Avx2 => unsafe { split::<x86::Avx2, B>(m, n, k, a, b, out, accumulate, threads) },
            Simd::Portable => unreachable!("sgemm is only called with an x86 level"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (level, m, n, k, a, b, c, ldc, accumulate, threads);
        unreachable!("sgemm is only called on x86-64");
    }
}

/// Splits C over threads: by whole `NR` column panels when C is wider than it
/// is tall, else by whole `MR` row panels, so that no tile is shared.
#[allow(clippy::too_many_arguments)]
unsafe fn split<K: Kernel, B: BSource + ?Sized>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: &B,
    c: Out,
    accumulate: bool,
    threads: usize,
) {
    // Below about a million multiply-adds a second thread costs more than it saves.
    let parts = if m * n * k < 1 << 20 {
        1
    } else {
        threads.max(1)
    };
    let by_cols = n.div_ceil(K::NR) >= m.div_ceil(K::MR);
    let (len, unit) = if by_cols { (n, K::NR) } else { (m, K::MR) };
    let units = len.div_ceil(unit);
    let parts = parts.min(units);
    if parts <= 1 {
        // SAFETY: the whole of C on this thread.
        unsafe { run::<K, B>(0..m, 0..n, k, a, b, c, accumulate) };
        return;
    }
    let range = |t: usize| {
        let lo = (units * t / parts * unit).min(len);
        let hi = (units * (t + 1) / parts * unit).min(len);
        lo..hi
    };
    rayon::scope(|s| {
        for t in 1..parts {
            let r = range(t);
            s.spawn(move |_| {
                let (rows, cols) = if by_cols { (0..m, r) } else { (r, 0..n) };
                // SAFETY: thread t writes only its own rows or columns.
                unsafe { run::<K, B>(rows, cols, k, a, b, c, accumulate) };
            });
        }
        let r = range(0);
        let (rows, cols) = if by_cols { (0..m, r) } else { (r, 0..n) };
        // SAFETY: as above, part 0.
        unsafe { run::<K, B>(rows, cols, k, a, b, c, accumulate) };
    });
}

/// A right-hand operand packed once and used by many products (the keys and
/// values of one attention head, used by every block of queries).
pub(crate) struct PackedB {
    level: Simd,
    k: usize,
    n: usize,
    /// Depth blocks of `KC`, each `n` rounded up to whole `NR` panels.
    data: Vec<f32>,
}

impl PackedB {
    /// Packs `b` (`k × n`) for products at `level` (Avx2 or Avx512).
    ///
    /// # Safety
    /// `level` is supported by the CPU and `b` covers `k × n`.
    pub(crate) unsafe fn new(level: Simd, b: MatRef, k: usize, n: usize) -> Self {
        let mut data = Vec::new();
        #[cfg(target_arch = "x86_64")]
        match level {
            // SAFETY: forwarded.
            Simd::Avx512 => unsafe { pack_all::<x86::Avx512>(b, k, n, &mut data) },
            Simd::Avx2 => unsafe { pack_all::<x86::Avx2>(b, k, n, &mut data) },
            Simd::Portable => unreachable!("PackedB is only made with an x86 level"),
        }
        Self { level, k, n, data }
    }

    /// `c[m × n] (+)= a · self` on this thread, `c` with row stride `ldc`.
    ///
    /// # Safety
    /// `a` covers `m × k`; `c` covers `m` rows of `ldc ≥ n` floats, uniquely
    /// borrowed.
    pub(crate) unsafe fn product(
        &self,
        m: usize,
        a: MatRef,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let c = Out { ptr: c, ld: ldc };
        #[cfg(target_arch = "x86_64")]
        match self.level {
            // SAFETY: forwarded; the level was checked when packing.
            Simd::Avx512 => unsafe { run_packed::<x86::Avx512>(m, a, self, c, accumulate) },
            Simd::Avx2 => unsafe { run_packed::<x86::Avx2>(m, a, self, c, accumulate) },
            Simd::Portable => unreachable!("PackedB is only made with an x86 level"),
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (m, a, c, accumulate);
    }
}

/// Packs all of `b` (`k × n`) into `out` as `PackedB` lays it out.
///
/// # Safety
/// `b` covers `k × n`.
unsafe fn pack_all<K: Kernel>(b: MatRef, k: usize, n: usize, out: &mut Vec<f32>) {
    let n_pad = n.div_ceil(K::NR) * K::NR;
    out.resize(k * n_pad, 0.0);
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        // SAFETY: the block lies inside b.
        unsafe { pack_b::<K>(b, pc, kc, 0, n, &mut out[pc * n_pad..(pc + kc) * n_pad]) };
    }
}

/// [`run`] with B already packed, on this thread.
///
/// # Safety
/// As [`PackedB::product`].
unsafe fn run_packed<K: Kernel>(m: usize, a: MatRef, b: &PackedB, c: Out, accumulate: bool) {
    let (mr, nr) = (K::MR, K::NR);
    let (k, n) = (b.k, b.n);
    let n_pad = n.div_ceil(nr) * nr;
    BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (abuf, _, edge) = &mut *bufs;
        abuf.resize(K::MC.min(m.div_ceil(mr) * mr) * KC.min(k), 0.0);
        edge.resize(mr * nr, 0.0);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let block = &b.data[pc * n_pad..(pc + kc) * n_pad];
            let acc = accumulate || pc > 0;
            for ic in (0..m).step_by(K::MC) {
                let mc = K::MC.min(m - ic);
                // SAFETY: the block lies inside a.
                unsafe { pack_a::<K>(a, ic, mc, pc, kc, abuf) };
                for jr in (0..n).step_by(nr) {
                    let bp = block[jr * kc..].as_ptr();
                    for ir in (0..mc).step_by(mr) {
                        let ap = abuf[ir * kc..].as_ptr();
                        // SAFETY: a tile of C; the level was checked when packing.
                        unsafe {
                            let cp = c.ptr.add((ic + ir) * c.ld + jr);
                            tile_or_edge::<K>(
                                kc,
                                ap,
                                bp,
                                cp,
                                c.ld,
                                mr.min(mc - ir),
                                nr.min(n - jr),
                                acc,
                                edge,
                            );
                        }
                    }
                }
            }
        }
    });
}

/// A left-hand operand packed once and used by many products (the keys of one
/// attention head, against every block of queries).
pub(crate) struct PackedA {
    level: Simd,
    m: usize,
    k: usize,
    /// Depth blocks of `KC`, each `m` rounded up to whole `MR` panels.
    data: Vec<f32>,
}

impl PackedA {
    /// Packs `a` (`m × k`) for products at `level` (Avx2 or Avx512).
    ///
    /// # Safety
    /// `level` is supported by the CPU and `a` covers `m × k`.
    pub(crate) unsafe fn new(level: Simd, a: MatRef, m: usize, k: usize) -> Self {
        let mut data = Vec::new();
        #[cfg(target_arch = "x86_64")]
        match level {
            // SAFETY: forwarded.
            Simd::Avx512 => unsafe { pack_all_a::<x86::Avx512>(a, m, k, &mut data) },
            Simd::Avx2 => unsafe { pack_all_a::<x86::Avx2>(a, m, k, &mut data) },
            Simd::Portable => unreachable!("PackedA is only made with an x86 level"),
        }
        Self { level, m, k, data }
    }

    /// `c[m × n] = self · b` on this thread, `b` covering `k × n`, `c` with row
    /// stride `ldc`.
    ///
    /// # Safety
    /// `b` covers `k × n`; `c` covers `m` rows of `ldc ≥ n` floats, uniquely
    /// borrowed.
    pub(crate) unsafe fn product(&self, n: usize, b: MatRef, c: *mut f32, ldc: usize) {
        let c = Out { ptr: c, ld: ldc };
        #[cfg(target_arch = "x86_64")]
        match self.level {
            // SAFETY: forwarded; the level was checked when packing.
            Simd::Avx512 => unsafe { run_packed_a::<x86::Avx512>(self, n, b, c) },
            Simd::Avx2 => unsafe { run_packed_a::<x86::Avx2>(self, n, b, c) },
            Simd::Portable => unreachable!("PackedA is only made with an x86 level"),
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (n, b, c);
    }
}

/// Packs all of `a` (`m × k`) into `out` as `PackedA` lays it out.
///
/// # Safety
/// `a` covers `m × k`.
unsafe fn pack_all_a<K: Kernel>(a: MatRef, m: usize, k: usize, out: &mut Vec<f32>) {
    let m_pad = m.div_ceil(K::MR) * K::MR;
    out.resize(k * m_pad, 0.0);
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        // SAFETY: the block lies inside a.
        unsafe { pack_a::<K>(a, 0, m, pc, kc, &mut out[pc * m_pad..(pc + kc) * m_pad]) };
    }
}

/// `c = a · b` with A already packed, on this thread.
///
/// # Safety
/// As [`PackedA::product`].
unsafe fn run_packed_a<K: Kernel>(a: &PackedA, n: usize, b: MatRef, c: Out) {
    let (mr, nr) = (K::MR, K::NR);
    let (m, k) = (a.m, a.k);
    let m_pad = m.div_ceil(mr) * mr;
    BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (_, bbuf, edge) = &mut *bufs;
        bbuf.resize(n.div_ceil(nr) * nr * KC.min(k), 0.0);
        edge.resize(mr * nr, 0.0);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let block = &a.data[pc * m_pad..(pc + kc) * m_pad];
            // SAFETY: the block lies inside b.
            unsafe { pack_b::<K>(b, pc, kc, 0, n, bbuf) };
            for jr in (0..n).step_by(nr) {
                let bp = bbuf[jr * kc..].as_ptr();
                for ir in (0..m).step_by(mr) {
                    let ap = block[ir * kc..].as_ptr();
                    // SAFETY: a tile of C; the level was checked when packing.
                    unsafe {
                        let cp = c.ptr.add(ir * c.ld + jr);
                        tile_or_edge::<K>(
                            kc,
                            ap,
                            bp,
                            cp,
                            c.ld,
                            mr.min(m - ir),
                            nr.min(n - jr),
                            pc > 0,
                            edge,
                        );
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every x86 level this CPU has (AVX-512 is only testable where it exists).
    fn levels() -> Vec<Simd> {
        [Simd::Avx2, Simd::Avx512]
            .into_iter()
            .filter(|l| *l <= crate::simd::detected())
            .collect()
    }

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0) - 1.0)
            .collect()
    }

    /// The product in f64, `a` and `b` read through their strides.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        ars: usize,
        acs: usize,
        b: &[f32],
        brs: usize,
        bcs: usize,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| f64::from(a[i * ars + p * acs]) * f64::from(b[p * brs + j * bcs]))
                    .sum();
            }
        }
        c
    }

    /// Worst absolute error over k: f32 rounding of a k-term sum of products
    /// below 1 stays under about k·ε (1.2e-7); a wrong index costs O(0.1).
    fn worst_error(got: &[f32], ldc: usize, want: &[f64], n: usize, k: usize) -> f64 {
        let mut worst = 0.0f64;
        for (i, row) in want.chunks(n).enumerate() {
            for (j, w) in row.iter().enumerate() {
                worst = worst.max((f64::from(got[i * ldc + j]) - w).abs() / k as f64);
            }
        }
        worst
    }

    #[test]
    fn products_match_f64_for_every_layout_edge_and_thread_count() {
        // Shapes cut every tile and block edge of both kernels (MR 14/6, NR 32/16,
        // KC 192, MC 336/144) and reach the threaded split.
        let shapes = [
            (1, 1, 1),
            (13, 33, 7),
            (15, 17, 193),
            (350, 70, 400),
            (29, 2100, 65),
            (64, 64, 2688),
        ];
        for level in levels() {
            for &(m, n, k) in &shapes {
                let a = data(m * k, 1);
                let b = data(k * n, 2);
                for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                    let (ars, acs) = if a_t { (1, m) } else { (k, 1) };
                    let (brs, bcs) = if b_t { (1, k) } else { (n, 1) };
                    let want = naive(m, n, k, &a, ars, acs, &b, brs, bcs);
                    for (threads, ldc, accumulate) in
                        [(1, n, false), (2, n + 5, false), (2, n, true)]
                    {
                        let mut c = vec![0.5f32; m * ldc];
                        // SAFETY: the buffers cover the shapes; level ≤ detected().
                        unsafe {
                            sgemm(
                                level,
                                m,
                                n,
                                k,
                                MatRef {
                                    ptr: a.as_ptr(),
                                    rs: ars as isize,
                                    cs: acs as isize,
                                },
                                MatRef {
                                    ptr: b.as_ptr(),
                                    rs: brs as isize,
                                    cs: bcs as isize,
                                },
                                c.as_mut_ptr(),
                                ldc,
                                accumulate,
                                threads,
                            );
                        }
                        let shifted: Vec<f64> = want
                            .iter()
                            .map(|w| w + if accumulate { 0.5 } else { 0.0 })
                            .collect();
                        let err = worst_error(&c, ldc, &shifted, n, k);
                        assert!(
                            err < 2.5e-7,
                            "{level:?} {m}x{n}x{k} a_t={a_t} b_t={b_t} threads={threads} ldc={ldc} acc={accumulate}: error {err:e}"
                        );
                        // Columns past n in each row are left alone.
                        for row in c.chunks(ldc) {
                            assert!(
                                row[n..].iter().all(|v| *v == 0.5),
                                "{level:?}: wrote past the row"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn packed_operands_give_the_same_products() {
        for level in levels() {
            let (m, n, k) = (300, 96, 64);
            let a = data(m * k, 3);
            let b = data(k * n, 4);
            let want = naive(m, n, k, &a, k, 1, &b, n, 1);
            // SAFETY: the buffers cover the shapes; level ≤ detected().
            unsafe {
                let pa = PackedA::new(
                    level,
                    MatRef {
                        ptr: a.as_ptr(),
                        rs: k as isize,
                        cs: 1,
                    },
                    m,
                    k,
                );
                let mut c = vec![0.0f32; m * n];
                pa.product(
                    n,
                    MatRef {
                        ptr: b.as_ptr(),
                        rs: n as isize,
                        cs: 1,
                    },
                    c.as_mut_ptr(),
                    n,
                );
                assert!(
                    worst_error(&c, n, &want, n, k) < 2.5e-7,
                    "{level:?} PackedA"
                );
                let pb = PackedB::new(
                    level,
                    MatRef {
                        ptr: b.as_ptr(),
                        rs: n as isize,
                        cs: 1,
                    },
                    k,
                    n,
                );
                let mut c = vec![0.0f32; m * n];
                // A read column-major (rs = 1) through the fast packing path.
                let at: Vec<f32> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
                pb.product(
                    m,
                    MatRef {
                        ptr: at.as_ptr(),
                        rs: 1,
                        cs: m as isize,
                    },
                    c.as_mut_ptr(),
                    n,
                    false,
                );
                assert!(
                    worst_error(&c, n, &want, n, k) < 2.5e-7,
                    "{level:?} PackedB"
                );
            }
        }
    }
}
