//! The HTTP layer: axum routes, authentication, DTOs and the OpenAPI document.
//! Handlers translate requests into [`App`] calls and errors into JSON.

mod albums;
pub mod dto;
pub mod error;
mod jobs;
mod players;
pub mod studio;
pub(crate) mod tracks;
pub mod workers;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use axum::extract::FromRef;

use crate::app::{App, AppError, Auth, Catalog, Jobs, Library, Workers};
use dto::{Health, LoginRequest};
use error::{ApiError, ErrorBody};

/// `Json` whose rejections are JSON errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct AppJson<T>(pub T);

/// The raw body, whose rejections (too large) are JSON errors.
pub(crate) struct AppBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for AppBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(AppBytes(axum::body::Bytes::from_request(req, state).await?))
    }
}

/// An optional JSON body: none (or only whitespace) is `T::default()`; errors
/// are JSON errors.
pub(crate) struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // A body must say it is JSON: a form or text/plain body is what another
        // site's page can send without asking (CSRF), never what the Studio sends.
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        let AppBytes(body) = AppBytes::from_request(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json {
            return Err(ApiError(AppError::UnsupportedMedia(
                "the body must be JSON, sent with Content-Type: application/json".into(),
            )));
        }
        serde_json::from_slice(&body)
            .map(OptionalJson)
            .map_err(|e| ApiError(AppError::BadRequest(format!("the JSON body: {e}"))))
    }
}

/// Checks paging parameters: the offset (default 0) and page size (default
/// 50, at most 500).
pub(crate) fn page(offset: Option<i64>, limit: Option<i64>) -> Result<(i64, i64), ApiError> {
    let (offset, limit) = (offset.unwrap_or(0), limit.unwrap_or(50));
    if offset < 0 || !(1..=500).contains(&limit) {
        return Err(ApiError(AppError::BadRequest(
            "offset must be ≥ 0 and limit 1..=500".into(),
        )));
    }
    Ok((offset, limit))
}

/// Refuses a `model` parameter that is not a model name (before it is looked up).
pub(crate) fn check_model_param(model: Option<&str>) -> Result<(), ApiError> {
    match model {
        Some(m) if !sonantica_pipeline::models::is_model_name(m) => Err(ApiError(
            AppError::BadRequest(format!("{m:?} is not a model name")),
        )),
        _ => Ok(()),
    }
}

/// `Path` whose rejections are JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct AppPath<T>(pub T);

/// `Query` whose rejections are JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct AppQuery<T>(pub T);

/// Name of the session cookie.
pub const COOKIE: &str = "sonantica_session";

/// JSON bodies other than uploads are small.
const JSON_LIMIT: usize = 64 * 1024;

/// How a request says who it is.
enum Credential<'a> {
    /// `Authorization: Bearer TOKEN` (scripts, players, workers).
    Bearer(&'a str),
    /// The session cookie a browser got from `/api/login`.
    Session(&'a str),
}

fn credential(headers: &HeaderMap) -> Option<Credential<'_>> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v
            .strip_prefix("Bearer ")
            .map(|t| Credential::Bearer(t.trim()));
    }
    session_cookie(headers).map(Credential::Session)
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// A browser's cookie travels with requests that other sites start, so a
/// request that changes something must come from the Studio's own origin: the
/// browser says so in `Sec-Fetch-Site`, or its `Origin` names this host. (A
/// request with neither header did not come from a browser page.)
fn same_origin(headers: &HeaderMap) -> bool {
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = get(header::HeaderName::from_static("sec-fetch-site")) {
        return matches!(site, "same-origin" | "none");
    }
    match (get(header::ORIGIN), get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host),
        (Some(_), None) => false,
    }
}

// Handlers take the one service they need; the router's state is the App.
impl FromRef<App> for Library {
    fn from_ref(app: &App) -> Self {
        app.library().clone()
    }
}

impl FromRef<App> for Catalog {
    fn from_ref(app: &App) -> Self {
        app.catalog().clone()
    }
}

impl FromRef<App> for Jobs {
    fn from_ref(app: &App) -> Self {
        app.jobs().clone()
    }
}

impl FromRef<App> for Workers {
    fn from_ref(app: &App) -> Self {
        app.workers().clone()
    }
}

impl FromRef<App> for crate::app::listening::Listening {
    fn from_ref(app: &App) -> Self {
        app.listening().clone()
    }
}

impl FromRef<App> for Auth {
    fn from_ref(app: &App) -> Self {
        app.auth().clone()
    }
}

async fn require_token(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let ok = match credential(req.headers()) {
        Some(Credential::Bearer(t)) => auth.check_token(t),
        Some(Credential::Session(id)) => {
            if !auth.check_session(id).await {
                false
            } else if !req.method().is_safe() && !same_origin(req.headers()) {
                return ApiError(AppError::Forbidden(
                    "a request from another site with the session cookie was refused".into(),
                ))
                .into_response();
            } else {
                true
            }
        }
        None => false,
    };
    if ok {
        next.run(req).await
    } else {
        ApiError(AppError::Unauthorized).into_response()
    }
}

