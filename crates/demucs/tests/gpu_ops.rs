//! The GPU kernels against the CPU engine (the oracle), on whatever adapter the
//! machine has: in CI that is Mesa's lavapipe, which `scripts/test` installs.
//! No test here is skipped for want of a GPU: without one they fail, saying
//! what to install.

use std::sync::OnceLock;

use anyhow::Result;

use sonantica_demucs::gpu::{Epilogue, Gpu, MatView};
use sonantica_demucs::ops;
use sonantica_testkit::signal::noise;

fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::open(true) {
        Ok(g) => {
            eprintln!("GPU: {}", g.adapter());
            g
        }
        Err(e) => panic!("{e}"),
    })
}

/// The largest difference relative to the reference's largest magnitude.
fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
    let worst = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max(f64::from((g - w).abs())));
    worst / scale.max(1e-30)
}

/// `C = A·B` the slow way in f64, A `[m,k]` and B `[k,n]` given by element functions.
fn reference_product(
    m: usize,
    n: usize,
    k: usize,
    a: impl Fn(usize, usize) -> f32,
    b: impl Fn(usize, usize) -> f32,
) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for r in 0..m {
        for col in 0..n {
            let s: f64 = (0..k)
                .map(|i| f64::from(a(r, i)) * f64::from(b(i, col)))
                .sum();
            c[r * n + col] = s as f32;
        }
    }
    c
}

#[test]
fn matmul_matches_the_cpu_for_odd_shapes_transposes_batches_and_epilogues() -> Result<()> {
    let g = gpu();
    let (m, n, k, batch) = (70, 131, 37, 3);
    let a_host = noise(batch * m * k, 1.0, 1);
    let b_host = noise(batch * k * n, 1.0, 2);
    let a = g.upload(&a_host)?;
    let b = g.upload(&b_host)?;
    let c = g.zeros(batch * m * n)?;
    g.matmul(
        MatView::rows(&c, m, n),
        MatView::rows(&a, m, k),
        MatView::rows(&b, k, n),
        (m, n, k),
        batch,
        Epilogue::default(),
    )?;
    let got = g.read(&c)?;
    for item in 0..batch {
        let want = reference_product(
            m,
            n,
            k,
            |r, i| a_host[item * m * k + r * k + i],
            |i, col| b_host[item * k * n + i * n + col],
        );
        let e = rel_err(&got[item * m * n..(item + 1) * m * n], &want);
        assert!(e < 1e-6, "item {item}: relative error {e:e}");
    }

    // Transposed operands (A stored [k, m], B stored [n, k]) into a column
    // block of a wider C, with a per-row bias, then accumulated, then GELU.
    let at = g.upload(&a_host[..m * k])?;
    let bt = g.upload(&b_host[..k * n])?;
    let wide = 2 * n + 5;
    let c_host = noise(m * wide, 1.0, 3);
    let c = g.upload(&c_host)?;
    let bias_host = noise(m, 1.0, 4);
    let bias = g.upload(&bias_host)?;
    g.matmul(
        MatView::rows(&c, m, wide).offset(n),
        MatView::rows(&at, k, m).t(),
        MatView::rows(&bt, n, k).t(),
        (m, n, k),
        1,
        Epilogue {
            accumulate: true,
            bias_rows: Some(&bias),
            gelu: true,
            ..Epilogue::default()
        },
    )?;
    let got = g.read(&c)?;
    let product = reference_product(
        m,
        n,
        k,
        |r, i| a_host[i * m + r],
        |i, col| b_host[col * k + i],
    );
    let mut want = c_host.clone();
    for r in 0..m {
        for col in 0..n {
            let v = product[r * n + col] + bias_host[r] + c_host[r * wide + n + col];
            want[r * wide + n + col] = ops::gelu(v);
        }
    }
    let e = rel_err(&got, &want);
    assert!(
        e < 2e-6,
        "transposed, accumulated, GELU: relative error {e:e}"
    );
    assert_eq!(
        &got[..n],
        &c_host[..n],
        "columns outside the block are untouched"
    );

    // A linear layer: tokens in rows, a bias per column.
    let bias_n = noise(n, 1.0, 5);
    let bn = g.upload(&bias_n)?;
    let c = g.zeros(m * n)?;
    g.matmul(
        MatView::rows(&c, m, n),
        MatView::rows(&a, m, k),
        MatView::rows(&b, k, n),
        (m, n, k),
        1,
        Epilogue {
            bias_cols: Some(&bn),
            ..Epilogue::default()
        },
    )?;
    let got = g.read(&c)?;
    let mut want = reference_product(
        m,
        n,
        k,
        |r, i| a_host[r * k + i],
        |i, col| b_host[i * n + col],
    );
    for r in 0..m {
        for col in 0..n {
            want[r * n + col] += bias_n[col];
        }
    }
    let e = rel_err(&got, &want);
    assert!(e < 1e-6, "bias per column: relative error {e:e}");
    Ok(())
}

