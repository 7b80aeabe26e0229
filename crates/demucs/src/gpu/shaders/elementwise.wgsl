// Element-wise kernels over n floats, 256 per workgroup, the workgroups laid
// out in x then y (a dimension holds at most 65535).
struct Params {
    n: u32, c: u32, len: u32, flags: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

//INCLUDE gelu

fn index(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

#if gelu
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(lid, wid, nwg);
    if (i < p.n) {
        x[i] = gelu(x[i]);
    }
}
#endif

#if add
// x += y
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(lid, wid, nwg);
    if (i < p.n) {
        x[i] = x[i] + y[i];
    }
}
#endif

#if glu
// x = [batch][2c, len] → out = [batch][c, len]: a · sigmoid(b), a the first
// half of each item, b the second. n = batch · c · len.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(lid, wid, nwg);
    if (i < p.n) {
        let half = p.c * p.len;
        let item = i / half;
        let at = item * 2u * half + i % half;
        out[i] = x[at] / (1.0 + exp(-x[at + half]));
    }
}
#endif

#if scale
// x[i] ·= s[(i / len) % c]: LayerScale over channel rows (len = the row's
// length) or over tokens (len = 1, c = the token's width); then · flags' float.
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(lid, wid, nwg);
    if (i < p.n) {
        x[i] = x[i] * s[(i / p.len) % p.c];
    }
}
#endif
