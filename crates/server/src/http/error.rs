//! Errors as HTTP responses: every [`AppError`] maps to a status in one `match`,
//! and the body is always JSON `{error, detail}`.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sonantica_audio::AudioError;

use crate::app::AppError;

/// The body of every error response.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code (`not_found`, `bad_request`, ...).
    pub error: String,
    /// What went wrong and, where there is one, what to do about it.
    pub detail: String,
}

/// An [`AppError`] on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

/// The status and code of an error.
pub fn classify(e: &AppError) -> (StatusCode, &'static str) {
    match e {
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        AppError::UnsupportedMedia(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media"),
        AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        AppError::ModelUnavailable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "model_unavailable"),
        AppError::Audio(a) => match a {
            AudioError::Io { source, .. } => io_status(source),
            AudioError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "bad_audio"),
        },
        AppError::Model(_) => (StatusCode::INTERNAL_SERVER_ERROR, "model_error"),
        AppError::Mix(_) => (StatusCode::BAD_REQUEST, "bad_mix"),
        AppError::Meter(_) => (StatusCode::INTERNAL_SERVER_ERROR, "meter_error"),
        AppError::Io { source, .. } => io_status(source),
        AppError::Database(_) | AppError::Migrate(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "database_error")
        }
        AppError::Queue(_) => (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable"),
        AppError::Cancelled => (StatusCode::CONFLICT, "cancelled"),
        AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn io_status(e: &std::io::Error) -> (StatusCode, &'static str) {
    match e.kind() {
        std::io::ErrorKind::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
        std::io::ErrorKind::FileTooLarge => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = classify(&self.0);
        if status.is_server_error() {
            tracing::error!("{}", self.0);
        }
        let body = Json(ErrorBody {
            error: code.into(),
            detail: self.0.to_string(),
        });
        if status == StatusCode::UNAUTHORIZED {
            (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(e: MultipartRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(AppError::TooLarge(
                "the upload is larger than the server accepts (--max-upload-mb)".into(),
            ))
        } else {
            ApiError(AppError::BadRequest(format!(
                "malformed upload: {}",
                e.body_text()
            )))
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(AppError::TooLarge("the request body is too large".into()))
        } else {
            ApiError(AppError::BadRequest(e.body_text()))
        }
    }
}
