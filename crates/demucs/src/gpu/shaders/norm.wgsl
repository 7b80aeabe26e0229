// Normalisations: one workgroup of 256 threads per normalised set of `len`
// floats, statistics in two passes (the mean, then the squared deviations
// from it), which keeps f32 close to the CPU engine's f64 sums.
//
// Set `row` starts at base = (row / item_rows)·item_stride + (row % item_rows)·row_stride;
// its element i is at base + (i / inner)·outer_stride + i % inner.
// Channel of element i (for the affine): with flag 2, i % channels (LayerNorm,
// the transformer's one-group norm over tokens); else
// (row % groups)·per + i / chan_div (GroupNorm; DConv's per-row norm).
// flags: 1 GELU after, 2 channel = i % channels.
struct Params {
    len: u32, inner: u32, outer_stride: u32, chan_div: u32,
    per: u32, groups: u32, channels: u32, flags: u32,
    item_rows: u32, item_stride: u32, row_stride: u32, count: u32,
    eps: f32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

var<workgroup> partial: array<f32, 256>;

//INCLUDE gelu

fn reduce(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

fn at(base: u32, i: u32) -> u32 {
    return base + (i / p.inner) * p.outer_stride + i % p.inner;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let lid = lid3.x;
    let row = wid.y * 65535u + wid.x;
    if (row >= p.count) {
        return;
    }
    let base = (row / p.item_rows) * p.item_stride + (row % p.item_rows) * p.row_stride;
    var s = 0.0;
    for (var i = lid; i < p.len; i += 256u) {
        s += x[at(base, i)];
    }
    let mean = reduce(lid, s) / f32(p.len);
    var q = 0.0;
    for (var i = lid; i < p.len; i += 256u) {
        let d = x[at(base, i)] - mean;
        q += d * d;
    }
    let inv = inverseSqrt(reduce(lid, q) / f32(p.len) + p.eps);
    for (var i = lid; i < p.len; i += 256u) {
        var ch: u32;
        if ((p.flags & 2u) != 0u) {
            ch = i % p.channels;
        } else {
            ch = (row % p.groups) * p.per + i / p.chan_div;
        }
        let a = at(base, i);
        var v = (x[a] - mean) * inv * weight[ch] + bias[ch];
        if ((p.flags & 1u) != 0u) {
            v = gelu(v);
        }
        x[a] = v;
    }
}
