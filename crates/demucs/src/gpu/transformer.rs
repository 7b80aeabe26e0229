//! The cross-domain transformer on the GPU, built from the CPU engine's
//! ([`crate::transformer`]) weights and run step for step as it runs.

use super::{Copy3, Epilogue, Gpu, GpuTensor, MatView};
use crate::transformer::{
    sin_embedding, sin_embedding_2d, Attention, CrossTransformer, Layer, LayerNorm, Linear,
};
use crate::DemucsError;

/// The most floats one batch of attention scores takes (256 MB): heads are
/// taken a few at a time, and queries in blocks when one head needs more.
const SCORES_MAX: usize = 64 << 20;

struct GLinear {
    /// `[dout, din]`.
    w: GpuTensor,
    b: GpuTensor,
    din: usize,
    dout: usize,
}

impl GLinear {
    fn new(gpu: &Gpu, l: &Linear) -> Result<Self, DemucsError> {
        Ok(Self {
            w: gpu.upload(&l.w.f32())?,
            b: gpu.upload(&l.b)?,
            din: l.din,
            dout: l.dout,
        })
    }

    /// `x` `[t, din]` → `[t, dout]`, then `act` (GELU or ReLU, if any).
    fn forward(
        &self,
        gpu: &Gpu,
        x: &GpuTensor,
        t: usize,
        act: Option<bool>,
    ) -> Result<GpuTensor, DemucsError> {
        let y = gpu.zeros(t * self.dout)?;
        gpu.matmul(
            MatView::rows(&y, t, self.dout),
            MatView::rows(x, t, self.din),
            MatView::rows(&self.w, self.dout, self.din).t(),
            (t, self.dout, self.din),
            1,
            Epilogue {
                bias_cols: Some(&self.b),
                gelu: act == Some(true),
                relu: act == Some(false),
                ..Epilogue::default()
            },
        )?;
        Ok(y)
    }
}

struct GLayerNorm {
    w: GpuTensor,
    b: GpuTensor,
    c: usize,
}

impl GLayerNorm {
    fn new(gpu: &Gpu, n: &LayerNorm) -> Result<Self, DemucsError> {
        Ok(Self {
            w: gpu.upload(&n.w)?,
            b: gpu.upload(&n.b)?,
            c: n.w.len(),
        })
    }

    /// The normalised copy of `x`.
    fn apply(&self, gpu: &Gpu, x: &GpuTensor) -> Result<GpuTensor, DemucsError> {
        let y = gpu.duplicate(x)?;
        gpu.layer_norm(&y, self.c, (&self.w, &self.b), 1e-5, false)?;
        Ok(y)
    }
}

struct GAttention {
    /// The packed input projections, split: `[c, c]` each, and their biases.
    w: [GpuTensor; 3],
    b: [GpuTensor; 3],
    out: GLinear,
    c: usize,
    heads: usize,
    /// `[1 / √d]`, for the scale kernel.
    scale: GpuTensor,
}

impl GAttention {
    fn new(gpu: &Gpu, a: &Attention) -> Result<Self, DemucsError> {
        let c = a.c;
        let part = |i: usize| gpu.upload(&a.in_w.f32_range(i * c * c..(i + 1) * c * c));
        let bias = |i: usize| gpu.upload(&a.in_b[i * c..(i + 1) * c]);
        Ok(Self {
            w: [part(0)?, part(1)?, part(2)?],
            b: [bias(0)?, bias(1)?, bias(2)?],
            out: GLinear::new(gpu, &a.out)?,
            c,
            heads: a.heads,
            scale: gpu.upload(&[1.0 / ((c / a.heads) as f32).sqrt()])?,
        })
    }

    fn project(
        &self,
        gpu: &Gpu,
        x: &GpuTensor,
        t: usize,
        i: usize,
    ) -> Result<GpuTensor, DemucsError> {
        let c = self.c;
        let y = gpu.zeros(t * c)?;
        gpu.matmul(
            MatView::rows(&y, t, c),
            MatView::rows(x, t, c),
            MatView::rows(&self.w[i], c, c).t(),
            (t, c, c),
            1,
            Epilogue {
                bias_cols: Some(&self.b[i]),
                ..Epilogue::default()
            },
        )?;
        Ok(y)
    }

