//! Convolutions, normalisations and the HTDemucs encoder/decoder layers
//! (`HEncLayer`, `HDecLayer`, `DConv` in the reference's `hdemucs.py` and
//! `demucs.py`), with weights named as in the PyTorch state dict.

use crate::ops::{self, Layout};

/// Output columns unfolded at a time by im2col (bounds its scratch memory).
const COLS: usize = 8192;
use crate::weights::{Checkpoint, Weight};
use crate::DemucsError;

/// `w[cout, rows] · cols[rows, n]` where the unfolded input `cols` is described
/// row by row by `fill(row, r, first_column)` (which writes `row.len()` values of
/// row `r` from column `first_column`).
///
/// With our x86 kernels the product packs its panels from `fill` directly (an
/// implicit im2col: no unfolded buffer, one pass less over memory); otherwise
/// the unfolded input is made `COLS` columns at a time, so that it never needs
/// more than `rows × COLS` floats.
fn im2col_product(
    w: &[f32],
    cout: usize,
    rows: usize,
    n: usize,
    fill: impl Fn(&mut [f32], usize, usize) + Sync,
) -> Vec<f32> {
    if crate::simd::level() >= crate::simd::Simd::Avx2 {
        return ops::product_from(w, &FillSource(fill), cout, n, rows);
    }
    let mut out = vec![0.0; cout * n];
    let mut cols = vec![0.0; rows * COLS.min(n)];
    for p0 in (0..n).step_by(COLS) {
        let nb = COLS.min(n - p0);
        // Rows of the unfolded block are independent: filled over threads.
        ops::par_rows_mut(&mut cols[..rows * nb], nb, |first, chunk| {
            for (i, row) in chunk.chunks_exact_mut(nb).enumerate() {
                fill(row, first + i, p0);
            }
        });
        // Straight into columns p0.. of the output (row stride n).
        ops::matmul_ld(
            &mut out[p0..],
            n,
            w,
            Layout::Normal,
            &cols[..rows * nb],
            Layout::Normal,
            cout,
            nb,
            rows,
            false,
        );
    }
    out
}

/// An unfolded convolution input described by a row-filling function, as a
/// right-hand operand that packs itself: each depth's stretch of columns is
/// filled into a small scratch row (first-level cache) and dealt into panels.
struct FillSource<F>(F);

#[allow(unsafe_code)]
impl<F: Fn(&mut [f32], usize, usize) + Sync> crate::sgemm::BSource for FillSource<F> {
    unsafe fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        let mut row = vec![0.0f32; nc];
        let panels = nc.div_ceil(nr);
        for p in 0..kc {
            (self.0)(&mut row, p0 + p, j0);
            for jp in 0..panels {
                let cols = nr.min(nc - jp * nr);
                let dst = &mut out[(jp * kc + p) * nr..(jp * kc + p + 1) * nr];
                dst[..cols].copy_from_slice(&row[jp * nr..jp * nr + cols]);
                dst[cols..].fill(0.0);
            }
        }
    }
}

/// Stride, padding and dilation of a [`Conv1d`] (as candle's `Conv1dConfig`);
/// the default is PyTorch's: 1, 0, 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1dConfig {
    /// Step between output positions.
    pub stride: usize,
    /// Zeros added at each end.
    pub padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
}

impl Default for Conv1dConfig {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
            dilation: 1,
        }
    }
}

/// `torch.nn.Conv1d` (with dilation).
#[derive(Debug, Clone)]
pub struct Conv1d {
    pub(crate) w: Weight,
    pub(crate) b: Vec<f32>,
    pub(crate) cin: usize,
    pub(crate) cout: usize,
    pub(crate) k: usize,
    pub(crate) stride: usize,
    pub(crate) pad: usize,
    pub(crate) dilation: usize,
}

impl Conv1d {
    /// Loads `{prefix}.weight` `[cout, cin, k]` and `{prefix}.bias`.
    pub fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        cin: usize,
        cout: usize,
        k: usize,
        cfg: Conv1dConfig,
    ) -> Result<Self, DemucsError> {
        Ok(Self {
            w: ck.take_weight(&format!("{prefix}.weight"), &[cout, cin, k])?,
            b: ck.take(&format!("{prefix}.bias"), &[cout])?,
            cin,
            cout,
            k,
            stride: cfg.stride,
            pad: cfg.padding,
            dilation: cfg.dilation,
        })
    }

    /// Output channels.
    pub fn cout(&self) -> usize {
        self.cout
    }

    /// `x` is `[cin, t]`; returns `[cout, t_out]` and `t_out`.
    pub fn forward(&self, x: &[f32], t: usize) -> (Vec<f32>, usize) {
        let weight = self.w.f32();
        let span = self.dilation * (self.k - 1) + 1;
        let t_out = (t + 2 * self.pad).saturating_sub(span) / self.stride + 1;
        let mut out;
        if self.k == 1 && self.stride == 1 && self.pad == 0 {
            out = ops::product(
                &weight,
                Layout::Normal,
                x,
                Layout::Normal,
                self.cout,
                t_out,
                self.cin,
            );
        } else {
            let (k, stride, pad, dil) = (self.k, self.stride, self.pad, self.dilation);
            out = im2col_product(&weight, self.cout, self.cin * k, t_out, |row, r, o0| {
                let (ci, kk) = (r / k, r % k);
                let xs = &x[ci * t..(ci + 1) * t];
                for (o, slot) in row.iter_mut().enumerate() {
                    let pos = ((o0 + o) * stride + kk * dil) as isize - pad as isize;
                    *slot = if pos >= 0 && (pos as usize) < t {
                        xs[pos as usize]
                    } else {
                        0.0
                    };
                }
            });
        }
        add_bias(&mut out, &self.b, t_out);
        (out, t_out)
    }
}

