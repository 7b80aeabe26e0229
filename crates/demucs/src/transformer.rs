//! The cross-domain transformer (`CrossTransformerEncoder` in the reference's
//! `transformer.py`): alternating self-attention and cross-attention layers over
//! the frequency-branch tokens and the time-branch tokens.

use crate::config::Config;
use crate::ops::{self, Layout};
use crate::weights::{Checkpoint, Weight};
use crate::DemucsError;

/// `torch.nn.Linear`.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub(crate) w: Weight,
    pub(crate) b: Vec<f32>,
    pub(crate) din: usize,
    pub(crate) dout: usize,
}

impl Linear {
    fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        din: usize,
        dout: usize,
    ) -> Result<Self, DemucsError> {
        Ok(Self {
            w: ck.take_weight(&format!("{prefix}.weight"), &[dout, din])?,
            b: ck.take(&format!("{prefix}.bias"), &[dout])?,
            din,
            dout,
        })
    }

    /// `x` is `[t, din]`; returns `[t, dout]`.
    fn forward(&self, x: &[f32], t: usize) -> Vec<f32> {
        let w = self.w.f32();
        let mut y = ops::product(
            x,
            Layout::Normal,
            &w,
            Layout::Transposed,
            t,
            self.dout,
            self.din,
        );
        for row in y.chunks_exact_mut(self.dout) {
            row.iter_mut().zip(&self.b).for_each(|(v, b)| *v += b);
        }
        y
    }
}

/// `torch.nn.LayerNorm` over the channel axis of `[t, c]` tokens.
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

impl LayerNorm {
    fn load(ck: &mut Checkpoint, prefix: &str, c: usize) -> Result<Self, DemucsError> {
        Ok(Self {
            w: ck.take(&format!("{prefix}.weight"), &[c])?,
            b: ck.take(&format!("{prefix}.bias"), &[c])?,
        })
    }

    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut y = x.to_vec();
        ops::layer_norm(&mut y, self.w.len(), &self.w, &self.b, 1e-5);
        y
    }
}

/// `MyGroupNorm` with one group: normalises all tokens and channels together,
/// with a per-channel affine.
#[derive(Debug, Clone)]
pub(crate) struct TokenGroupNorm {
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

impl TokenGroupNorm {
    fn apply(&self, x: &mut [f32]) {
        let c = self.w.len();
        let n = x.len() as f64;
        let (sum, sq) = ops::sum_and_squares(x);
        let mean = sum / n;
        let var = (sq / n - mean * mean).max(0.0);
        let inv = (1.0 / (var + 1e-5).sqrt()) as f32;
        let mean = mean as f32;
        ops::par_rows_mut(x, c, |_, rows| {
            for row in rows.chunks_exact_mut(c) {
                for (i, v) in row.iter_mut().enumerate() {
                    *v = (*v - mean) * inv * self.w[i] + self.b[i];
                }
            }
        });
    }
}

/// `torch.nn.MultiheadAttention` (packed input projection, batch first).
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    pub(crate) in_w: Weight,
    pub(crate) in_b: Vec<f32>,
    pub(crate) out: Linear,
    pub(crate) c: usize,
    pub(crate) heads: usize,
}

impl Attention {
    fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        c: usize,
        heads: usize,
    ) -> Result<Self, DemucsError> {
        Ok(Self {
            in_w: ck.take_weight(&format!("{prefix}.in_proj_weight"), &[3 * c, c])?,
            in_b: ck.take(&format!("{prefix}.in_proj_bias"), &[3 * c])?,
            out: Linear::load(ck, &format!("{prefix}.out_proj"), c, c)?,
            c,
            heads,
        })
    }

    fn project(&self, x: &[f32], t: usize, part: usize) -> Vec<f32> {
        let c = self.c;
        let w = self.in_w.f32_range(part * c * c..(part + 1) * c * c);
        let mut y = ops::product(x, Layout::Normal, &w, Layout::Transposed, t, c, c);
        let b = &self.in_b[part * c..(part + 1) * c];
        for row in y.chunks_exact_mut(c) {
            row.iter_mut().zip(b).for_each(|(v, bb)| *v += bb);
        }
        y
    }

    /// Queries `[tq, c]` attend to keys/values `[tk, c]`.
    fn forward(&self, q_in: &[f32], tq: usize, kv_in: &[f32], tk: usize) -> Vec<f32> {
        let (c, h) = (self.c, self.heads);
        let d = c / h;
        let mut q = self.project(q_in, tq, 0);
        let k = self.project(kv_in, tk, 1);
        let v = self.project(kv_in, tk, 2);
        let scale = 1.0 / (d as f32).sqrt();
        q.iter_mut().for_each(|x| *x *= scale);
        let mut ctx = vec![0.0; tq * c];
        let level = crate::simd::level();
        if level >= crate::simd::Simd::Avx2 {
            attend_packed(level, &q, tq, &k, &v, tk, c, h, &mut ctx);
        } else {
            attend_portable(&q, tq, &k, &v, tk, c, h, &mut ctx);
        }
        self.out.forward(&ctx, tq)
    }
}

