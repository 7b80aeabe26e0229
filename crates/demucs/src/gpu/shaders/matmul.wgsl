// C[b] (+)= A[b] · B[b] (+ bias), every operand through strides, so that
// transposes, column blocks and batches need no copies. 64×64 tiles of C per
// workgroup of 16×16 threads, each thread 4×4 outputs; K in steps of 16
// through workgroup memory. Thread (x, y) owns rows y + 16i and columns
// x + 16j, so neighbouring threads touch neighbouring addresses.
struct Params {
    m: u32, n: u32, k: u32, flags: u32,
    a_off: u32, a_rs: u32, a_cs: u32, a_bs: u32,
    b_off: u32, b_rs: u32, b_cs: u32, b_bs: u32,
    c_off: u32, c_rs: u32, c_cs: u32, c_bs: u32,
    bias_off: u32, _p0: u32, _p1: u32, _p2: u32,
}
// flags: 1 accumulate into C, 2 bias per row (m), 4 bias per column (n), 8 GELU last,
// 16 ReLU last.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Bs: array<f32, 1024>; // [BK][BN]

//INCLUDE gelu

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let a_base = p.a_off + wid.z * p.a_bs;
    let b_base = p.b_off + wid.z * p.b_bs;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * 256u;
            // A: k fastest when A is row-major, rows fastest when it is not.
            var r: u32;
            var kk: u32;
            if (p.a_cs == 1u) {
                r = e / BK;
                kk = e % BK;
            } else {
                r = e % BM;
                kk = e / BM;
            }
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if (gr < p.m && gk < p.k) {
                v = a[a_base + gr * p.a_rs + gk * p.a_cs];
            }
            As[kk * BM + r] = v;
        }
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * 256u;
            var kk: u32;
            var cc: u32;
            if (p.b_cs == 1u) {
                kk = e / BN;
                cc = e % BN;
            } else {
                kk = e % BK;
                cc = e / BK;
            }
            let gk = k0 + kk;
            let gc = col0 + cc;
            var v = 0.0;
            if (gk < p.k && gc < p.n) {
                v = b[b_base + gk * p.b_rs + gc * p.b_cs];
            }
            Bs[kk * BN + cc] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = As[kk * BM + lid.y + 16u * i];
                bv[i] = Bs[kk * BN + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    let c_base = p.c_off + wid.z * p.c_bs;
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + 16u * i;
        if (r >= p.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if (col >= p.n) {
                continue;
            }
            let idx = c_base + r * p.c_rs + col * p.c_cs;
            var v = acc[i * 4u + j];
            if ((p.flags & 2u) != 0u) {
                v += bias[p.bias_off + r];
            }
            if ((p.flags & 4u) != 0u) {
                v += bias[p.bias_off + col];
            }
            if ((p.flags & 1u) != 0u) {
                v += c[idx];
            }
            if ((p.flags & 8u) != 0u) {
                v = gelu(v);
            }
            if ((p.flags & 16u) != 0u) {
                v = max(v, 0.0);
            }
            c[idx] = v;
        }
    }
}
