// dst[d_off + a·ds0 + b·ds1 + c·ds2] (+)= src[s_off + a·ss0 + b·ss1 + c·ss2]
// for a < na, b < nb, c < nc: slices, pads, transposes and broadcasts (a
// zero stride) in one kernel. flags: 1 accumulate.
struct Params {
    n: u32, na: u32, nb: u32, nc: u32,
    s_off: u32, ss0: u32, ss1: u32, ss2: u32,
    d_off: u32, ds0: u32, ds1: u32, ds2: u32,
    flags: u32, _p0: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= p.n) {
        return;
    }
    let c = i % p.nc;
    let b = (i / p.nc) % p.nb;
    let a = i / (p.nc * p.nb);
    let v = src[p.s_off + a * p.ss0 + b * p.ss1 + c * p.ss2];
    let d = p.d_off + a * p.ds0 + b * p.ds1 + c * p.ds2;
    if ((p.flags & 1u) != 0u) {
        dst[d] = dst[d] + v;
    } else {
        dst[d] = v;
    }
}