/// Queries go in blocks so that a block's scores stay in the second-level cache
/// through the softmax instead of streaming a `tq × tk` matrix through memory
/// (the whole matrix would be 230 MB for the frequency branch).
const QB: usize = 96;

/// Multi-head attention of scaled queries `q` `[tq, c]` over keys `k` and values
/// `v` `[tk, c]` into `ctx` `[tq, c]`, with our x86 kernels: each head's keys and
/// values are packed once, straight from the projections, and used by every block
/// of queries; heads run in parallel, each on one thread.
#[allow(clippy::too_many_arguments)]
fn attend_packed(
    level: crate::simd::Simd,
    q: &[f32],
    tq: usize,
    k: &[f32],
    v: &[f32],
    tk: usize,
    c: usize,
    h: usize,
    ctx: &mut [f32],
) {
    use crate::sgemm::{MatRef, PackedA, PackedB};
    let d = c / h;
    assert!(q.len() >= tq * c && k.len() >= tk * c && v.len() >= tk * c && ctx.len() >= tq * c);
    struct Dst(*mut f32);
    // SAFETY: each head writes only its own `d` columns of ctx.
    #[allow(unsafe_code)]
    unsafe impl Sync for Dst {}
    let dst = Dst(ctx.as_mut_ptr());
    let one_head = |head: usize| {
        let dst = &dst;
        // SAFETY: the assertion above bounds every index: head·d + d ≤ c, rows
        // below tq or tk; the level is level()'s, which the CPU supports.
        #[allow(unsafe_code)]
        unsafe {
            // K as the left operand: (key i, dim p) at k[i·c + head·d + p]. The
            // scores come out transposed, keys down and queries across, so that
            // the softmax runs along contiguous rows of queries and the product
            // with V reads them as a column-major left operand (cheap to pack).
            let ka = PackedA::new(
                level,
                MatRef {
                    ptr: k.as_ptr().add(head * d),
                    rs: c as isize,
                    cs: 1,
                },
                tk,
                d,
            );
            // V: (key p, dim j) at v[p·c + head·d + j].
            let vp = PackedB::new(
                level,
                MatRef {
                    ptr: v.as_ptr().add(head * d),
                    rs: c as isize,
                    cs: 1,
                },
                tk,
                d,
            );
            let mut st = vec![0.0; tk * QB.min(tq)];
            let mut oh = vec![0.0; QB.min(tq) * d];
            let mut inv = vec![0.0; QB.min(tq)];
            for q0 in (0..tq).step_by(QB) {
                let qb = QB.min(tq - q0);
                // Qᵀ block: (dim p, query j) at q[(q0 + j)·c + head·d + p].
                let qt = MatRef {
                    ptr: q.as_ptr().add(q0 * c + head * d),
                    rs: 1,
                    cs: c as isize,
                };
                ka.product(qb, qt, st.as_mut_ptr(), qb);
                ops::softmax_columns_unnormalised(&mut st[..tk * qb], qb, &mut inv[..qb]);
                let pa = MatRef {
                    ptr: st.as_ptr(),
                    rs: 1,
                    cs: qb as isize,
                };
                vp.product(qb, pa, oh.as_mut_ptr(), d, false);
                for (i, s) in inv[..qb].iter().enumerate() {
                    let row = dst.0.add((q0 + i) * c + head * d);
                    for (j, o) in oh[i * d..(i + 1) * d].iter().enumerate() {
                        *row.add(j) = o * s;
                    }
                }
            }
        }
    };
    if ops::available_threads() <= 1 {
        (0..h).for_each(one_head);
    } else {
        use rayon::prelude::*;
        (0..h).into_par_iter().for_each(one_head);
    }
}

