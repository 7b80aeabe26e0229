//! Dense f32 kernels over flat, row-major buffers. Shapes are explicit arguments:
//! the model runs one segment at a time, so there is no batch dimension.

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets how many threads matrix products may use (1 = single-threaded).
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// Threads matrix products use.
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

thread_local! {
    static SINGLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with single-threaded matrix products on this thread (for work that is
/// already spread over threads, such as independent blocks in [`par_for`]).
pub fn single_threaded<T>(f: impl FnOnce() -> T) -> T {
    SINGLE.with(|c| c.set(true));
    let out = f();
    SINGLE.with(|c| c.set(false));
    out
}

/// Threads that element-wise work and independent blocks may use here: 1 inside
/// [`single_threaded`], else [`threads`].
pub fn available_threads() -> usize {
    if SINGLE.with(std::cell::Cell::get) {
        1
    } else {
        threads()
    }
}

/// Runs `f(i)` for every `i` in `0..items`, spread over [`available_threads`],
/// each call with single-threaded matrix products (the blocks are the
/// parallelism). In order on this thread when there is one thread or one item.
pub fn par_for(items: usize, f: impl Fn(usize) + Sync) {
    if items <= 1 || available_threads() <= 1 {
        (0..items).for_each(f);
        return;
    }
    use rayon::prelude::*;
    (0..items)
        .into_par_iter()
        .with_max_len(1)
        .for_each(|i| single_threaded(|| f(i)));
}

/// `(a(), b())`, side by side when there are threads for it: the frequency and
/// time branches of a segment are independent between their junctions, and
/// running them together lets one branch's serial stretches (norms, copies,
/// small products) overlap the other's work. Their matrix products split over
/// the same pool, whose threads take whichever work is waiting.
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if available_threads() <= 1 {
        return (a(), b());
    }
    rayon::join(a, b)
}

/// `(0..items).map(f)` spread over [`available_threads`], in order.
pub fn par_map<T: Send>(items: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if items <= 1 || available_threads() <= 1 {
        return (0..items).map(f).collect();
    }
    use rayon::prelude::*;
    (0..items)
        .into_par_iter()
        .with_max_len(1)
        .map(|i| single_threaded(|| f(i)))
        .collect()
}

/// Applies `f` to `x` in contiguous chunks spread over [`available_threads`]
/// (in one piece below 64 K elements, where a second thread costs more than it
/// saves).
pub fn par_chunks_mut(x: &mut [f32], f: impl Fn(&mut [f32]) + Sync) {
    let threads = available_threads();
    if threads <= 1 || x.len() < 1 << 16 {
        f(x);
        return;
    }
    use rayon::prelude::*;
    let chunk = x.len().div_ceil(threads).next_multiple_of(64);
    x.par_chunks_mut(chunk).for_each(&f);
}

/// Applies `f(first_row, rows)` to `x` = `[rows, row_len]` in groups of whole
/// rows spread over [`available_threads`] (in one piece below 64 K elements).
pub fn par_rows_mut(x: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let threads = available_threads();
    let rows = x.len() / row_len.max(1);
    if threads <= 1 || x.len() < 1 << 16 || rows < 2 {
        f(0, x);
        return;
    }
    use rayon::prelude::*;
    let per = rows.div_ceil(threads);
    x.par_chunks_mut(per * row_len)
        .enumerate()
        .for_each(|(i, chunk)| f(i * per, chunk));
}

/// How a matrix operand is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `rows × cols`, row-major.
    Normal,
    /// Stored as the row-major transpose (`cols × rows`).
    Transposed,
}

/// `c[m×n] (+)= a[m×k] · b[k×n]`, `c` row-major. With `accumulate`, adds to `c`.
///
/// Panics only on a caller bug (buffers smaller than the shapes say); shapes come
/// from the model configuration, never from user data.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    la: Layout,
    b: &[f32],
    lb: Layout,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    matmul_ld(c, n, a, la, b, lb, m, n, k, accumulate);
}

/// Our kernels' view of an operand of `rows × cols` stored as `layout` says.
fn view(x: &[f32], layout: Layout, rows: usize, cols: usize) -> crate::sgemm::MatRef {
    let (rs, cs) = match layout {
        Layout::Normal => (cols as isize, 1),
        Layout::Transposed => (1, rows as isize),
    };
    crate::sgemm::MatRef {
        ptr: x.as_ptr(),
        rs,
        cs,
    }
}

