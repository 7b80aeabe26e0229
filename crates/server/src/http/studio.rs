//! The Studio: the web player's static files (`web/`), embedded in the binary,
//! and the wasm module built from `sonantica-wasm` by `build.rs`. Served without
//! a token: the page asks for one (`/api/login`) before it shows anything.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::App;

const INDEX: &str = include_str!("../../../../web/index.html");
const APP: &str = include_str!("../../../../web/app.js");
const WORKLET: &str = include_str!("../../../../web/worklet.js");
const STYLE: &str = include_str!("../../../../web/style.css");
/// The page's ES modules (`web/js/`), one concern each, served as `/js/{name}`.
const MODULES: &[(&str, &str)] = &[
    ("api.js", include_str!("../../../../web/js/api.js")),
    ("engine.js", include_str!("../../../../web/js/engine.js")),
    (
        "inspector.js",
        include_str!("../../../../web/js/inspector.js"),
    ),
    ("jobs.js", include_str!("../../../../web/js/jobs.js")),
    ("library.js", include_str!("../../../../web/js/library.js")),
    ("mixer.js", include_str!("../../../../web/js/mixer.js")),
    ("player.js", include_str!("../../../../web/js/player.js")),
    ("players.js", include_str!("../../../../web/js/players.js")),
    ("router.js", include_str!("../../../../web/js/router.js")),
    ("state.js", include_str!("../../../../web/js/state.js")),
    ("ui.js", include_str!("../../../../web/js/ui.js")),
];
/// The Inspector and Stem Engine for the AudioWorklet.
pub const WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sonantica.wasm"));

fn file(body: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Small files, always revalidated: a new binary serves its own page.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // No other site may frame the Studio (clickjacking), and the page
            // runs only its own scripts, styles and wasm.
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
        ],
        body,
    )
        .into_response()
}

/// The Studio's content security policy: everything from this origin only;
/// `wasm-unsafe-eval` lets the page compile its wasm module; media and
/// downloads may be blob URLs the page makes.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The Studio's routes.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route(
            "/",
            get(|| async { file(INDEX.as_bytes(), "text/html; charset=utf-8") }),
        )
        .route(
            "/index.html",
            get(|| async { file(INDEX.as_bytes(), "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { file(APP.as_bytes(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/worklet.js",
            get(|| async { file(WORKLET.as_bytes(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { file(STYLE.as_bytes(), "text/css; charset=utf-8") }),
        )
        .route(
            "/js/{name}",
            get(|Path(name): Path<String>| async move {
                match MODULES.iter().find(|(n, _)| *n == name) {
                    Some((_, body)) => file(body.as_bytes(), "text/javascript; charset=utf-8"),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route(
            "/sonantica.wasm",
            get(|| async { file(WASM, "application/wasm") }),
        )
}
