// The gathers around the convolutions' matrix products. One thread per output
// float, workgroups of 256 laid out in x then y.

fn index(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

#if im2col
// Columns p0 .. p0+nb of the unfolded input of a 2-D convolution:
// cols[(ci, ki, kj), o] = x[ci, oy·sh + ki·dh - ph, ox·sw + kj·dw - pw] (zero
// outside), o = oy·ow + ox, for x = [cin, h, w]. A 1-D convolution is h = 1.
struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    kh: u32, kw: u32, sh: u32, sw: u32,
    ph: u32, pw: u32, dh: u32, dw: u32,
    oh: u32, ow: u32, p0: u32, nb: u32,
    x_off: u32, _p0: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(lid, wid, nwg);
    if (i >= p.n) {
        return;
    }
    let r = i / p.nb;
    let o = p.p0 + i % p.nb;
    let kj = r % p.kw;
    let ki = (r / p.kw) % p.kh;
    let ci = r / (p.kw * p.kh);
    let iy = i32((o / p.ow) * p.sh + ki * p.dh) - i32(p.ph);
    let ix = i32((o % p.ow) * p.sw + kj * p.dw) - i32(p.pw);
    var v = 0.0;
    if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
        v = x[p.x_off + (ci * p.h + u32(iy)) * p.w + u32(ix)];
    }
    cols[i] = v;
}
#endif

#if col2im
// The transposed convolution's overlap-add, as a gather (no atomics):
// out[co, oy, ox] = bias[co] + Σ cols[(co, ki, kj), (y, x)] over the taps with
// y·sh + ki = oy and x·sw + kj = ox, for an input of [h, w] positions.
struct Params {
    n: u32, kh: u32, kw: u32, sh: u32,
    sw: u32, h: u32, w: u32, oh: u32,
    ow: u32, _p0: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(lid, wid, nwg);
    if (i >= p.n) {
        return;
    }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let co = i / (p.ow * p.oh);
    let hw = p.h * p.w;
    var s = 0.0;
    for (var ki = oy % p.sh; ki < p.kh; ki += p.sh) {
        if (ki > oy) {
            break;
        }
        let y = (oy - ki) / p.sh;
        if (y >= p.h) {
            continue;
        }
        for (var kj = ox % p.sw; kj < p.kw; kj += p.sw) {
            if (kj > ox) {
                break;
            }
            let xx = (ox - kj) / p.sw;
            if (xx >= p.w) {
                continue;
            }
            s += cols[((co * p.kh + ki) * p.kw + kj) * hw + y * p.w + xx];
        }
    }
    out[i] = s + bias[co];
}
#endif
