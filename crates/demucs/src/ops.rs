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
/// already spread over threads, such as segments processed side by side).
pub fn single_threaded<T>(f: impl FnOnce() -> T) -> T {
    SINGLE.with(|c| c.set(true));
    let out = f();
    SINGLE.with(|c| c.set(false));
    out
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
    assert!(
        c.len() >= m * n && a.len() >= m * k && b.len() >= k * n,
        "matmul: buffers smaller than {m}x{k}x{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].iter_mut().for_each(|v| *v = 0.0);
        }
        return;
    }
    let (a_rs, a_cs) = match la {
        Layout::Normal => (k as isize, 1),
        Layout::Transposed => (1, m as isize),
    };
    let (b_rs, b_cs) = match lb {
        Layout::Normal => (n as isize, 1),
        Layout::Transposed => (1, k as isize),
    };
    let threads = if SINGLE.with(std::cell::Cell::get) {
        1
    } else {
        threads()
    };
    let parallelism = if threads > 1 && m * n * k > 1 << 16 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assertion above guarantees that every index the strides reach
    // (row < m, col < n, inner < k) lies inside the three buffers, and `c` does not
    // alias `a` or `b` (it is a unique borrow).
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Exact GELU, 0.5·x·(1 + erf(x/√2)), as PyTorch's default.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU in place.
pub fn gelu_inplace(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = gelu(*v));
}

/// GLU over the channel axis: `x` is `[2c, n]`, the result `[c, n]` is
/// `x[..c] · sigmoid(x[c..])`.
pub fn glu(x: &[f32], c: usize, n: usize) -> Vec<f32> {
    let (a, b) = x.split_at(c * n);
    a.iter()
        .zip(&b[..c * n])
        .map(|(a, b)| a / (1.0 + (-b).exp()))
        .collect()
}

/// GLU in place: the first half of `x` (`[2c, n]`) becomes the result and `x`
/// is truncated to `[c, n]`, without a second buffer.
pub fn glu_inplace(x: &mut Vec<f32>, c: usize, n: usize) {
    let half = c * n;
    let (a, b) = x.split_at_mut(half);
    a.iter_mut()
        .zip(&b[..half])
        .for_each(|(a, b)| *a /= 1.0 + (-*b).exp());
    x.truncate(half);
    x.shrink_to_fit();
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
    let per = c / groups;
    for g in 0..groups {
        let chunk = &mut x[g * per * n..(g + 1) * per * n];
        let len = chunk.len() as f64;
        let mean = chunk.iter().map(|v| f64::from(*v)).sum::<f64>() / len;
        let var = chunk
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(2))
            .sum::<f64>()
            / len;
        let inv = 1.0 / (var + f64::from(eps)).sqrt();
        for ci in 0..per {
            let ch = g * per + ci;
            let (w, b) = (weight[ch], bias[ch]);
            for v in &mut chunk[ci * n..(ci + 1) * n] {
                *v = ((f64::from(*v) - mean) * inv) as f32 * w + b;
            }
        }
    }
}

/// LayerNorm over the last axis of `x` = `[rows, d]`, in place.
pub fn layer_norm(x: &mut [f32], d: usize, weight: &[f32], bias: &[f32], eps: f32) {
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

/// Softmax of each row of `x` = `[rows, n]`, in place.
pub fn softmax_rows(x: &mut [f32], n: usize) {
    for row in x.chunks_exact_mut(n) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
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
