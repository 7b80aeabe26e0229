//! The Studio's Players page (`/api/subsonic…`): the Subsonic login and the
//! API keys that Subsonic players sign in with. Behind the access token like
//! the rest of `/api`; the keys and password open only `/rest/*`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::{AppJson, AppPath};
use crate::app::subsonic_login::{Login, DEFAULT_USER};
use crate::app::App;

type ApiResult<T> = Result<T, ApiError>;

/// An API key as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyDto {
    /// Id.
    pub id: i64,
    /// The player it is for.
    pub name: String,
    /// Made at, ms since the epoch.
    pub created_at: i64,
    /// Last used, ms since the epoch.
    pub last_used_at: Option<i64>,
}

/// How Subsonic players sign in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubsonicSettings {
    /// The user name players enter.
    pub user: String,
    /// Whether a password is set (without one, only API keys sign in).
    pub password_set: bool,
    /// The API keys.
    pub keys: Vec<ApiKeyDto>,
}

/// A new Subsonic login.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// User name (default `admin`).
    pub user: Option<String>,
    /// Password: 1-200 characters on one line. Kept readable by the station
    /// (Subsonic's token sign-in needs it): use one used nowhere else.
    pub password: String,
}

/// A key to make.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewKeyRequest {
    /// The player it is for.
    pub name: String,
}

/// A key just made: the only time the key itself is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewKey {
    /// The listing.
    #[serde(flatten)]
    pub listed: ApiKeyDto,
    /// The key to enter in the player.
    pub key: String,
}

fn dto(k: crate::app::api_keys::ApiKey) -> ApiKeyDto {
    ApiKeyDto {
        id: k.id,
        name: k.name,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
    }
}

/// The Subsonic login (the user; never the password) and the API keys.
#[utoipa::path(get, path = "/api/subsonic", tag = "players",
    responses((status = 200, body = SubsonicSettings)),
    security(("token" = [])))]
pub(crate) async fn get_settings(State(app): State<App>) -> ApiResult<Json<SubsonicSettings>> {
    let login = app.subsonic_login().get();
    Ok(Json(SubsonicSettings {
        user: login
            .as_ref()
            .map_or_else(|| DEFAULT_USER.to_owned(), |l| l.user.clone()),
        password_set: login.is_some(),
        keys: app.api_keys().list().await?.into_iter().map(dto).collect(),
    }))
}

/// Sets the Subsonic user and password (players signed in with the old
/// password must sign in again).
#[utoipa::path(put, path = "/api/subsonic/login", tag = "players", request_body = LoginRequest,
    responses((status = 204, description = "set"), (status = 400, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn set_login(
    State(app): State<App>,
    AppJson(req): AppJson<LoginRequest>,
) -> ApiResult<StatusCode> {
    let user = req
        .user
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_USER.to_owned());
    let login = app.subsonic_login().clone();
    tokio::task::spawn_blocking(move || {
        login.set(Login {
            user,
            password: req.password,
        })
    })
    .await
    .map_err(|e| ApiError(crate::AppError::Internal(format!("saving the login: {e}"))))??;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes an API key for a player; the key is in this answer only.
#[utoipa::path(post, path = "/api/subsonic/keys", tag = "players", request_body = NewKeyRequest,
    responses((status = 201, body = NewKey), (status = 400, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn create_key(
    State(app): State<App>,
    AppJson(req): AppJson<NewKeyRequest>,
) -> ApiResult<(StatusCode, Json<NewKey>)> {
    let (listed, key) = app.api_keys().create(&req.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKey {
            listed: dto(listed),
            key,
        }),
    ))
}

/// Revokes an API key: the player using it is refused from now on.
#[utoipa::path(delete, path = "/api/subsonic/keys/{id}", tag = "players",
    params(("id" = i64, Path, description = "key id")),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn revoke_key(
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<StatusCode> {
    app.api_keys().revoke(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