/// The worker API's guard: the worker token only. The access token or a
/// session cookie is refused (403), so that a leaked worker credential opens
/// nothing but the queue and the user's credentials cannot store stems.
async fn require_worker_token(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    match credential(req.headers()) {
        Some(Credential::Bearer(t)) if auth.check_worker_token(t) => next.run(req).await,
        Some(Credential::Bearer(t)) if auth.check_token(t) => ApiError(AppError::Forbidden(
            "the worker API takes the worker token (--worker-token), not the access token".into(),
        ))
        .into_response(),
        Some(Credential::Session(_)) => ApiError(AppError::Forbidden(
            "the worker API takes the worker token (--worker-token), not a browser session".into(),
        ))
        .into_response(),
        _ => ApiError(AppError::Unauthorized).into_response(),
    }
}

/// Every worker route when the station runs its jobs itself.
async fn worker_api_off(req: Request) -> ApiError {
    ApiError(AppError::NotFound(format!(
        "{}: the worker API is off, since this station runs its jobs itself \
         (start it with --queue and --worker-token for `sonantica worker` processes)",
        req.uri().path()
    )))
}

/// Liveness: answers once the server is ready (no token needed).
#[utoipa::path(get, path = "/api/health", tag = "server",
    responses((status = 200, body = Health)))]
async fn health(State(app): State<App>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        device: app.jobs().device(),
    })
}

/// Exchange the access token for a session cookie (for browsers).
#[utoipa::path(post, path = "/api/login", tag = "server", request_body = LoginRequest,
    responses((status = 204, description = "cookie set"), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many failed logins: wait")))]
async fn login(
    State(auth): State<Auth>,
    State(app): State<App>,
    req: Request,
) -> Result<Response, ApiError> {
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string());
    let secure = is_https(req.headers(), app.config().public_url.as_deref());
    let AppJson(body) = AppJson::<LoginRequest>::from_request(req, &()).await?;
    let (id, max_age) = auth.login(&body.token, &client).await?;
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError(AppError::Internal("a session id that is not ASCII".into())))?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, value)]).into_response())
}

/// Whether the browser reached the station over TLS: through a proxy that says
/// so, or because the station is published at an https address.
fn is_https(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    public_url.is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// End the session: the cookie no longer works, here or in any copy of it.
#[utoipa::path(post, path = "/api/logout", tag = "server",
    responses((status = 204, description = "session ended, cookie cleared")))]