/// [`attend_packed`] with the portable matrix product (other architectures).
#[allow(clippy::too_many_arguments)]
fn attend_portable(
    q: &[f32],
    tq: usize,
    k: &[f32],
    v: &[f32],
    tk: usize,
    c: usize,
    h: usize,
    ctx: &mut [f32],
) {
    let d = c / h;
    let (mut qh, mut kh, mut vh) = (vec![0.0; tq * d], vec![0.0; tk * d], vec![0.0; tk * d]);
    let mut scores = vec![0.0; QB.min(tq) * tk];
    let mut oh = vec![0.0; QB.min(tq) * d];
    let mut inv = vec![0.0; QB.min(tq)];
    for head in 0..h {
        for i in 0..tq {
            qh[i * d..(i + 1) * d].copy_from_slice(&q[i * c + head * d..i * c + (head + 1) * d]);
        }
        for i in 0..tk {
            kh[i * d..(i + 1) * d].copy_from_slice(&k[i * c + head * d..i * c + (head + 1) * d]);
            vh[i * d..(i + 1) * d].copy_from_slice(&v[i * c + head * d..i * c + (head + 1) * d]);
        }
        for q0 in (0..tq).step_by(QB) {
            let qb = QB.min(tq - q0);
            let sc = &mut scores[..qb * tk];
            ops::matmul(
                sc,
                &qh[q0 * d..(q0 + qb) * d],
                Layout::Normal,
                &kh,
                Layout::Transposed,
                qb,
                tk,
                d,
                false,
            );
            ops::softmax_rows_unnormalised(sc, tk, &mut inv[..qb]);
            ops::matmul(
                &mut oh[..qb * d],
                sc,
                Layout::Normal,
                &vh,
                Layout::Normal,
                qb,
                d,
                tk,
                false,
            );
            for i in 0..qb {
                let dst = &mut ctx[(q0 + i) * c + head * d..(q0 + i) * c + (head + 1) * d];
                for (o, v) in dst.iter_mut().zip(&oh[i * d..(i + 1) * d]) {
                    *o = v * inv[i];
                }
            }
        }
    }
}

/// One transformer layer: self-attention (`MyTransformerEncoderLayer`) or
/// cross-attention (`CrossTransformerEncoderLayer`), with a feed-forward block.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) cross: bool,
    pub(crate) attn: Attention,
    pub(crate) norm1: LayerNorm,
    pub(crate) norm2: LayerNorm,
    pub(crate) norm3: Option<LayerNorm>,
    pub(crate) linear1: Linear,
    pub(crate) linear2: Linear,
    pub(crate) gamma1: Option<Vec<f32>>,
    pub(crate) gamma2: Option<Vec<f32>>,
    pub(crate) norm_out: Option<TokenGroupNorm>,
    pub(crate) norm_first: bool,
    pub(crate) gelu: bool,
    pub(crate) c: usize,
}

impl Layer {
    fn load(
        ck: &mut Checkpoint,
        prefix: &str,
        cfg: &Config,
        c: usize,
        cross: bool,
    ) -> Result<Self, DemucsError> {
        let hidden = (c as f64 * cfg.t_hidden_scale) as usize;
        let attn_name = if cross { "cross_attn" } else { "self_attn" };
        let gamma = |ck: &mut Checkpoint, name: &str| -> Result<Option<Vec<f32>>, DemucsError> {
            if cfg.t_layer_scale {
                Ok(Some(ck.take(&format!("{prefix}.{name}.scale"), &[c])?))
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            cross,
            attn: Attention::load(ck, &format!("{prefix}.{attn_name}"), c, cfg.t_heads)?,
            norm1: LayerNorm::load(ck, &format!("{prefix}.norm1"), c)?,
            norm2: LayerNorm::load(ck, &format!("{prefix}.norm2"), c)?,
            norm3: if cross {
                Some(LayerNorm::load(ck, &format!("{prefix}.norm3"), c)?)
            } else {
                None
            },
            linear1: Linear::load(ck, &format!("{prefix}.linear1"), c, hidden)?,
            linear2: Linear::load(ck, &format!("{prefix}.linear2"), hidden, c)?,
            gamma1: gamma(ck, "gamma_1")?,
            gamma2: gamma(ck, "gamma_2")?,
            norm_out: if cfg.t_norm_first && cfg.t_norm_out {
                Some(TokenGroupNorm {
                    w: ck.take(&format!("{prefix}.norm_out.weight"), &[c])?,
                    b: ck.take(&format!("{prefix}.norm_out.bias"), &[c])?,
                })
            } else {
                None
            },
            norm_first: cfg.t_norm_first,
            gelu: cfg.t_gelu,
            c,
        })
    }

