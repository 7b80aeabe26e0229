//! Which instruction set the engine's kernels use, chosen at run time.
//!
//! One portable binary (no `target-cpu=native`) carries every kernel; the widest
//! one the CPU supports is picked when the first kernel runs. `SONANTICA_SIMD`
//! (`avx512`, `avx2` or `portable`) lowers the choice, so that both x86-64 paths
//! can be measured and tested on one AVX-512 machine. A request above what the
//! CPU has is lowered to what it has.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level of the kernels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Plain Rust (what the compiler makes of it for the build target); matrix
    /// products go to the `gemm` crate.
    Portable,
    /// x86-64 with AVX2 and FMA: 8-lane kernels.
    Avx2,
    /// x86-64 with AVX-512F (and AVX2/FMA): 16-lane kernels.
    Avx512,
}

impl Simd {
    /// The name `SONANTICA_SIMD` takes and reports print.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }

    /// Parses a `SONANTICA_SIMD` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" | "none" | "scalar" => Some(Simd::Portable),
            "avx2" => Some(Simd::Avx2),
            "avx512" | "avx-512" | "avx512f" => Some(Simd::Avx512),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            3 => Simd::Avx512,
            2 => Simd::Avx2,
            _ => Simd::Portable,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Simd::Portable => 1,
            Simd::Avx2 => 2,
            Simd::Avx512 => 3,
        }
    }
}

/// The widest level this CPU supports.
pub fn detected() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if avx2 && std::arch::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if avx2 {
            return Simd::Avx2;
        }
    }
    Simd::Portable
}

/// 0: not chosen yet.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The level the kernels use: [`detected`], lowered by `SONANTICA_SIMD` or
/// [`set_level`].
pub fn level() -> Simd {
    match LEVEL.load(Ordering::Relaxed) {
        0 => {
            let wanted = std::env::var("SONANTICA_SIMD")
                .ok()
                .and_then(|v| Simd::parse(&v));
            let chosen = wanted.map_or(detected(), |w| w.min(detected()));
            LEVEL.store(chosen.to_u8(), Ordering::Relaxed);
            chosen
        }
        v => Simd::from_u8(v),
    }
}

/// Uses `wanted` (or the best the CPU has below it) from now on, for the whole
/// process; returns the level in force.
pub fn set_level(wanted: Simd) -> Simd {
    let chosen = wanted.min(detected());
    LEVEL.store(chosen.to_u8(), Ordering::Relaxed);
    chosen
}

/// Runs `$body` (an expression that calls `#[inline(always)]` code) compiled for
/// the current [`level`]: the same arithmetic in 16-, 8- or the build target's
/// lanes. The widened copies are what let LLVM vectorise element-wise loops
/// with the wider registers without a second source.
macro_rules! dispatch {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $crate::simd::dispatch! { fn $name($($arg: $ty),*) -> () $body }
    };
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn wide512($($arg: $ty),*) -> $ret $body
                #[target_feature(enable = "avx2,fma")]
                fn wide256($($arg: $ty),*) -> $ret $body
                match $crate::simd::level() {
                    // SAFETY: level() is never above what the CPU supports (it
                    // is `detected()` or lower), and that is all these
                    // target_feature functions require.
                    #[allow(unsafe_code)]
                    $crate::simd::Simd::Avx512 => return unsafe { wide512($($arg),*) },
                    #[allow(unsafe_code)]
                    $crate::simd::Simd::Avx2 => return unsafe { wide256($($arg),*) },
                    $crate::simd::Simd::Portable => {}
                }
            }
            #[allow(unreachable_code)]
            $body
        }
    };
}
pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Simd::parse("AVX2"), Some(Simd::Avx2));
        assert_eq!(Simd::parse("avx512"), Some(Simd::Avx512));
        assert_eq!(Simd::parse("portable"), Some(Simd::Portable));
        assert_eq!(Simd::parse("sse9"), None);
        assert!(Simd::Portable < Simd::Avx2 && Simd::Avx2 < Simd::Avx512);
        for s in [Simd::Portable, Simd::Avx2, Simd::Avx512] {
            assert_eq!(Simd::parse(s.name()), Some(s));
        }
    }
}
