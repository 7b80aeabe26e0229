//! The OpenSubsonic API (`/rest/*`): the station's library in the players
//! people already use (Symfonium, DSub, Feishin, Supersonic, Substreamer, …),
//! as Navidrome and Gonic serve theirs.
//!
//! - Every method answers under `/rest/NAME` and `/rest/NAME.view`, to `GET`
//!   and to `POST` with a form body (the `formPost` extension), in XML (the
//!   default) or JSON (`f=json`, `f=jsonp&callback=…`).
//! - Players sign in with the Subsonic login (see
//!   [`crate::app::subsonic_login`]): `u` and `t`+`s` (md5 of password and
//!   salt), `p=enc:HEX` or a plain `p`; or with an API key made in the Studio
//!   (`apiKey`, the `apiKeyAuthentication` extension). A wrong one is error 40
//!   (44 for a key) and counts towards the same back-off as the Studio's login.
//! - Ids name their kind: `tr-N` a track, `al-N` an album, `ar-HEX` an artist
//!   (the name's bytes), so one id never names two things.
//!
//! The module maps requests onto the app's services; it holds no state.

mod browse;
mod listen;
mod media;
mod xml;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use crate::app::App;

/// The Subsonic API version served.
pub const API_VERSION: &str = "1.16.1";

/// What the station calls itself in every response (`type`).
pub const SERVER_TYPE: &str = "sonantica";

/// The largest form body a `POST` may carry.
const FORM_LIMIT: usize = 64 << 10;

/// The `/rest/*` routes.
pub(crate) fn routes() -> Router<App> {
    // Players that run in a browser (Feishin's web build, Airsonic-Refix)
    // call from their own origin. Credentials travel in the query or the
    // form, never in cookies, so any origin may call.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(tower_http::cors::Any);
    Router::new()
        .route("/rest/{method}", get(call).post(call))
        .layer(cors)
}

/// A Subsonic error: its code (the API's list) and what to do about it.
#[derive(Debug)]
pub(crate) struct Fail {
    code: u32,
    message: String,
}

impl Fail {
    pub(crate) fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Error 10: a required parameter is missing.
    pub(crate) fn missing(name: &str) -> Self {
        Self::new(10, format!("required parameter {name} is missing"))
    }

    /// Error 70: the thing asked for does not exist.
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(70, what)
    }

    /// Error 0 for a bad parameter value.
    pub(crate) fn bad(name: &str, why: &str) -> Self {
        Self::new(0, format!("parameter {name}: {why}"))
    }
}

impl From<crate::AppError> for Fail {
    fn from(e: crate::AppError) -> Self {
        match e {
            crate::AppError::NotFound(m) => Self::not_found(m),
            other => {
                tracing::error!("subsonic: {other}");
                Self::new(0, "the station failed to answer: see its log")
            }
        }
    }
}

/// What a method answers.
pub(crate) enum Reply {
    /// `status="ok"` and nothing else (ping, scrobble, …).
    Empty,
    /// `status="ok"` with one named element.
    Data(&'static str, Value),
    /// A file or a stream, as it is.
    Raw(Response),
}

/// The request's parameters, from the query and a form body, in order
/// (Subsonic repeats a parameter for lists: `id=1&id=2`).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (lists repeat the parameter).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `name` as true or false, if present.
    pub(crate) fn flag(&self, name: &str) -> Result<Option<bool>, Fail> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(Fail::bad(name, &format!("{v:?} is not true or false"))),
        }
    }

    /// The value of `name`, or error 10.
    pub(crate) fn required(&self, name: &str) -> Result<&str, Fail> {
        self.get(name).ok_or_else(|| Fail::missing(name))
    }

    /// `name` as a number, if present.
    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Fail> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| Fail::bad(name, &format!("{v:?} is not a number")))
            })
            .transpose()
    }

    /// `name` as a count within `0..=max`, `default` when absent.
    pub(crate) fn count(&self, name: &str, default: i64, max: i64) -> Result<i64, Fail> {
        let n = self.number::<i64>(name)?.unwrap_or(default);
        if n < 0 {
            return Err(Fail::bad(name, "must not be negative"));
        }
        Ok(n.min(max))
    }
}

/// How the answer is written.
#[derive(Clone, PartialEq)]
enum Format {
    Xml,
    Json,
    /// JSON wrapped in a call of this (checked) function name.
    Jsonp(String),
}

