// Softmax of each row of `n` floats, in place: one workgroup per row, the
// maximum subtracted first.
struct Params {
    n: u32, rows: u32, _p0: u32, _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let lid = lid3.x;
    let row = wid.y * 65535u + wid.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.n;
    var m = -3.4e38;
    for (var i = lid; i < p.n; i += 256u) {
        m = max(m, x[base + i]);
    }
    partial[lid] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] = max(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    let mx = partial[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var i = lid; i < p.n; i += 256u) {
        let e = exp(x[base + i] - mx);
        x[base + i] = e;
        sum += e;
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / partial[0];
    for (var i = lid; i < p.n; i += 256u) {
        x[base + i] = x[base + i] * inv;
    }
}