/// `a · b` into a new, unzeroed `[m × n]` buffer with our x86 kernels.
///
/// # Safety
/// `level` is supported by the CPU (it is [`crate::simd::level`]); `a` covers
/// `m × k` and `b` packs only inside its `k × n`; `m, n, k > 0`. The product
/// with accumulate = false writes every output float (each tile is stored
/// before a later depth block reads it back) through the raw pointer, never
/// making a reference to the uninitialised memory, so set_len is sound after it.
#[allow(unsafe_code)]
unsafe fn new_product(
    level: crate::simd::Simd,
    m: usize,
    n: usize,
    k: usize,
    a: crate::sgemm::MatRef,
    b: &impl crate::sgemm::BSource,
) -> Vec<f32> {
    let mut c: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: the function's contract; the buffer has room for m × n floats
    // with row stride n.
    unsafe {
        crate::sgemm::sgemm_with(
            level,
            m,
            n,
            k,
            a,
            b,
            c.as_mut_ptr(),
            n,
            false,
            available_threads(),
        );
        c.set_len(m * n);
    }
    c
}

/// `a · b` as a new `[m × n]` buffer. With our x86 kernels the buffer is not
/// zeroed first: the product writes every element before anything reads it
/// (zeroing was 4 % of a separation's time).
#[allow(clippy::too_many_arguments)]
pub fn product(
    a: &[f32],
    la: Layout,
    b: &[f32],
    lb: Layout,
    m: usize,
    n: usize,
    k: usize,
) -> Vec<f32> {
    let level = crate::simd::level();
    if level < crate::simd::Simd::Avx2 || m == 0 || n == 0 || k == 0 {
        let mut c = vec![0.0; m * n];
        matmul(&mut c, a, la, b, lb, m, n, k, false);
        return c;
    }
    assert!(
        a.len() >= m * k && b.len() >= k * n,
        "product: buffers smaller than {m}x{k}x{n}"
    );
    // SAFETY: the operands cover the shapes (asserted), m, n, k > 0, and
    // level() never exceeds what the CPU supports.
    #[allow(unsafe_code)]
    unsafe {
        new_product(level, m, n, k, view(a, la, m, k), &view(b, lb, k, n))
    }
}

/// `a · B` as a new `[m × n]` buffer, `a` row-major `[m × k]` and `B` a
/// [`crate::sgemm::BSource`] that packs itself (an implicit im2col). Only with
/// our x86 kernels ([`crate::simd::level`] at least AVX2).
pub(crate) fn product_from(
    a: &[f32],
    b: &impl crate::sgemm::BSource,
    m: usize,
    n: usize,
    k: usize,
) -> Vec<f32> {
    let level = crate::simd::level();
    assert!(
        level >= crate::simd::Simd::Avx2,
        "product_from needs the x86 kernels"
    );
    assert!(
        a.len() >= m * k,
        "product_from: buffers smaller than {m}x{k}x{n}"
    );
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0; m * n];
    }
    // SAFETY: `a` covers m × k (asserted), the source packs only inside its
    // k × n (its contract), m, n, k > 0, and the level is supported.
    #[allow(unsafe_code)]
    unsafe {
        new_product(level, m, n, k, view(a, Layout::Normal, m, k), b)
    }
}

