// Normalisations: one workgroup of 256 threads per group (GroupNorm) or row
// (LayerNorm), statistics in two passes (the mean, then the squared
// deviations from it), which keeps f32 close to the CPU engine's f64 sums.
struct Params {
    len: u32, channels: u32, per: u32, flags: u32,
    eps: f32, count: u32, _p1: u32, _p2: u32,
}
// GroupNorm: a workgroup normalises `len` floats (per channels of n each)
// starting at wid.x·len; channel of element i is (group·per + i / n).
// flags: 1 GELU after.

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

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let lid = lid3.x;
    let row = wid.y * 65535u + wid.x;
    if (row >= p.count) {
        return;
    }
    let base = row * p.len;
    var s = 0.0;
    for (var i = lid; i < p.len; i += 256u) {
        s += x[base + i];
    }
    let mean = reduce(lid, s) / f32(p.len);
    var q = 0.0;
    for (var i = lid; i < p.len; i += 256u) {
        let d = x[base + i] - mean;
        q += d * d;
    }
    let inv = inverseSqrt(reduce(lid, q) / f32(p.len) + p.eps);
    // LayerNorm (per = 0): the affine runs along the row. GroupNorm: the
    // group's `per` channels hold len / per floats each.
    for (var i = lid; i < p.len; i += 256u) {
        var ch: u32;
        if (p.per == 0u) {
            ch = i;
        } else {
            // Groups of one item repeat every `channels / per` groups.
            let groups = p.channels / p.per;
            ch = (row % groups) * p.per + i / (p.len / p.per);
        }
        var v = (x[base + i] - mean) * inv * weight[ch] + bias[ch];
        if ((p.flags & 1u) != 0u) {
            v = gelu(v);
        }
        x[base + i] = v;
    }
}