/// `torch.nn.Conv2d` over `[cin, h, w]`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    pub(crate) w: Weight,
    pub(crate) b: Vec<f32>,
    pub(crate) cin: usize,
    pub(crate) cout: usize,
    pub(crate) k: (usize, usize),
    pub(crate) stride: (usize, usize),
    pub(crate) pad: (usize, usize),
}

impl Conv2d {
    /// Loads `{prefix}.weight` `[cout, cin, kh, kw]` and `{prefix}.bias`.
    pub fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        cin: usize,
        cout: usize,
        k: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Result<Self, DemucsError> {
        Ok(Self {
            w: ck.take_weight(&format!("{prefix}.weight"), &[cout, cin, k.0, k.1])?,
            b: ck.take(&format!("{prefix}.bias"), &[cout])?,
            cin,
            cout,
            k,
            stride,
            pad,
        })
    }

    /// `x` is `[cin, h, w]`; returns `[cout, oh, ow]`, `oh`, `ow`.
    pub fn forward(&self, x: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
        let weight = self.w.f32();
        let oh = (h + 2 * self.pad.0 - self.k.0) / self.stride.0 + 1;
        let ow = (w + 2 * self.pad.1 - self.k.1) / self.stride.1 + 1;
        let n = oh * ow;
        let mut out;
        if self.k == (1, 1) && self.stride == (1, 1) && self.pad == (0, 0) {
            out = ops::product(
                &weight,
                Layout::Normal,
                x,
                Layout::Normal,
                self.cout,
                n,
                self.cin,
            );
        } else {
            let (k, stride, pad, cin) = (self.k, self.stride, self.pad, self.cin);
            out = im2col_product(&weight, self.cout, cin * k.0 * k.1, n, |row, r, p0| {
                let nb = row.len();
                let (ci, ki, kj) = (r / (k.0 * k.1), (r / k.1) % k.0, r % k.1);
                // Walk output positions p0..p0+nb row by row (no division
                // per element).
                let (mut oy, mut ox) = (p0 / ow, p0 % ow);
                let mut o = 0;
                while o < nb {
                    let run = (ow - ox).min(nb - o);
                    let iy = (oy * stride.0 + ki) as isize - pad.0 as isize;
                    let dst = &mut row[o..o + run];
                    if iy < 0 || iy as usize >= h {
                        dst.iter_mut().for_each(|v| *v = 0.0);
                    } else {
                        let src = &x[(ci * h + iy as usize) * w..(ci * h + iy as usize + 1) * w];
                        if stride.1 == 1 {
                            // The usual case (HTDemucs convolves over
                            // frequency only): a run is one copy.
                            let at = (ox + kj) as isize - pad.1 as isize;
                            copy_shifted(dst, src, at);
                        } else {
                            for (j, slot) in dst.iter_mut().enumerate() {
                                let ix = ((ox + j) * stride.1 + kj) as isize - pad.1 as isize;
                                *slot = if ix >= 0 && (ix as usize) < w {
                                    src[ix as usize]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                    o += run;
                    ox = 0;
                    oy += 1;
                }
            });
        }
        add_bias(&mut out, &self.b, n);
        (out, oh, ow)
    }
}

/// `torch.nn.ConvTranspose2d` (no padding, no output padding) over `[cin, h, w]`;
/// a 1-D transposed convolution is the `h = 1` case.
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    pub(crate) w: Weight,
    pub(crate) b: Vec<f32>,
    pub(crate) cin: usize,
    pub(crate) cout: usize,
    pub(crate) k: (usize, usize),
    pub(crate) stride: (usize, usize),
}

impl ConvTranspose2d {
    /// Loads `{prefix}.weight` `[cin, cout, kh(, kw)]` and `{prefix}.bias`. With
    /// `two_d = false` the weight is 1-D (`[cin, cout, k]`) and runs over the last axis.
    pub fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        two_d: bool,
    ) -> Result<Self, DemucsError> {
        let name = format!("{prefix}.weight");
        let (w, k, stride) = if two_d {
            (
                ck.take_weight(&name, &[cin, cout, k, 1])?,
                (k, 1),
                (stride, 1),
            )
        } else {
            (ck.take_weight(&name, &[cin, cout, k])?, (1, k), (1, stride))
        };
        Ok(Self {
            w,
            b: ck.take(&format!("{prefix}.bias"), &[cout])?,
            cin,
            cout,
            k,
            stride,
        })
    }

    /// `x` is `[cin, h, w]`; returns `[cout, oh, ow]`, `oh`, `ow`.
    pub fn forward(&self, x: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
        let weight = self.w.f32();
        let (kh, kw) = self.k;
        let rows = self.cout * kh * kw;
        let n = h * w;
        let oh = (h - 1) * self.stride.0 + kh;
        let ow = (w - 1) * self.stride.1 + kw;
        let mut out = vec![0.0; self.cout * oh * ow];
        // cols[(co, ki, kj), (y, x)] = Σ_ci W[ci, co, ki, kj] · x[ci, y, x], computed
        // for blocks of input rows so that cols stays small, then scattered.
        let rows_per_block = (COLS / w.max(1)).max(1);
        let mut xb = vec![0.0; self.cin * rows_per_block.min(h) * w];
        let mut cols = vec![0.0; rows * rows_per_block.min(h) * w];
        for y0 in (0..h).step_by(rows_per_block) {
            let yb = rows_per_block.min(h - y0);
            let nb = yb * w;
            for ci in 0..self.cin {
                xb[ci * nb..(ci + 1) * nb]
                    .copy_from_slice(&x[ci * n + y0 * w..ci * n + (y0 + yb) * w]);
            }
            ops::matmul(
                &mut cols,
                &weight,
                Layout::Transposed,
                &xb[..self.cin * nb],
                Layout::Normal,
                rows,
                nb,
                self.cin,
                false,
            );
            // The scatter-add, one output channel plane per task.
            let stride = self.stride;
            let cols = &cols;
            ops::par_rows_mut(&mut out, oh * ow, |first, planes| {
                for (i, plane) in planes.chunks_exact_mut(oh * ow).enumerate() {
                    let co = first + i;
                    for ki in 0..kh {
                        for kj in 0..kw {
                            let src = &cols[((co * kh + ki) * kw + kj) * nb
                                ..((co * kh + ki) * kw + kj + 1) * nb];
                            for y in 0..yb {
                                let oy = (y0 + y) * stride.0 + ki;
                                let dst = &mut plane[oy * ow..(oy + 1) * ow];
                                for xx in 0..w {
                                    dst[xx * stride.1 + kj] += src[y * w + xx];
                                }
                            }
                        }
                    }
                }
            });
        }
        add_bias(&mut out, &self.b, oh * ow);
        (out, oh, ow)
    }
}

fn add_bias(out: &mut [f32], b: &[f32], n: usize) {
    crate::simd::dispatch! {
        fn wide(out: &mut [f32], b: &[f32], n: usize) {
            for (row, bias) in out.chunks_exact_mut(n).zip(b) {
                row.iter_mut().for_each(|v| *v += bias);
            }
        }
    }
    ops::par_rows_mut(out, n, |first, rows| wide(rows, &b[first..], n));
}

/// `torch.nn.GroupNorm`.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    pub(crate) groups: usize,
    pub(crate) c: usize,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

impl GroupNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias` for `c` channels.
    pub fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        groups: usize,
        c: usize,
    ) -> Result<Self, DemucsError> {
        Ok(Self {
            groups,
            c,
            weight: ck.take(&format!("{prefix}.weight"), &[c])?,
            bias: ck.take(&format!("{prefix}.bias"), &[c])?,
        })
    }

    /// Normalises `x` = `[c, n]` in place.
    pub fn forward(&self, x: &mut [f32], n: usize) {
        ops::group_norm(x, self.c, n, self.groups, &self.weight, &self.bias, 1e-5);
    }
}

/// The residual branch of each layer (`DConv`): per depth, a dilated conv down to
/// `channels / compress`, GroupNorm, GELU, a 1×1 conv to `2·channels`, GroupNorm,
/// GLU and LayerScale, added to the input.
#[derive(Debug, Clone)]
pub struct DConv {
    pub(crate) layers: Vec<(Conv1d, GroupNorm, Conv1d, GroupNorm, Vec<f32>)>,
    pub(crate) channels: usize,
}

impl DConv {
    /// Loads `{prefix}.layers.{d}.{0,1,3,4,6}`.
    pub fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        channels: usize,
        compress: f64,
        depth: usize,
    ) -> Result<Self, DemucsError> {
        let hidden = (channels as f64 / compress) as usize;
        let mut layers = Vec::with_capacity(depth);
        for d in 0..depth {
            let dil = 1usize << d;
            let p = format!("{prefix}.layers.{d}");
            layers.push((
                Conv1d::load(
                    ck,
                    &format!("{p}.0"),
                    channels,
                    hidden,
                    3,
                    Conv1dConfig {
                        padding: dil,
                        dilation: dil,
                        ..Conv1dConfig::default()
                    },
                )?,
                GroupNorm::load(ck, &format!("{p}.1"), 1, hidden)?,
                Conv1d::load(
                    ck,
                    &format!("{p}.3"),
                    hidden,
                    2 * channels,
                    1,
                    Conv1dConfig::default(),
                )?,
                GroupNorm::load(ck, &format!("{p}.4"), 1, 2 * channels)?,
                ck.take(&format!("{p}.6.scale"), &[channels])?,
            ));
        }
        Ok(Self { layers, channels })
    }

    /// `x` is `[channels, t]`, updated in place.
    pub fn forward(&self, x: &mut [f32], t: usize) {
        self.forward_rows(x, self.channels, 1, t);
    }

    /// Runs the branch on every frequency row of `x` = `[c, f, t]` separately (the
    /// reference folds frequencies into the batch): the convolutions of all rows
    /// in a block go through one matrix product each, and the GroupNorms (one
    /// group) are taken per row.
    pub fn forward_rows(&self, x: &mut [f32], c: usize, f: usize, t: usize) {
        assert!(x.len() >= c * f * t, "DConv: input smaller than its shape");
        let rows_per_block = (COLS / t.max(1)).max(1).min(f);
        let blocks = f.div_ceil(rows_per_block.max(1));
        /// The input, shared by blocks that each read and write only their own
        /// frequency rows.
        struct Rows(*mut f32);
        // SAFETY: see the use below: blocks touch disjoint rows.
        #[allow(unsafe_code)]
        unsafe impl Sync for Rows {}
        let rows = Rows(x.as_mut_ptr());
        for (conv1, gn1, conv2, gn2, scale) in &self.layers {
            let hidden = conv1.cout;
            let (k, dil, pad) = (conv1.k, conv1.dilation, conv1.pad);
            let (w1, w2) = (conv1.w.f32(), conv2.w.f32());
            // Blocks of frequency rows are independent: they run side by side,
            // each with its own buffers and single-threaded products (one block,
            // in the time branch, uses threaded products instead).
            ops::par_for(blocks, |b| {
                let rows = &rows;
                let f0 = b * rows_per_block;
                let fb = rows_per_block.min(f - f0);
                let nb = fb * t;
                let row = |ci: usize, fi: usize| {
                    // SAFETY: (ci, f0 + fi) is a row of x (ci < c, f0 + fi < f,
                    // checked by the assertion above) that belongs to this
                    // block alone; no other block reads or writes it, and the
                    // slice made here is dropped before the next is made.
                    #[allow(unsafe_code)]
                    unsafe {
                        std::slice::from_raw_parts_mut(rows.0.add((ci * f + f0 + fi) * t), t)
                    }
                };
                let level = crate::simd::level();
                let mut y = if level >= crate::simd::Simd::Avx2 {
                    // Implicit im2col: the product packs its panels straight
                    // from the rows of x (the unfolded input was 3× the input
                    // and, in the time branch, a 50 MB buffer per segment).
                    let src = DilatedRows {
                        x: rows.0,
                        c,
                        f,
                        t,
                        f0,
                        fb,
                        k,
                        dil,
                        pad,
                    };
                    ops::product_from(&w1, &src, hidden, nb, c * k)
                } else {
                    let mut cols = vec![0.0; c * k * nb];
                    // im2col of the dilated convolution, row by row (no leakage
                    // across rows): output step o of tap kk reads input step
                    // o + kk·dil − pad.
                    for ci in 0..c {
                        for fi in 0..fb {
                            let src = row(ci, fi);
                            for kk in 0..k {
                                let r = ci * k + kk;
                                let shift = (kk * dil) as isize - pad as isize;
                                copy_shifted(
                                    &mut cols[r * nb + fi * t..r * nb + (fi + 1) * t],
                                    src,
                                    shift,
                                );
                            }
                        }
                    }
                    ops::product(
                        &w1,
                        Layout::Normal,
                        &cols,
                        Layout::Normal,
                        hidden,
                        nb,
                        c * k,
                    )
                };
                add_bias(&mut y, &conv1.b, nb);
                group_norm_rows(&mut y, hidden, fb, t, gn1);
                ops::gelu_inplace(&mut y);
                let z = ops::product(&w2, Layout::Normal, &y, Layout::Normal, 2 * c, nb, hidden);
                drop(y);
                // The bias, the GroupNorm, the GLU, the LayerScale and the
                // residual in one pass over z after its statistics (they were
                // four passes over the largest buffer of the branch).
                let affine = biased_norm_affine(&z, &conv2.b, gn2, 2 * c, fb, t);
                ops::par_for(c, |ci| {
                    for fi in 0..fb {
                        let at = |ch: usize| &z[ch * nb + fi * t..ch * nb + (fi + 1) * t];
                        glu_scale_residual(
                            row(ci, fi),
                            (at(ci), affine[ci * fb + fi]),
                            (at(c + ci), affine[(c + ci) * fb + fi]),
                            scale[ci],
                        );
                    }
                });
            });
        }
    }
}

/// The unfolded input of a DConv's dilated convolution over rows `f0..f0+fb`
/// of `x` (`[c, f, t]`), read in place: `B(ci·k + kk, fi·t + o)` is
/// `x[ci, f0 + fi, o + kk·dil − pad]`, zero outside the row.
struct DilatedRows {
    x: *mut f32,
    c: usize,
    f: usize,
    t: usize,
    f0: usize,
    fb: usize,
    k: usize,
    dil: usize,
    pad: usize,
}

// SAFETY: only read through, while no thread writes the rows it covers (the
// block's own rows, written after its product).
#[allow(unsafe_code)]
unsafe impl Sync for DilatedRows {}

#[allow(unsafe_code)]
impl crate::sgemm::BSource for DilatedRows {
    unsafe fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        let t = self.t;
        debug_assert!(p0 + kc <= self.c * self.k && j0 + nc <= self.fb * t);
        for (jp, panel) in out
            .chunks_exact_mut(nr * kc)
            .take(nc.div_ceil(nr))
            .enumerate()
        {
            let first = j0 + jp * nr;
            let cols = nr.min(nc - jp * nr);
            for p in 0..kc {
                let (ci, kk) = ((p0 + p) / self.k, (p0 + p) % self.k);
                let shift = (kk * self.dil) as isize - self.pad as isize;
                let dst = &mut panel[p * nr..(p + 1) * nr];
                let mut done = 0;
                while done < cols {
                    let (fi, o) = ((first + done) / t, (first + done) % t);
                    let run = (t - o).min(cols - done);
                    // SAFETY: (ci, f0 + fi) is a row of x inside the block the
                    // caller guarantees (ci < c, fi < fb), t floats long.
                    let src = unsafe {
                        std::slice::from_raw_parts(self.x.add((ci * self.f + self.f0 + fi) * t), t)
                    };
                    copy_shifted(&mut dst[done..done + run], src, o as isize + shift);
                    done += run;
                }
                dst[cols..].fill(0.0);
            }
        }
    }
}

/// `dst += s · GLU(a, g)` for one row, where `a` and `g` are rows of the
/// DConv's last product each with its `(α, β)`: the value after its bias and
/// GroupNorm is `α·v + β` (see [`biased_norm_affine`]).
fn glu_scale_residual(dst: &mut [f32], a: (&[f32], (f32, f32)), g: (&[f32], (f32, f32)), s: f32) {
    crate::simd::dispatch! {
        fn wide(dst: &mut [f32], a: &[f32], ab: (f32, f32), g: &[f32], gb: (f32, f32), s: f32) {
            for ((d, av), gv) in dst.iter_mut().zip(a).zip(g) {
                let (av, gv) = (av * ab.0 + ab.1, gv * gb.0 + gb.1);
                *d += s * (av / (1.0 + ops::exp(-gv)));
            }
        }
    }
    wide(dst, a.0, a.1, g.0, g.1, s);
}

/// For `z` = `[c, rows, t]` before its bias `b`: the `(α, β)` of every channel
/// and row such that `α·z + β` is `GroupNorm(z + b)` with one group taken per
/// row (as [`group_norm_rows`] after adding the bias). The statistics of
/// `z + b` follow from each row's sum and sum of squares of `z`, in f64:
/// Σ(z+b) = S + t·b and Σ(z+b)² = Q + 2b·S + t·b².
fn biased_norm_affine(
    z: &[f32],
    b: &[f32],
    gn: &GroupNorm,
    c: usize,
    rows: usize,
    t: usize,
) -> Vec<(f32, f32)> {
    let nb = rows * t;
    let stats = ops::par_map(c, |ch| {
        (0..rows)
            .map(|fi| ops::sum_and_squares(&z[ch * nb + fi * t..ch * nb + (fi + 1) * t]))
            .collect::<Vec<_>>()
    });
    let n = (c * t) as f64;
    let tf = t as f64;
    let mut out = vec![(0.0, 0.0); c * rows];
    for fi in 0..rows {
        let (mut sum, mut sq) = (0.0f64, 0.0f64);
        for (ch, st) in stats.iter().enumerate() {
            let (s, q) = st[fi];
            let bb = f64::from(b[ch]);
            sum += s + tf * bb;
            sq += q + 2.0 * bb * s + tf * bb * bb;
        }
        let mean = sum / n;
        let var = (sq / n - mean * mean).max(0.0);
        let inv = 1.0 / (var + 1e-5).sqrt();
        for ch in 0..c {
            let alpha = f64::from(gn.weight[ch]) * inv;
            let beta = (f64::from(b[ch]) - mean) * alpha + f64::from(gn.bias[ch]);
            out[ch * rows + fi] = (alpha as f32, beta as f32);
        }
    }
    out
}

/// GroupNorm with one group applied to each row of `x` = `[c, rows, t]` separately.
/// `dst[j] = src[at + j]` where that index lies inside `src`, 0 elsewhere (the
/// zero padding of a convolution): one copy and two fills instead of a bounds
/// check per element, for the im2col loops.
fn copy_shifted(dst: &mut [f32], src: &[f32], at: isize) {
    let n = dst.len() as isize;
    let lo = (-at).clamp(0, n) as usize;
    let hi = (src.len() as isize - at).clamp(lo as isize, n) as usize;
    dst[..lo].fill(0.0);
    if hi > lo {
        // Only when something overlaps: `at` may lie past the end of `src`.
        let from = (at + lo as isize) as usize;
        dst[lo..hi].copy_from_slice(&src[from..from + hi - lo]);
    }
    dst[hi..].fill(0.0);
}

fn group_norm_rows(x: &mut [f32], c: usize, rows: usize, t: usize, gn: &GroupNorm) {
    crate::simd::dispatch! {
        fn wide(x: &mut [f32], c: usize, rows: usize, t: usize, gn: &GroupNorm) {
            group_norm_rows_portable(x, c, rows, t, gn)
        }
    }
    wide(x, c, rows, t, gn);
}

#[inline(always)]
fn group_norm_rows_portable(x: &mut [f32], c: usize, rows: usize, t: usize, gn: &GroupNorm) {
    let nb = rows * t;
    for fi in 0..rows {
        let row = |ci: usize| ci * nb + fi * t..ci * nb + (fi + 1) * t;
        let (mut sum, mut sq) = (0.0f64, 0.0f64);
        for ci in 0..c {
            let (s, q) = ops::sum_and_squares(&x[row(ci)]);
            sum += s;
            sq += q;
        }
        let n = (c * t) as f64;
        let mean = sum / n;
        let var = (sq / n - mean * mean).max(0.0);
        let inv = (1.0 / (var + 1e-5).sqrt()) as f32;
        let mean = mean as f32;
        if rows == 1 {
            // The time branch: one long row per channel, channels over threads.
            let affine: Vec<(f32, f32, f32)> = (0..c)
                .map(|ci| (mean, gn.weight[ci] * inv, gn.bias[ci]))
                .collect();
            ops::affine_rows(&mut x[..c * t], t, &affine);
            continue;
        }
        for ci in 0..c {
            let (w, b) = (gn.weight[ci] * inv, gn.bias[ci]);
            for v in &mut x[row(ci)] {
                *v = (*v - mean) * w + b;
            }
        }
    }
}

/// Where a layer works: the frequency branch (`[c, f, t]`, convolving over `f`)
/// or the time branch (`[c, t]`).
#[derive(Debug, Clone)]
pub(crate) enum Conv {
    Freq(Conv2d),
    Time(Conv1d),
}

/// A tensor of either branch: data plus `(c, f, t)` (`f = 1` in the time branch).
#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    /// Row-major data.
    pub data: Vec<f32>,
    /// Channels.
    pub c: usize,
    /// Frequency rows (1 for the time branch).
    pub f: usize,
    /// Time steps.
    pub t: usize,
}

impl Conv {
    fn forward(&self, x: &Act) -> Act {
        match self {
            Conv::Freq(conv) => {
                let (data, f, t) = conv.forward(&x.data, x.f, x.t);
                Act {
                    c: conv.cout,
                    data,
                    f,
                    t,
                }
            }
            Conv::Time(conv) => {
                let (data, t) = conv.forward(&x.data, x.t);
                Act {
                    c: conv.cout(),
                    data,
                    f: 1,
                    t,
                }
            }
        }
    }
}

/// Shared settings of an encoder or decoder layer.
#[derive(Debug, Clone, Copy)]
pub struct LayerSpec {
    /// Input channels.
    pub chin: usize,
    /// Output channels.
    pub chout: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Works over frequencies.
    pub freq: bool,
    /// Pads so that the output is the input / stride.
    pub pad: bool,
    /// GroupNorm (with `norm_groups`).
    pub norm: bool,
    /// Groups of that norm.
    pub norm_groups: usize,
    /// Rewrite convolution.
    pub rewrite: bool,
    /// Context of the rewrite convolution.
    pub context: usize,
    /// DConv branch (compression, depth) if any.
    pub dconv: Option<(f64, usize)>,
    /// Only the first convolution (before the branches merge).
    pub empty: bool,
}

/// `HEncLayer`.
#[derive(Debug, Clone)]
pub struct EncLayer {
    pub(crate) spec: LayerSpec,
    pub(crate) conv: Conv,
    pub(crate) norm1: Option<GroupNorm>,
    pub(crate) rewrite: Option<Conv>,
    pub(crate) norm2: Option<GroupNorm>,
    pub(crate) dconv: Option<DConv>,
}

fn norm_opt(
    ck: &mut Checkpoint,
    name: &str,
    s: &LayerSpec,
    c: usize,
) -> Result<Option<GroupNorm>, DemucsError> {
    if s.norm {
        Ok(Some(GroupNorm::load(ck, name, s.norm_groups, c)?))
    } else {
        Ok(None)
    }
}

fn rewrite_conv(
    ck: &mut Checkpoint,
    name: &str,
    s: &LayerSpec,
    ch: usize,
) -> Result<Conv, DemucsError> {
    let k = 1 + 2 * s.context;
    Ok(if s.freq {
        Conv::Freq(Conv2d::load(
            ck,
            name,
            ch,
            2 * ch,
            (k, k),
            (1, 1),
            (s.context, s.context),
        )?)
    } else {
        Conv::Time(Conv1d::load(
            ck,
            name,
            ch,
            2 * ch,
            k,
            Conv1dConfig {
                padding: s.context,
                ..Conv1dConfig::default()
            },
        )?)
    })
}

impl EncLayer {
    /// Loads `{prefix}.conv`, `.norm1`, `.rewrite`, `.norm2`, `.dconv`.
    pub fn load(ck: &mut Checkpoint, prefix: &str, s: LayerSpec) -> Result<Self, DemucsError> {
        let pad = if s.pad { s.kernel / 4 } else { 0 };
        let name = format!("{prefix}.conv");
        let conv = if s.freq {
            Conv::Freq(Conv2d::load(
                ck,
                &name,
                s.chin,
                s.chout,
                (s.kernel, 1),
                (s.stride, 1),
                (pad, 0),
            )?)
        } else {
            Conv::Time(Conv1d::load(
                ck,
                &name,
                s.chin,
                s.chout,
                s.kernel,
                Conv1dConfig {
                    stride: s.stride,
                    padding: pad,
                    dilation: 1,
                },
            )?)
        };
        if s.empty {
            return Ok(Self {
                spec: s,
                conv,
                norm1: None,
                rewrite: None,
                norm2: None,
                dconv: None,
            });
        }
        let norm1 = norm_opt(ck, &format!("{prefix}.norm1"), &s, s.chout)?;
        let (rewrite, norm2) = if s.rewrite {
            (
                Some(rewrite_conv(ck, &format!("{prefix}.rewrite"), &s, s.chout)?),
                norm_opt(ck, &format!("{prefix}.norm2"), &s, 2 * s.chout)?,
            )
        } else {
            (None, None)
        };
        let dconv = match s.dconv {
            Some((comp, depth)) => Some(DConv::load(
                ck,
                &format!("{prefix}.dconv"),
                s.chout,
                comp,
                depth,
            )?),
            None => None,
        };
        Ok(Self {
            spec: s,
            conv,
            norm1,
            rewrite,
            norm2,
            dconv,
        })
    }

    /// True for the layer that only holds the first convolution.
    pub fn is_empty(&self) -> bool {
        self.spec.empty
    }

    /// Runs the layer; `inject` (time-branch output of the same stride) is added
    /// after the first convolution.
    pub fn forward(&self, x: Act, inject: Option<&Act>) -> Act {
        let mut x = x;
        if !self.spec.freq {
            // A 4-D input to a time layer is flattened to [c·f, t].
            x.c *= x.f;
            x.f = 1;
            let rem = x.t % self.spec.stride;
            if rem != 0 {
                let t2 = x.t + self.spec.stride - rem;
                let mut data = vec![0.0; x.c * t2];
                for c in 0..x.c {
                    data[c * t2..c * t2 + x.t].copy_from_slice(&x.data[c * x.t..(c + 1) * x.t]);
                }
                x = Act { data, t: t2, ..x };
            }
        }
        let mut y = self.conv.forward(&x);
        drop(x);
        if self.spec.empty {
            return y;
        }
        if let Some(inj) = inject {
            // [c, t] injected into every frequency row of [c, f, t].
            for c in 0..y.c {
                for fi in 0..y.f {
                    let row = &mut y.data[(c * y.f + fi) * y.t..(c * y.f + fi + 1) * y.t];
                    let src = &inj.data[(c * inj.f + fi.min(inj.f - 1)) * inj.t..][..y.t];
                    row.iter_mut().zip(src).for_each(|(a, b)| *a += b);
                }
            }
        }
        if let Some(n) = &self.norm1 {
            n.forward(&mut y.data, y.f * y.t);
        }
        ops::gelu_inplace(&mut y.data);
        if let Some(d) = &self.dconv {
            if self.spec.freq {
                d.forward_rows(&mut y.data, y.c, y.f, y.t);
            } else {
                d.forward(&mut y.data, y.t);
            }
        }
        match &self.rewrite {
            Some(rw) => {
                let mut z = rw.forward(&y);
                drop(y);
                if let Some(n) = &self.norm2 {
                    n.forward(&mut z.data, z.f * z.t);
                }
                let c = z.c / 2;
                ops::glu_inplace(&mut z.data, c, z.f * z.t);
                Act { c, ..z }
            }
            None => y,
        }
    }
}

/// `HDecLayer`.
#[derive(Debug, Clone)]
pub struct DecLayer {
    pub(crate) spec: LayerSpec,
    pub(crate) last: bool,
    pub(crate) conv_tr: ConvTranspose2d,
    pub(crate) norm2: Option<GroupNorm>,
    pub(crate) rewrite: Option<Conv>,
    pub(crate) norm1: Option<GroupNorm>,
    pub(crate) dconv: Option<DConv>,
}

impl DecLayer {
    /// Loads `{prefix}.conv_tr`, `.norm2`, `.rewrite`, `.norm1`, `.dconv`.
    pub fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        s: LayerSpec,
        last: bool,
    ) -> Result<Self, DemucsError> {
        let conv_tr = ConvTranspose2d::load(
            ck,
            &format!("{prefix}.conv_tr"),
            s.chin,
            s.chout,
            s.kernel,
            s.stride,
            s.freq,
        )?;
        let norm2 = norm_opt(ck, &format!("{prefix}.norm2"), &s, s.chout)?;
        let mut layer = Self {
            spec: s,
            last,
            conv_tr,
            norm2,
            rewrite: None,
            norm1: None,
            dconv: None,
        };
        if s.empty {
            return Ok(layer);
        }
        if s.rewrite {
            layer.rewrite = Some(rewrite_conv(ck, &format!("{prefix}.rewrite"), &s, s.chin)?);
            layer.norm1 = norm_opt(ck, &format!("{prefix}.norm1"), &s, 2 * s.chin)?;
        }
        if let Some((comp, depth)) = s.dconv {
            layer.dconv = Some(DConv::load(
                ck,
                &format!("{prefix}.dconv"),
                s.chin,
                comp,
                depth,
            )?);
        }
        Ok(layer)
    }

    /// True for the layer that only holds the last transposed convolution.
    pub fn is_empty(&self) -> bool {
        self.spec.empty
    }

    /// Runs the layer with its skip connection; `length` is the time length the
    /// time branch must come back to. Returns the output and, with `keep_pre` (for
    /// the branch merge), the activation just before the transposed convolution.
    pub fn forward(
        &self,
        x: Act,
        skip: Option<Act>,
        length: usize,
        keep_pre: bool,
    ) -> (Act, Option<Act>) {
        let mut x = x;
        if self.spec.freq && x.f == 1 && x.c != self.spec.chin {
            x.f = x.c / self.spec.chin;
            x.c = self.spec.chin;
        }
        let y = if self.spec.empty {
            x
        } else {
            if let Some(s) = skip {
                x.data.iter_mut().zip(&s.data).for_each(|(a, b)| *a += b);
                drop(s);
            }
            let mut y = match &self.rewrite {
                Some(rw) => {
                    let mut z = rw.forward(&x);
                    drop(x);
                    if let Some(n) = &self.norm1 {
                        n.forward(&mut z.data, z.f * z.t);
                    }
                    let c = z.c / 2;
                    ops::glu_inplace(&mut z.data, c, z.f * z.t);
                    Act { c, ..z }
                }
                None => x,
            };
            if let Some(d) = &self.dconv {
                if self.spec.freq {
                    d.forward_rows(&mut y.data, y.c, y.f, y.t);
                } else {
                    d.forward(&mut y.data, y.t);
                }
            }
            y
        };
        let (mut z, zf, zt) = if self.spec.freq {
            self.conv_tr.forward(&y.data, y.f, y.t)
        } else {
            self.conv_tr.forward(&y.data, 1, y.t)
        };
        let pre = keep_pre.then_some(y);
        if let Some(n) = &self.norm2 {
            n.forward(&mut z, zf * zt);
        }
        let pad = if self.spec.pad {
            self.spec.kernel / 4
        } else {
            0
        };
        let c = self.spec.chout;
        let mut out = if self.spec.freq {
            let f2 = zf - 2 * pad;
            let mut data = Vec::with_capacity(c * f2 * zt);
            for ci in 0..c {
                data.extend_from_slice(&z[(ci * zf + pad) * zt..(ci * zf + pad + f2) * zt]);
            }
            Act {
                data,
                c,
                f: f2,
                t: zt,
            }
        } else {
            let mut data = Vec::with_capacity(c * length);
            for ci in 0..c {
                data.extend_from_slice(&z[ci * zt + pad..ci * zt + pad + length]);
            }
            Act {
                data,
                c,
                f: 1,
                t: length,
            }
        };
        drop(z);
        if !self.last {
            ops::gelu_inplace(&mut out.data);
        }
        (out, pre)
    }
}
