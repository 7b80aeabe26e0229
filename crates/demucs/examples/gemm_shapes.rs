//! Times the engine's matrix products on the shapes HTDemucs uses, single-threaded, at
//! every instruction-set level (`cargo run --release -p sonantica-demucs --example
//! gemm_shapes`; levels the CPU lacks are lowered to what it has).
use sonantica_demucs::ops::{self, Layout};
use sonantica_demucs::simd::{self, Simd};
use std::time::Instant;

fn main() {
    let shapes = [
        (336, 4096, 192, Layout::Normal, Layout::Normal),
        (336, 512, 192, Layout::Normal, Layout::Normal),
        (64, 2688, 64, Layout::Normal, Layout::Transposed),
        (64, 64, 2688, Layout::Normal, Layout::Normal),
        (2688, 2048, 512, Layout::Normal, Layout::Transposed),
        (2688, 512, 2048, Layout::Normal, Layout::Transposed),
        (2688, 512, 512, Layout::Normal, Layout::Transposed),
        (768, 2688, 3456, Layout::Normal, Layout::Normal),
        (96, 8192, 432, Layout::Normal, Layout::Normal),
        (192, 8192, 864, Layout::Normal, Layout::Normal),
        (384, 8064, 96, Layout::Normal, Layout::Normal),
        (6, 8064, 144, Layout::Normal, Layout::Normal),
    ];
    for &(m, n, k, la, lb) in &shapes {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut c = vec![0.0; m * n];
        let mut line = format!("{m}x{n}x{k}:");
        for lv in [Simd::Avx512, Simd::Avx2, Simd::Portable] {
            simd::set_level(lv);
            let reps = (2e9 / (2.0 * (m * n * k) as f64)).max(1.0) as usize;
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..reps {
                    ops::single_threaded(|| ops::matmul(&mut c, &a, la, &b, lb, m, n, k, false));
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            line += &format!(
                " {} {:.0} GF/s",
                lv.name(),
                2.0 * (m * n * k) as f64 / best / 1e9
            );
        }
        println!("{line}");
    }
}