async fn logout(State(auth): State<Auth>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session_cookie(&headers) {
        if !same_origin(&headers) {
            return Err(ApiError(AppError::Forbidden(
                "a logout from another site was refused".into(),
            )));
        }
        auth.logout(id).await?;
    }
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let value = HeaderValue::from_str(&clear)
        .map_err(|_| ApiError(AppError::Internal("the cookie header".into())))?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, value)]).into_response())
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // `sonantica serve --worker-token`: the worker API's only credential.
        components.add_security_scheme(
            "worker_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI description of this API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Sonántica Neural Acoustic", description = "The listening station's API: library, separation jobs, stems and mixes. Every call but health, login and this document needs the access token (`Authorization: Bearer TOKEN`, or the cookie set by /api/login)."),
    paths(
        health, login, logout,
        tracks::list_tracks, tracks::upload_track, tracks::get_track, tracks::delete_track,
        tracks::track_audio, tracks::track_overview, tracks::list_stems, tracks::get_stem, tracks::stems_zip,
        tracks::multistem, tracks::stream_track,
        albums::list_albums, albums::get_album, albums::album_cover, albums::list_artists,
        albums::list_playlists, albums::get_playlist,
        tracks::mix_track, tracks::separate_track,
        jobs::list_jobs, jobs::get_job, jobs::cancel_job, jobs::job_events,
        jobs::scan_library, jobs::separate_library, jobs::list_models,
        players::get_settings, players::set_login, players::create_key, players::revoke_key,
        workers::claim, workers::audio, workers::progress, workers::put_stem, workers::put_part,
        workers::complete,
        workers::fail, workers::release,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found(req: Request) -> ApiError {
    ApiError(AppError::NotFound(format!(
        "no such endpoint: {}",
        req.uri().path()
    )))
}

async fn method_not_allowed(req: Request) -> Response {
    let mut res = ApiError(AppError::BadRequest(format!(
        "{} is not allowed on {}",
        req.method(),
        req.uri().path()
    )))
    .into_response();
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res
}

/// The folders whose absolute paths error details must not show, longest
/// first, with the names the README gives them.
type Roots = std::sync::Arc<Vec<(String, &'static str)>>;

fn roots(app: &App) -> Roots {
    let config = app.config();
    let mut roots: Vec<(String, &'static str)> = Vec::new();
    let mut add = |path: &std::path::Path, label: &'static str| {
        for p in [Some(path.to_path_buf()), path.canonicalize().ok()]
            .into_iter()
            .flatten()
        {
            let text = p.to_string_lossy().trim_end_matches('/').to_owned();
            if p.is_absolute() && text.len() > 1 {
                roots.push((text, label));
            }
        }
    };
    add(&config.data_dir, "DATA");
    add(&config.models_dir, "MODELS");
    if let Some(lib) = &config.library {
        add(lib, "LIBRARY");
    }
    roots.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    std::sync::Arc::new(roots)
}

/// Error details name files relative to the data, library or model folder
/// (`DATA/media/stems/…`, `LIBRARY/album/track.flac`), never where the station
/// keeps them: what the folders are called on the server is not the caller's
/// business. The full paths go to the log with every server error.
async fn scrub_paths(State(roots): State<Roots>, res: Response) -> Response {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(res.status().is_client_error() || res.status().is_server_error()) || !is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError(AppError::Internal(
            "an error body that could not be read".into(),
        ))
        .into_response();
    };
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    for (root, label) in roots.iter() {
        // In JSON, `/` may be escaped; paths here never are.
        text = text.replace(root.as_str(), label);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(text))
}

/// The whole API as a router over `app`.
pub fn router(app: App) -> Router {
    let upload_limit = usize::try_from(app.config().max_upload_bytes.saturating_add(1 << 20))
        .unwrap_or(usize::MAX);
    let protected = Router::new()
        .route(
            "/api/tracks",
            get(tracks::list_tracks)
                .post(tracks::upload_track.layer(DefaultBodyLimit::max(upload_limit))),
        )
        .route(
            "/api/tracks/{id}",
            get(tracks::get_track).delete(tracks::delete_track),
        )
        .route("/api/tracks/{id}/audio", get(tracks::track_audio))
        .route("/api/tracks/{id}/overview", get(tracks::track_overview))
        .route("/api/albums", get(albums::list_albums))
        .route("/api/albums/{id}", get(albums::get_album))
        .route("/api/albums/{id}/cover", get(albums::album_cover))
        .route("/api/artists", get(albums::list_artists))
        .route("/api/tracks/{id}/stems", get(tracks::list_stems))
        .route("/api/tracks/{id}/stems.zip", get(tracks::stems_zip))
        .route("/api/tracks/{id}/multistem", get(tracks::multistem))
        .route("/api/tracks/{id}/stream", get(tracks::stream_track))
        .route("/api/tracks/{id}/stems/{source}", get(tracks::get_stem))
        .route("/api/tracks/{id}/mix", post(tracks::mix_track))
        .route("/api/tracks/{id}/separate", post(tracks::separate_track))
        .route("/api/jobs", get(jobs::list_jobs))
        .route(
            "/api/jobs/{id}",
            get(jobs::get_job).delete(jobs::cancel_job),
        )
        .route("/api/jobs/{id}/events", get(jobs::job_events))
        .route("/api/library/scan", post(jobs::scan_library))
        .route("/api/library/separate", post(jobs::separate_library))
        .route("/api/models", get(jobs::list_models))
        .route("/api/playlists", get(albums::list_playlists))
        .route("/api/playlists/{id}", get(albums::get_playlist))
        .route("/api/subsonic", get(players::get_settings))
        .route(
            "/api/subsonic/login",
            axum::routing::put(players::set_login),
        )
        .route("/api/subsonic/keys", post(players::create_key))
        .route(
            "/api/subsonic/keys/{id}",
            axum::routing::delete(players::revoke_key),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            app.auth().clone(),
            require_token,
        ));
    // The worker API exists only when jobs go to a queue, and takes only the
    // worker token: the user's token or cookie cannot claim jobs or store stems.
    let worker_api = if app.config().queue.is_some() {
        Router::new()
            .route("/api/worker/jobs/{id}/claim", post(workers::claim))
            .route("/api/worker/jobs/{id}/audio", get(workers::audio))
            .route("/api/worker/jobs/{id}/progress", post(workers::progress))
            .route(
                "/api/worker/jobs/{id}/stems/{source}",
                axum::routing::put(workers::put_stem.layer(DefaultBodyLimit::max(upload_limit))),
            )
            .route(
                "/api/worker/jobs/{id}/parts",
                axum::routing::put(
                    workers::put_part.layer(DefaultBodyLimit::max(workers::PART_MAX_BYTES)),
                ),
            )
            .route("/api/worker/jobs/{id}/complete", post(workers::complete))
            .route("/api/worker/jobs/{id}/fail", post(workers::fail))
            .route("/api/worker/jobs/{id}/release", post(workers::release))
            .route_layer(axum::middleware::from_fn_with_state(
                app.auth().clone(),
                require_worker_token,
            ))
    } else {
        Router::new().route("/api/worker/{*rest}", axum::routing::any(worker_api_off))
    };
    Router::new()
        .route("/api/health", get(health))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/openapi.json", get(openapi))
        .merge(studio::routes())
        .merge(protected)
        .merge(worker_api)
        .merge(crate::subsonic::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .layer(axum::middleware::map_response_with_state(
            roots(&app),
            scrub_paths,
        ))
        // Spans name the path only: Subsonic players send their password or
        // key in the query.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
                },
            ),
        )
        .with_state(app)
}