    /// Queries `[tq, c]` attend to keys/values `[tk, c]`.
    fn forward(
        &self,
        gpu: &Gpu,
        q_in: &GpuTensor,
        tq: usize,
        kv_in: &GpuTensor,
        tk: usize,
    ) -> Result<GpuTensor, DemucsError> {
        let (c, h) = (self.c, self.heads);
        let d = c / h;
        let q = self.project(gpu, q_in, tq, 0)?;
        let k = self.project(gpu, kv_in, tk, 1)?;
        let v = self.project(gpu, kv_in, tk, 2)?;
        gpu.scale(&q, &self.scale, 1, 1)?;
        let ctx = gpu.zeros(tq * c)?;
        // Queries per block and heads per batch so that the scores stay
        // within SCORES_MAX.
        let qb = (SCORES_MAX / tk.max(1)).clamp(1, tq.max(1));
        let hb = (SCORES_MAX / (qb * tk).max(1)).clamp(1, h);
        let scores = gpu.zeros(hb * qb * tk)?;
        for h0 in (0..h).step_by(hb) {
            let nh = hb.min(h - h0);
            for q0 in (0..tq).step_by(qb) {
                let nq = qb.min(tq - q0);
                // S[head] = Q_head · K_headᵀ: heads side by side in the
                // columns of Q and K (batch stride d).
                gpu.matmul(
                    MatView {
                        t: &scores,
                        off: 0,
                        rs: tk,
                        cs: 1,
                        bs: nq * tk,
                    },
                    MatView {
                        t: &q,
                        off: q0 * c + h0 * d,
                        rs: c,
                        cs: 1,
                        bs: d,
                    },
                    MatView {
                        t: &k,
                        off: h0 * d,
                        rs: 1,
                        cs: c,
                        bs: d,
                    },
                    (nq, tk, d),
                    nh,
                    Epilogue::default(),
                )?;
                gpu.softmax_rows_n(&scores, tk, nh * nq)?;
                gpu.matmul(
                    MatView {
                        t: &ctx,
                        off: q0 * c + h0 * d,
                        rs: c,
                        cs: 1,
                        bs: d,
                    },
                    MatView {
                        t: &scores,
                        off: 0,
                        rs: tk,
                        cs: 1,
                        bs: nq * tk,
                    },
                    MatView {
                        t: &v,
                        off: h0 * d,
                        rs: c,
                        cs: 1,
                        bs: d,
                    },
                    (nq, d, tk),
                    nh,
                    Epilogue::default(),
                )?;
            }
        }
        self.out.forward(gpu, &ctx, tq, None)
    }
}

struct GLayer {
    cross: bool,
    attn: GAttention,
    norm1: GLayerNorm,
    norm2: GLayerNorm,
    norm3: Option<GLayerNorm>,
    linear1: GLinear,
    linear2: GLinear,
    gamma1: Option<GpuTensor>,
    gamma2: Option<GpuTensor>,
    norm_out: Option<GLayerNorm>,
    norm_first: bool,
    gelu: bool,
    c: usize,
}

impl GLayer {
    fn new(gpu: &Gpu, l: &Layer) -> Result<Self, DemucsError> {
        let up = |v: &Option<Vec<f32>>| v.as_ref().map(|v| gpu.upload(v)).transpose();
        Ok(Self {
            cross: l.cross,
            attn: GAttention::new(gpu, &l.attn)?,
            norm1: GLayerNorm::new(gpu, &l.norm1)?,
            norm2: GLayerNorm::new(gpu, &l.norm2)?,
            norm3: l
                .norm3
                .as_ref()
                .map(|n| GLayerNorm::new(gpu, n))
                .transpose()?,
            linear1: GLinear::new(gpu, &l.linear1)?,
            linear2: GLinear::new(gpu, &l.linear2)?,
            gamma1: up(&l.gamma1)?,
            gamma2: up(&l.gamma2)?,
            norm_out: l
                .norm_out
                .as_ref()
                .map(|n| -> Result<GLayerNorm, DemucsError> {
                    Ok(GLayerNorm {
                        w: gpu.upload(&n.w)?,
                        b: gpu.upload(&n.b)?,
                        c: n.w.len(),
                    })
                })
                .transpose()?,
            norm_first: l.norm_first,
            gelu: l.gelu,
            c: l.c,
        })
    }