    fn feed_forward(&self, x: &[f32], t: usize) -> Vec<f32> {
        let mut h = self.linear1.forward(x, t);
        if self.gelu {
            ops::gelu_inplace(&mut h);
        } else {
            h.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        self.linear2.forward(&h, t)
    }

    fn add_scaled(x: &mut [f32], y: &[f32], gamma: Option<&Vec<f32>>, c: usize) {
        ops::par_rows_mut(x, c, |first, rows| {
            let y = &y[first * c..];
            match gamma {
                Some(g) => {
                    for (xr, yr) in rows.chunks_exact_mut(c).zip(y.chunks_exact(c)) {
                        for i in 0..c {
                            xr[i] += g[i] * yr[i];
                        }
                    }
                }
                None => rows.iter_mut().zip(y).for_each(|(a, b)| *a += b),
            }
        });
    }

    /// `x` `[t, c]`; `other` `[to, c]` for cross-attention.
    fn forward(&self, x: &[f32], t: usize, other: Option<(&[f32], usize)>) -> Vec<f32> {
        let c = self.c;
        let attend = |q: &[f32], kv: Option<(&[f32], usize)>| match kv {
            Some((k, tk)) => self.attn.forward(q, t, k, tk),
            None => self.attn.forward(q, t, q, t),
        };
        if self.norm_first {
            let mut y = x.to_vec();
            let (ff_norm, a) = if self.cross {
                let (k, tk) = other.unwrap_or((x, t));
                let kn = self.norm2.apply(k);
                (
                    self.norm3.as_ref().unwrap_or(&self.norm2),
                    attend(&self.norm1.apply(x), Some((&kn, tk))),
                )
            } else {
                (&self.norm2, attend(&self.norm1.apply(x), None))
            };
            Self::add_scaled(&mut y, &a, self.gamma1.as_ref(), c);
            let f = self.feed_forward(&ff_norm.apply(&y), t);
            Self::add_scaled(&mut y, &f, self.gamma2.as_ref(), c);
            if let Some(n) = &self.norm_out {
                n.apply(&mut y);
            }
            y
        } else {
            let mut y = x.to_vec();
            let a = attend(x, if self.cross { other } else { None });
            Self::add_scaled(&mut y, &a, self.gamma1.as_ref(), c);
            let mut y = self.norm1.apply(&y);
            let f = self.feed_forward(&y, t);
            Self::add_scaled(&mut y, &f, self.gamma2.as_ref(), c);
            self.norm2.apply(&y)
        }
    }
}

/// `CrossTransformerEncoder`.
#[derive(Debug, Clone)]
pub struct CrossTransformer {
    pub(crate) norm_in: Option<(LayerNorm, LayerNorm)>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) layers_t: Vec<Layer>,
    pub(crate) classic_parity: usize,
    pub(crate) c: usize,
    pub(crate) max_period: f32,
    pub(crate) weight_pos: f32,
}

impl CrossTransformer {
    /// Loads `crosstransformer.*` for width `c`.
    pub fn load(ck: &mut Checkpoint, cfg: &Config, c: usize) -> Result<Self, DemucsError> {
        if !c.is_multiple_of(cfg.t_heads) || !c.is_multiple_of(4) {
            return Err(DemucsError::Weight {
                name: "crosstransformer".into(),
                detail: format!(
                    "width {c} must divide into {} heads and be a multiple of 4",
                    cfg.t_heads
                ),
            });
        }
        let classic_parity = usize::from(cfg.t_cross_first);
        let mut layers = Vec::new();
        let mut layers_t = Vec::new();
        for i in 0..cfg.t_layers {
            let cross = i % 2 != classic_parity;
            layers.push(Layer::load(
                ck,
                &format!("crosstransformer.layers.{i}"),
                cfg,
                c,
                cross,
            )?);
            layers_t.push(Layer::load(
                ck,
                &format!("crosstransformer.layers_t.{i}"),
                cfg,
                c,
                cross,
            )?);
        }
        let norm_in = if cfg.t_norm_in {
            Some((
                LayerNorm::load(ck, "crosstransformer.norm_in", c)?,
                LayerNorm::load(ck, "crosstransformer.norm_in_t", c)?,
            ))
        } else {
            None
        };
        Ok(Self {
            norm_in,
            layers,
            layers_t,
            classic_parity,
            c,
            max_period: cfg.t_max_period as f32,
            weight_pos: cfg.t_weight_pos_embed as f32,
        })
    }

