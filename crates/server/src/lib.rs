//! Sonántica's listening station: the library, durable separation jobs and the
//! HTTP API behind `sonantica serve`.
//!
//! - [`app`]: the application as services (library, jobs, remote workers, the
//!   access token, the media folder), with no HTTP types. The file-level work it
//!   runs (analysis, separation, rendering) is `sonantica_pipeline`.
//! - [`http`]: axum routes, DTOs, authentication, OpenAPI.
//! - [`subsonic`]: the OpenSubsonic API (`/rest/*`) for Subsonic players.

pub mod app;
pub mod http;
pub mod subsonic;

pub use app::{App, AppError, AppResult, Config};

/// Serves the API on `listener` until `shutdown` completes, then stops the
/// background work and hands running jobs back to the queue.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = app.start_background();
    let token = app.shutdown_token();
    let router = http::router(app.clone());
    let stopper = app.clone();
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        tokio::select! {
            _ = shutdown => {}
            _ = token.cancelled() => {}
        }
        stopper.shutdown();
    })
    .await;
    app.shutdown();
    for h in background {
        let _ = h.await;
    }
    result
}