/// [`matmul`] into a `c` whose rows are `ldc ≥ n` floats apart (a block of
/// columns of a wider matrix, written in place instead of through a copy).
#[allow(clippy::too_many_arguments)]
pub fn matmul_ld(
    c: &mut [f32],
    ldc: usize,
    a: &[f32],
    la: Layout,
    b: &[f32],
    lb: Layout,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert!(
        ldc >= n
            && (m == 0 || c.len() >= (m - 1) * ldc + n)
            && a.len() >= m * k
            && b.len() >= k * n,
        "matmul: buffers smaller than {m}x{k}x{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let (av, bv) = (view(a, la, m, k), view(b, lb, k, n));
    let threads = available_threads();
    let level = crate::simd::level();
    if level >= crate::simd::Simd::Avx2 {
        // SAFETY: the assertion above guarantees that every index the strides
        // reach (row < m, col < n, inner < k) lies inside the three buffers, `c`
        // is a unique borrow (so it aliases neither operand), m, n, k > 0, and
        // level() never exceeds what the CPU supports.
        #[allow(unsafe_code)]
        unsafe {
            crate::sgemm::sgemm(
                level,
                m,
                n,
                k,
                av,
                bv,
                c.as_mut_ptr(),
                ldc,
                accumulate,
                threads,
            );
        }
        return;
    }
    let parallelism = if threads > 1 && m * n * k > 1 << 16 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            accumulate,
            a.as_ptr(),
            av.cs,
            av.rs,
            b.as_ptr(),
            bv.cs,
            bv.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// e^x in f32 to within 2 ulp, branch-free so that loops over it vectorise.
///
/// Written here because the attention softmax takes hundreds of millions of
/// exponentials per segment and libm's scalar `expf` was a sixth of the run time:
/// Cody-Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, a degree-7 Taylor
/// polynomial for e^r (truncation error below 5e-9), and 2^n built in the exponent
/// bits. Inputs are clamped to [-87.3, 88], so very negative ones give about 1e-38
/// and very positive ones about 1.7e38 (harmless for softmax and sigmoid, where
/// only the ratio to 1 matters).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Above 88 the exponent 2^n would reach 2^128 and the bits would spell inf/NaN.
    let x = x.clamp(-87.3, 88.0);
    // Round to nearest by the 1.5·2^23 trick: `f32::round` is a libm call on
    // baseline x86-64 and would stop the loop from vectorising.
    const MAGIC: f32 = 12_582_912.0;
    let shifted = x * LOG2E + MAGIC;
    let n = shifted - MAGIC;
    // The integer n sits in the low mantissa bits of `shifted`: reading it from
    // there keeps the loop in vector registers (`n as i32` is a saturating
    // conversion that LLVM does lane by lane).
    let ni = shifted.to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    p * scale
}

/// erf(x) to within 6e-7 absolute (Abramowitz & Stegun 7.1.26 in f32), branch-free so that
/// GELU over a whole activation vectorises (libm's `erff` is scalar).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// GELU, 0.5·x·(1 + erf(x/√2)), as PyTorch's default (the erf form, not the tanh
/// approximation).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU in place.
pub fn gelu_inplace(x: &mut [f32]) {
    crate::simd::dispatch! {
        fn wide(x: &mut [f32]) {
            x.iter_mut().for_each(|v| *v = gelu(*v))
        }
    }
    par_chunks_mut(x, wide);
}

/// GLU in place: the first half of `x` (`[2c, n]`) becomes the result and `x`
/// is truncated to `[c, n]`, without a second buffer.
pub fn glu_inplace(x: &mut Vec<f32>, c: usize, n: usize) {
    let half = c * n;
    let (a, b) = x.split_at_mut(half);
    crate::simd::dispatch! {
        fn wide(a: &mut [f32], b: &[f32]) {
            // The branch-free `exp` lets this loop vectorise (libm's expf is scalar).
            a.iter_mut()
                .zip(b)
                .for_each(|(a, b)| *a /= 1.0 + exp(-*b))
        }
    }
    let threads = available_threads();
    if threads > 1 && half >= 1 << 16 {
        use rayon::prelude::*;
        let chunk = half.div_ceil(threads);
        a.par_chunks_mut(chunk)
            .zip(b[..half].par_chunks(chunk))
            .for_each(|(a, b)| wide(a, b));
    } else {
        wide(a, &b[..half]);
    }
    x.truncate(half);
    x.shrink_to_fit();
}

/// Σx and Σx² of a slice in f64, over four independent lanes (so the additions
/// do not wait on each other).
#[inline(always)]
pub fn sum_and_squares(x: &[f32]) -> (f64, f64) {
    crate::simd::dispatch! {
        fn wide(x: &[f32]) -> (f64, f64) {
            // Sixteen f64 lanes of each (two AVX-512 registers, four AVX2):
            // the GroupNorms' statistics were 2 % of a separation with the two
            // lanes of baseline x86-64.
            const L: usize = 16;
            let mut s = [0.0f64; L];
            let mut q = [0.0f64; L];
            let chunks = x.chunks_exact(L);
            let rest = chunks.remainder();
            for ch in chunks {
                for l in 0..L {
                    let v = f64::from(ch[l]);
                    s[l] += v;
                    q[l] += v * v;
                }
            }
            let (mut st, mut qt) = (s.iter().sum::<f64>(), q.iter().sum::<f64>());
            for v in rest {
                st += f64::from(*v);
                qt += f64::from(*v) * f64::from(*v);
            }
            (st, qt)
        }
    }
    wide(x)
}

/// GroupNorm over `x` = `[c, n]` with `groups` groups (PyTorch semantics: biased
/// variance, per-channel affine), in place.
pub fn group_norm(
    x: &mut [f32],
    c: usize,
    n: usize,
    groups: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    crate::simd::dispatch! {
        fn wide(x: &mut [f32], c: usize, n: usize, groups: usize, weight: &[f32], bias: &[f32], eps: f32) {
            group_norm_portable(x, c, n, groups, weight, bias, eps)
        }
    }
    wide(x, c, n, groups, weight, bias, eps);
}

#[inline(always)]
fn group_norm_portable(
    x: &mut [f32],
    c: usize,
    n: usize,
    groups: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    let per = c / groups;
    // Per channel: its group's mean, and the scale and offset after it.
    let mut affine = vec![(0.0f32, 0.0f32, 0.0f32); c];
    for g in 0..groups {
        let chunk = &x[g * per * n..(g + 1) * per * n];
        let len = chunk.len() as f64;
        let (sum, sq) = sum_and_squares(chunk);
        let mean = sum / len;
        let var = (sq / len - mean * mean).max(0.0);
        let inv = (1.0 / (var + f64::from(eps)).sqrt()) as f32;
        let mean = mean as f32;
        for ch in g * per..(g + 1) * per {
            affine[ch] = (mean, weight[ch] * inv, bias[ch]);
        }
    }
    affine_rows(&mut x[..c * n], n, &affine);
}

/// `row[i] = (row[i] - mean) · w + b` with `(mean, w, b)` = `affine[row]`, rows
/// over threads.
pub(crate) fn affine_rows(x: &mut [f32], n: usize, affine: &[(f32, f32, f32)]) {
    crate::simd::dispatch! {
        fn wide(x: &mut [f32], n: usize, affine: &[(f32, f32, f32)]) {
            for (row, (mean, w, b)) in x.chunks_exact_mut(n).zip(affine) {
                row.iter_mut().for_each(|v| *v = (*v - mean) * w + b);
            }
        }
    }
    par_rows_mut(x, n, |first, rows| wide(rows, n, &affine[first..]));
}

/// LayerNorm over the last axis of `x` = `[rows, d]`, in place.
pub fn layer_norm(x: &mut [f32], d: usize, weight: &[f32], bias: &[f32], eps: f32) {
    par_rows_mut(x, d, |_, rows| layer_norm_rows(rows, d, weight, bias, eps));
}

fn layer_norm_rows(x: &mut [f32], d: usize, weight: &[f32], bias: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(d) {
        let mean = row.iter().map(|v| f64::from(*v)).sum::<f64>() / d as f64;
        let var = row
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(2))
            .sum::<f64>()
            / d as f64;
        let inv = 1.0 / (var + f64::from(eps)).sqrt();
        for (i, v) in row.iter_mut().enumerate() {
            *v = ((f64::from(*v) - mean) * inv) as f32 * weight[i] + bias[i];
        }
    }
}