    fn feed_forward(&self, gpu: &Gpu, x: &GpuTensor, t: usize) -> Result<GpuTensor, DemucsError> {
        let h = self.linear1.forward(gpu, x, t, Some(self.gelu))?;
        self.linear2.forward(gpu, &h, t, None)
    }

    /// `x += gamma · y` (per channel of `[t, c]` tokens).
    fn add_scaled(
        &self,
        gpu: &Gpu,
        x: &GpuTensor,
        y: &GpuTensor,
        gamma: Option<&GpuTensor>,
    ) -> Result<(), DemucsError> {
        if let Some(g) = gamma {
            gpu.scale(y, g, self.c, 1)?;
        }
        gpu.add(x, y)
    }

    /// `x` `[t, c]`; `other` `[to, c]` for cross-attention.
    fn forward(
        &self,
        gpu: &Gpu,
        x: &GpuTensor,
        t: usize,
        other: Option<(&GpuTensor, usize)>,
    ) -> Result<GpuTensor, DemucsError> {
        if self.norm_first {
            let y = gpu.duplicate(x)?;
            let xn = self.norm1.apply(gpu, x)?;
            let (ff_norm, a) = if self.cross {
                let (k, tk) = other.unwrap_or((x, t));
                let kn = self.norm2.apply(gpu, k)?;
                (
                    self.norm3.as_ref().unwrap_or(&self.norm2),
                    self.attn.forward(gpu, &xn, t, &kn, tk)?,
                )
            } else {
                (&self.norm2, self.attn.forward(gpu, &xn, t, &xn, t)?)
            };
            self.add_scaled(gpu, &y, &a, self.gamma1.as_ref())?;
            let f = self.feed_forward(gpu, &ff_norm.apply(gpu, &y)?, t)?;
            self.add_scaled(gpu, &y, &f, self.gamma2.as_ref())?;
            if let Some(n) = &self.norm_out {
                gpu.layer_norm(&y, n.c, (&n.w, &n.b), 1e-5, true)?;
            }
            Ok(y)
        } else {
            let y = gpu.duplicate(x)?;
            let a = match (self.cross, other) {
                (true, Some((k, tk))) => self.attn.forward(gpu, x, t, k, tk)?,
                _ => self.attn.forward(gpu, x, t, x, t)?,
            };
            self.add_scaled(gpu, &y, &a, self.gamma1.as_ref())?;
            let y = self.norm1.apply(gpu, &y)?;
            let f = self.feed_forward(gpu, &y, t)?;
            self.add_scaled(gpu, &y, &f, self.gamma2.as_ref())?;
            self.norm2.apply(gpu, &y)
        }
    }
}

/// [`CrossTransformer`] on the device.
pub struct GCrossTransformer {
    norm_in: Option<(GLayerNorm, GLayerNorm)>,
    layers: Vec<GLayer>,
    layers_t: Vec<GLayer>,
    classic_parity: usize,
    c: usize,
    max_period: f32,
    weight_pos: f32,
}

impl GCrossTransformer {
    /// Uploads the transformer's weights.
    pub fn new(gpu: &Gpu, x: &CrossTransformer) -> Result<Self, DemucsError> {
        Ok(Self {
            norm_in: x
                .norm_in
                .as_ref()
                .map(|(a, b)| -> Result<_, DemucsError> {
                    Ok((GLayerNorm::new(gpu, a)?, GLayerNorm::new(gpu, b)?))
                })
                .transpose()?,
            layers: x
                .layers
                .iter()
                .map(|l| GLayer::new(gpu, l))
                .collect::<Result<_, _>>()?,
            layers_t: x
                .layers_t
                .iter()
                .map(|l| GLayer::new(gpu, l))
                .collect::<Result<_, _>>()?,
            classic_parity: x.classic_parity,
            c: x.c,
            max_period: x.max_period,
            weight_pos: x.weight_pos,
        })
    }