#[test]
fn gelu_glu_and_add_match_the_cpu() -> Result<()> {
    let g = gpu();
    // More than 65535 workgroups' worth would need the y dimension: 17M floats.
    let x_host: Vec<f32> = noise(300_001, 4.0, 6);
    let x = g.upload(&x_host)?;
    g.gelu(&x)?;
    let want: Vec<f32> = x_host.iter().map(|v| ops::gelu(*v)).collect();
    let e = rel_err(&g.read(&x)?, &want);
    assert!(e < 1e-6, "GELU: {e:e}");

    let (batch, c, n) = (2, 6, 1001);
    let host = noise(batch * 2 * c * n, 3.0, 7);
    let x = g.upload(&host)?;
    let out = g.glu(&x, batch, c, n)?;
    let mut want = Vec::new();
    for item in host.chunks_exact(2 * c * n) {
        let mut v = item.to_vec();
        ops::glu_inplace(&mut v, c, n);
        want.extend(v);
    }
    let e = rel_err(&g.read(&out)?, &want);
    assert!(e < 1e-6, "GLU: {e:e}");

    let y_host = noise(x_host.len(), 1.0, 8);
    let x = g.upload(&x_host)?;
    let y = g.upload(&y_host)?;
    g.add(&x, &y)?;
    let want: Vec<f32> = x_host.iter().zip(&y_host).map(|(a, b)| a + b).collect();
    assert_eq!(g.read(&x)?, want, "addition is exact");
    assert!(g.add(&x, &g.zeros(3)?).is_err(), "lengths must agree");
    Ok(())
}

#[test]
fn group_norm_and_layer_norm_match_the_cpu() -> Result<()> {
    let g = gpu();
    let (batch, c, n, groups) = (3, 8, 2_345, 4);
    // An offset makes the mean matter, as in real activations.
    let host: Vec<f32> = noise(batch * c * n, 2.0, 9)
        .iter()
        .map(|v| v + 3.0)
        .collect();
    let w_host = noise(c, 1.0, 10);
    let b_host = noise(c, 1.0, 11);
    let (w, b) = (g.upload(&w_host)?, g.upload(&b_host)?);
    for gelu in [false, true] {
        let x = g.upload(&host)?;
        g.group_norm(&x, (batch, c, n), groups, &w, &b, 1e-5, gelu)?;
        let mut want = host.clone();
        for item in want.chunks_exact_mut(c * n) {
            ops::group_norm(item, c, n, groups, &w_host, &b_host, 1e-5);
            if gelu {
                ops::gelu_inplace(item);
            }
        }
        let e = rel_err(&g.read(&x)?, &want);
        assert!(e < 2e-6, "GroupNorm (GELU {gelu}): {e:e}");
    }

    let (rows, d) = (77, 512);
    let host: Vec<f32> = noise(rows * d, 2.0, 12).iter().map(|v| v - 1.5).collect();
    let w_host = noise(d, 1.0, 13);
    let b_host = noise(d, 1.0, 14);
    let x = g.upload(&host)?;
    g.layer_norm(
        &x,
        d,
        (&g.upload(&w_host)?, &g.upload(&b_host)?),
        1e-5,
        false,
    )?;
    let mut want = host;
    ops::layer_norm(&mut want, d, &w_host, &b_host, 1e-5);
    let e = rel_err(&g.read(&x)?, &want);
    assert!(e < 2e-6, "LayerNorm: {e:e}");
    Ok(())
}

#[test]
fn a_tensor_beyond_the_adapters_limits_is_an_error_not_a_crash() -> Result<()> {
    let g = gpu();
    let err = g
        .zeros(g.max_floats() + 1)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("larger than"), "{err}");
    // The device still works afterwards.
    let x = g.upload(&[1.0, -2.0])?;
    g.add(&x, &g.upload(&[0.5, 0.5])?)?;
    assert_eq!(g.read(&x)?, vec![1.5, -1.5]);
    Ok(())
}

#[test]
fn device_choices_parse_and_name_the_alternatives() -> Result<()> {
    use sonantica_demucs::gpu::DeviceChoice;
    assert_eq!("GPU".parse::<DeviceChoice>()?, DeviceChoice::Gpu);
    assert_eq!(" auto ".parse::<DeviceChoice>()?, DeviceChoice::Auto);
    assert_eq!("cpu".parse::<DeviceChoice>()?.to_string(), "cpu");
    let err = "cuda"
        .parse::<DeviceChoice>()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("auto, cpu or gpu"), "{err}");
    Ok(())
}