impl Format {
    fn of(params: &Params) -> Self {
        match params.get("f") {
            Some("json") => Format::Json,
            Some("jsonp") => match params.get("callback") {
                Some(c)
                    if !c.is_empty()
                        && c.len() <= 64
                        && c.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "_.$".contains(ch)) =>
                {
                    Format::Jsonp(c.to_owned())
                }
                _ => Format::Json,
            },
            _ => Format::Xml,
        }
    }
}

async fn call(State(app): State<App>, Path(method): Path<String>, req: Request) -> Response {
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string());
    let (parts, body) = req.into_parts();
    let mut params: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if parts.method == Method::POST && is_form {
        match axum::body::to_bytes(body, FORM_LIMIT).await {
            Ok(b) => params.extend(form_urlencoded::parse(&b).into_owned()),
            Err(_) => {
                let params = Params(params);
                return render(
                    &Format::of(&params),
                    Err(Fail::new(0, "the form is larger than 64 KiB")),
                );
            }
        }
    }
    let params = Params(params);
    let format = Format::of(&params);
    let name = method.strip_suffix(".view").unwrap_or(&method);
    // Clients find out what the server supports before signing in.
    let open = name == "getOpenSubsonicExtensions";
    let result = match if open {
        Ok(())
    } else {
        authenticate(&app, &params, &client).await
    } {
        Ok(()) => dispatch(&app, name, &params, &parts.headers).await,
        Err(fail) => Err(fail),
    };
    match result {
        Ok(Reply::Raw(res)) => res,
        Err(fail) if fail.code == UNKNOWN_METHOD => {
            let mut res = render(&format, Err(fail));
            *res.status_mut() = StatusCode::NOT_FOUND;
            res
        }
        other => render(&format, other),
    }
}

/// The code of an unknown method's error (0, answered with HTTP 404).
const UNKNOWN_METHOD: u32 = u32::MAX;