/// Softmax of each row of `x` = `[rows, n]` without its last step: each row
/// becomes e^(x - max) and `inv_sums[row]` gets 1 / Σ, for the caller to apply
/// to something smaller than the row (attention scales `[rows, d]` after the
/// product with V instead of `[rows, n]` before it).
pub fn softmax_rows_unnormalised(x: &mut [f32], n: usize, inv_sums: &mut [f32]) {
    crate::simd::dispatch! {
        fn wide(x: &mut [f32], n: usize, inv_sums: &mut [f32]) {
            softmax_rows_portable(x, n, inv_sums)
        }
    }
    wide(x, n, inv_sums);
}

/// Max and sum run over sixteen independent lanes: a plain fold is a chain of
/// dependent scalar operations (floating-point order is kept, so the compiler
/// may not vectorise it), the lanes are one AVX-512 register (two AVX2 ones).
#[inline(always)]
fn softmax_rows_portable(x: &mut [f32], n: usize, inv_sums: &mut [f32]) {
    const L: usize = 16;
    for (row, inv) in x.chunks_exact_mut(n).zip(inv_sums.iter_mut()) {
        let mut m = [f32::NEG_INFINITY; L];
        let mut chunks = row.chunks_exact(L);
        for ch in &mut chunks {
            for l in 0..L {
                m[l] = if ch[l] > m[l] { ch[l] } else { m[l] };
            }
        }
        let max = chunks
            .remainder()
            .iter()
            .chain(&m)
            .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        let mut s = [0.0f32; L];
        let mut chunks = row.chunks_exact_mut(L);
        for ch in &mut chunks {
            for l in 0..L {
                let e = exp(ch[l] - max);
                ch[l] = e;
                s[l] += e;
            }
        }
        let mut sum: f32 = s.iter().sum();
        for v in chunks.into_remainder() {
            *v = exp(*v - max);
            sum += *v;
        }
        *inv = 1.0 / sum;
    }
}