    /// As [`CrossTransformer::forward`]: `x` `[c, fr, t1]`, `xt` `[c, t2]`,
    /// both returned in the same shapes.
    pub fn forward(
        &self,
        gpu: &Gpu,
        x: &GpuTensor,
        (fr, t1): (usize, usize),
        xt: &GpuTensor,
        t2: usize,
    ) -> Result<(GpuTensor, GpuTensor), DemucsError> {
        let c = self.c;
        let n1 = fr * t1;
        // Tokens in the reference's order: "b c fr t1 -> b (t1 fr) c".
        let to_tokens = Copy3 {
            shape: [c, fr, t1],
            src: (0, [fr * t1, t1, 1]),
            dst: (0, [1, c, fr * c]),
            accumulate: false,
        };
        let mut a = gpu.zeros(n1 * c)?;
        gpu.copy3(x, &a, &to_tokens)?;
        let mut b = gpu.zeros(t2 * c)?;
        let time_to_tokens = Copy3 {
            shape: [1, c, t2],
            src: (0, [0, t2, 1]),
            dst: (0, [0, 1, c]),
            accumulate: false,
        };
        gpu.copy3(xt, &b, &time_to_tokens)?;
        if let Some((ni, nt)) = &self.norm_in {
            a = ni.apply(gpu, &a)?;
            b = nt.apply(gpu, &b)?;
        }
        // The positional embeddings, made on the host (as the CPU engine
        // does, in f32) and added in token order.
        let w = self.weight_pos;
        let pos2: Vec<f32> = sin_embedding_2d(c, fr, t1, self.max_period)
            .iter()
            .map(|v| w * v)
            .collect();
        let pos2 = gpu.upload(&pos2)?;
        gpu.copy3(
            &pos2,
            &a,
            &Copy3 {
                accumulate: true,
                ..to_tokens
            },
        )?;
        let pos1: Vec<f32> = sin_embedding(t2, c, self.max_period)
            .iter()
            .map(|v| w * v)
            .collect();
        gpu.add(&b, &gpu.upload(&pos1)?)?;
        for (i, (la, lb)) in self.layers.iter().zip(&self.layers_t).enumerate() {
            (a, b) = if i % 2 == self.classic_parity {
                (
                    la.forward(gpu, &a, n1, None)?,
                    lb.forward(gpu, &b, t2, None)?,
                )
            } else {
                (
                    la.forward(gpu, &a, n1, Some((&b, t2)))?,
                    lb.forward(gpu, &b, t2, Some((&a, n1)))?,
                )
            };
        }
        let out = gpu.zeros(c * n1)?;
        gpu.copy3(
            &a,
            &out,
            &Copy3 {
                shape: [c, fr, t1],
                src: (0, [1, c, fr * c]),
                dst: (0, [fr * t1, t1, 1]),
                accumulate: false,
            },
        )?;
        let out_t = gpu.zeros(c * t2)?;
        gpu.copy3(
            &b,
            &out_t,
            &Copy3 {
                shape: [1, c, t2],
                src: (0, [0, 1, c]),
                dst: (0, [0, t2, 1]),
                accumulate: false,
            },
        )?;
        Ok((out, out_t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::testing::{fixture, gpu, noise, rel};

    #[test]
    fn the_cross_transformer_matches_the_cpu_engine() -> Result<(), DemucsError> {
        let gpu = gpu();
        for name in ["small4.safetensors", "small6.safetensors"] {
            let sep = fixture(name);
            let Some(cpu) = &sep.models()[0].transformer else {
                panic!("{name} has no transformer");
            };
            assert!(
                cpu.layers.iter().any(|l| l.cross) && cpu.layers.iter().any(|l| !l.cross),
                "{name}: self- and cross-attention layers both tested"
            );
            let (c, fr, t1, t2) = (cpu.c, 4, 9, 13);
            let x = noise(c * fr * t1, 1);
            let xt = noise(c * t2, 2);
            let (want, want_t) = cpu.forward(&x, fr, t1, &xt, t2, &mut |_, _| {});
            let g = GCrossTransformer::new(&gpu, cpu)?;
            let (got, got_t) =
                g.forward(&gpu, &gpu.upload(&x)?, (fr, t1), &gpu.upload(&xt)?, t2)?;
            let e = rel(&gpu.read(&got)?, &want);
            assert!(e < 1e-5, "{name} frequency tokens: {e:e}");
            let e = rel(&gpu.read(&got_t)?, &want_t);
            assert!(e < 1e-5, "{name} time tokens: {e:e}");
        }
        Ok(())
    }
}