async fn dispatch(
    app: &App,
    name: &str,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Reply, Fail> {
    match name {
        "ping" => Ok(Reply::Empty),
        "getLicense" => Ok(Reply::Data(
            "license",
            json!({"valid": true, "email": "", "licenseExpires": null}),
        )),
        "getOpenSubsonicExtensions" => Ok(Reply::Data(
            "openSubsonicExtensions",
            json!([
                {"name": "formPost", "versions": [1]},
                {"name": "songLyrics", "versions": [1]},
                {"name": "transcodeOffset", "versions": [1]},
                {"name": "apiKeyAuthentication", "versions": [1]},
            ]),
        )),
        "getUser" => browse::user(app, params),
        "tokenInfo" => Ok(Reply::Data(
            "tokenInfo",
            json!({"username": app.subsonic_login().get().map(|l| l.user).unwrap_or_else(|| "admin".into())}),
        )),
        "getMusicFolders" => Ok(browse::music_folders()),
        "getIndexes" => browse::indexes(app).await,
        "getMusicDirectory" => browse::music_directory(app, params).await,
        "getArtists" => browse::artists(app).await,
        "getArtist" => browse::artist(app, params).await,
        "getArtistInfo2" => browse::artist_info(app, params).await,
        "getAlbum" => browse::album(app, params).await,
        "getSong" => browse::get_song(app, params).await,
        "getAlbumList2" => browse::album_list(app, params).await,
        "getRandomSongs" => browse::random_songs(app, params).await,
        "getSongsByGenre" => browse::songs_by_genre(app, params).await,
        "getGenres" => browse::genres(app).await,
        "search3" => browse::search(app, params).await,
        "stream" | "download" => media::file(app, params, headers, name == "download").await,
        "getCoverArt" => media::cover(app, params).await,
        "scrobble" => listen::scrobble(app, params).await,
        "star" => listen::star(app, params, true).await,
        "unstar" => listen::star(app, params, false).await,
        "getStarred2" => listen::starred(app).await,
        "getNowPlaying" => listen::now_playing(app).await,
        "getPlaylists" => listen::playlists(app).await,
        "getPlaylist" => listen::playlist(app, params).await,
        "createPlaylist" => listen::create_playlist(app, params).await,
        "updatePlaylist" => listen::update_playlist(app, params).await,
        "deletePlaylist" => listen::delete_playlist(app, params).await,
        "getLyricsBySongId" => listen::lyrics(app, params).await,
        other => Err(Fail::new(
            UNKNOWN_METHOD,
            format!("this station has no Subsonic method {other:?}"),
        )),
    }
}

/// Checks the caller's credentials: `apiKey`, or `u` with `t` and `s` or `p`.
async fn authenticate(app: &App, params: &Params, client: &str) -> Result<(), Fail> {
    let key = format!("subsonic {client}");
    let key_client = key.clone();
    if let Some(wait) = app.auth().backoff(&key) {
        return Err(Fail::new(
            40,
            format!(
                "too many wrong passwords from this address: try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    if let Some(key) = params.get("apiKey") {
        if params.get("u").is_some() {
            return Err(Fail::new(43, "give either apiKey or u, not both"));
        }
        return if app.api_keys().check(key).await? {
            app.auth().successful_attempt(&key_client);
            Ok(())
        } else {
            app.auth().failed_attempt(&key_client);
            Err(Fail::new(
                44,
                "this API key is not valid (revoked, or never made): make one in the Studio's Players page",
            ))
        };
    }
    let user = params.required("u")?;
    let Some(login) = app.subsonic_login().get() else {
        return Err(Fail::new(
            40,
            "no Subsonic password is set on this station: start it with --subsonic-password \
             (or SONANTICA_SUBSONIC_PASSWORD)",
        ));
    };
    let password_ok = match (params.get("t"), params.get("s"), params.get("p")) {
        (Some(t), Some(s), None) => {
            let want = hex(&Md5::digest(format!("{}{s}", login.password).as_bytes()));
            same(t.to_ascii_lowercase().as_bytes(), want.as_bytes())
        }
        (None, None, Some(p)) => match p.strip_prefix("enc:") {
            Some(h) => unhex(h).is_some_and(|b| same(&b, login.password.as_bytes())),
            None => same(p.as_bytes(), login.password.as_bytes()),
        },
        (None, None, None) => return Err(Fail::missing("t and s, or p")),
        (None, Some(_), None) => return Err(Fail::missing("t")),
        (Some(_), None, None) => return Err(Fail::missing("s")),
        _ => return Err(Fail::new(43, "give either t and s, or p, not both")),
    };
    if password_ok && same(user.as_bytes(), login.user.as_bytes()) {
        app.auth().successful_attempt(&key);
        Ok(())
    } else {
        app.auth().failed_attempt(&key);
        Err(Fail::new(40, "wrong username or password"))
    }
}

/// Equal bytes, compared as SHA-256 digests in a time that tells nothing of
/// either (not even the length).
fn same(a: &[u8], b: &[u8]) -> bool {
    use sha2::Sha256;
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The response envelope with `result` in it, in `format`.
fn render(format: &Format, result: Result<Reply, Fail>) -> Response {
    let mut root = Map::new();
    root.insert(
        "status".into(),
        if result.is_ok() { "ok" } else { "failed" }.into(),
    );
    root.insert("version".into(), API_VERSION.into());
    root.insert("type".into(), SERVER_TYPE.into());
    root.insert("serverVersion".into(), env!("CARGO_PKG_VERSION").into());
    root.insert("openSubsonic".into(), true.into());
    match result {
        Ok(Reply::Data(key, value)) => {
            root.insert(key.into(), value);
        }
        Ok(Reply::Empty) => {}
        Ok(Reply::Raw(res)) => return res,
        Err(fail) => {
            let code = if fail.code == UNKNOWN_METHOD {
                0
            } else {
                fail.code
            };
            root.insert(
                "error".into(),
                json!({"code": code, "message": fail.message}),
            );
        }
    }
    let root = Value::Object(root);
    let (content_type, body) = match format {
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            xml::element(
                &mut out,
                "subsonic-response",
                &root,
                Some("http://subsonic.org/restapi"),
            );
            ("text/xml; charset=utf-8", out)
        }
        Format::Json => (
            "application/json",
            json!({"subsonic-response": root}).to_string(),
        ),
        Format::Jsonp(callback) => (
            "application/javascript",
            format!("{callback}({});", json!({"subsonic-response": root})),
        ),
    };
    ([(header::CONTENT_TYPE, content_type)], Body::from(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enc_passwords_and_tokens_decode_as_subsonic_clients_write_them() {
        // The API's own example: password "sesame", salt "c19b2d".
        let t = hex(&Md5::digest(b"sesamec19b2d"));
        assert_eq!(t, "26719a1196d2a940705a59634eb18eab");
        assert_eq!(unhex("736573616d65").as_deref(), Some(&b"sesame"[..]));
        assert_eq!(unhex("7g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