    /// `x` is `[c, fr, t1]` (frequency branch), `xt` `[c, t2]` (time branch).
    /// Returns both, same shapes. `trace` receives each layer's token output.
    pub fn forward(
        &self,
        x: &[f32],
        fr: usize,
        t1: usize,
        xt: &[f32],
        t2: usize,
        trace: &mut dyn FnMut(&str, &[f32]),
    ) -> (Vec<f32>, Vec<f32>) {
        let c = self.c;
        let n1 = fr * t1;
        // Tokens in the reference's order: "b c fr t1 -> b (t1 fr) c".
        let mut a = vec![0.0; n1 * c];
        for ci in 0..c {
            for f in 0..fr {
                for t in 0..t1 {
                    a[(t * fr + f) * c + ci] = x[(ci * fr + f) * t1 + t];
                }
            }
        }
        let mut b = ops::transpose(xt, c, t2);
        if let Some((ni, nt)) = &self.norm_in {
            a = ni.apply(&a);
            b = nt.apply(&b);
        }
        let pos2 = sin_embedding_2d(c, fr, t1, self.max_period);
        for ci in 0..c {
            for f in 0..fr {
                for t in 0..t1 {
                    a[(t * fr + f) * c + ci] += self.weight_pos * pos2[(ci * fr + f) * t1 + t];
                }
            }
        }
        let pos1 = sin_embedding(t2, c, self.max_period);
        b.iter_mut()
            .zip(&pos1)
            .for_each(|(v, p)| *v += self.weight_pos * p);
        for (i, (la, lb)) in self.layers.iter().zip(&self.layers_t).enumerate() {
            // The two branches of a layer read only the previous layer's
            // tokens: they run side by side.
            (a, b) = if i % 2 == self.classic_parity {
                ops::join(|| la.forward(&a, n1, None), || lb.forward(&b, t2, None))
            } else {
                ops::join(
                    || la.forward(&a, n1, Some((&b, t2))),
                    || lb.forward(&b, t2, Some((&a, n1))),
                )
            };
            trace(&format!("crosstransformer.layers.{i}"), &a);
            trace(&format!("crosstransformer.layers_t.{i}"), &b);
        }
        let mut out = vec![0.0; c * n1];
        for ci in 0..c {
            for f in 0..fr {
                for t in 0..t1 {
                    out[(ci * fr + f) * t1 + t] = a[(t * fr + f) * c + ci];
                }
            }
        }
        (out, ops::transpose(&b, t2, c))
    }
}

/// `create_sin_embedding(length, dim)`: `[length, dim]`, cosines then sines,
/// computed in f32 as the reference does.
pub fn sin_embedding(length: usize, dim: usize, max_period: f32) -> Vec<f32> {
    let half = dim / 2;
    let mut out = vec![0.0; length * dim];
    for p in 0..length {
        for a in 0..half {
            let expo = a as f32 / (half as f32 - 1.0);
            let phase = p as f32 / max_period.powf(expo);
            out[p * dim + a] = phase.cos();
            out[p * dim + half + a] = phase.sin();
        }
    }
    out
}

/// `create_2d_sin_embedding(d_model, height, width)`: `[d_model, height, width]`.
pub fn sin_embedding_2d(d_model: usize, height: usize, width: usize, max_period: f32) -> Vec<f32> {
    let d = d_model / 2;
    let factor = -(f64::from(max_period).ln() / d as f64) as f32;
    let div: Vec<f32> = (0..d)
        .step_by(2)
        .map(|i| (i as f32 * factor).exp())
        .collect();
    let mut pe = vec![0.0; d_model * height * width];
    for (j, dv) in div.iter().enumerate() {
        for h in 0..height {
            for w in 0..width {
                let pw = w as f32 * dv;
                let ph = h as f32 * dv;
                pe[((2 * j) * height + h) * width + w] = pw.sin();
                pe[((2 * j + 1) * height + h) * width + w] = pw.cos();
                pe[((d + 2 * j) * height + h) * width + w] = ph.sin();
                pe[((d + 2 * j + 1) * height + h) * width + w] = ph.cos();
            }
        }
    }
    pe
}