/// Softmax down each column of `x` = `[rows, cols]` without its last step: each
/// column becomes e^(x - max) and `inv_sums[col]` gets 1 / Σ (the attention's
/// transposed scores: keys down, queries across). Rows are contiguous, so every
/// step vectorises along them with no horizontal reduction.
pub fn softmax_columns_unnormalised(x: &mut [f32], cols: usize, inv_sums: &mut [f32]) {
    crate::simd::dispatch! {
        fn wide(x: &mut [f32], cols: usize, inv_sums: &mut [f32]) {
            softmax_columns_portable(x, cols, inv_sums)
        }
    }
    wide(x, cols, inv_sums);
}

/// Rows summed per block before joining the column totals: short chains keep
/// the f32 rounding of a 2688-term sum near that of a pairwise one.
const SUM_BLOCK: usize = 32;

#[inline(always)]
fn softmax_columns_portable(x: &mut [f32], cols: usize, inv_sums: &mut [f32]) {
    let inv_sums = &mut inv_sums[..cols];
    inv_sums.fill(f32::NEG_INFINITY);
    for row in x.chunks_exact(cols) {
        for (m, v) in inv_sums.iter_mut().zip(row) {
            *m = if *v > *m { *v } else { *m };
        }
    }
    // inv_sums holds the maxima until the end; the sums build up in `total`.
    let mut total = [0.0f32; 128];
    let mut part = [0.0f32; 128];
    for c0 in (0..cols).step_by(128) {
        let w = 128.min(cols - c0);
        let max = &inv_sums[c0..c0 + w];
        total[..w].fill(0.0);
        for block in x.chunks_mut(cols * SUM_BLOCK) {
            part[..w].fill(0.0);
            for row in block.chunks_exact_mut(cols) {
                for ((v, m), s) in row[c0..c0 + w].iter_mut().zip(max).zip(&mut part[..w]) {
                    let e = exp(*v - m);
                    *v = e;
                    *s += e;
                }
            }
            total[..w]
                .iter_mut()
                .zip(&part[..w])
                .for_each(|(t, p)| *t += p);
        }
        inv_sums[c0..c0 + w]
            .iter_mut()
            .zip(&total[..w])
            .for_each(|(i, t)| *i = 1.0 / t);
    }
}

/// Transposes `[rows, cols]` into `[cols, rows]`.
pub fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(super::exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_37;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        // Clamped below -87.3: tiny and finite, never NaN or negative.
        let tiny = super::exp(-200.0);
        assert!(tiny > 0.0 && tiny < 1e-37, "{tiny:e}");
        let huge = super::exp(100.0);
        assert!(huge.is_finite() && huge > 1e38, "{huge:e}");
    }

    #[test]
    fn fast_erf_is_within_6e7_of_libm() {
        let mut worst = 0.0f64;
        let mut x = -6.0f32;
        while x < 6.0 {
            worst = worst.max((f64::from(super::erf(x)) - f64::from(libm::erff(x))).abs());
            x += 0.000_73;
        }
        assert!(worst < 6e-7, "worst absolute error {worst:e}");
        assert!(super::erf(0.0).abs() < 1e-7);
        assert!(
            (super::erf(-0.5) + super::erf(0.5)).abs() < 1e-7,
            "odd function"
        );
    }
}
