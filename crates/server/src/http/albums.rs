//! Albums and artists (`/api/albums`, `/api/artists`).

use axum::extract::State;
use axum::Json;

use super::dto::{
    AlbumDetail, AlbumDto, AlbumPage, ArtistDto, PageQuery, PlaylistDetail, PlaylistDto, TrackDto,
};
use super::error::{ApiError, ErrorBody};
use super::{page, AppPath, AppQuery};
use crate::app::listening::Listening;
use crate::app::{AppError, Catalog, Library};

type ApiResult<T> = Result<T, ApiError>;

/// Albums, by artist, year and title, a page at a time.
#[utoipa::path(get, path = "/api/albums", tag = "library", params(PageQuery),
    responses((status = 200, body = AlbumPage), (status = 400, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn list_albums(
    State(catalog): State<Catalog>,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<AlbumPage>> {
    let (offset, limit) = page(q.offset, q.limit)?;
    let (albums, total) = catalog.albums(offset, limit).await?;
    Ok(Json(AlbumPage {
        items: albums.into_iter().map(AlbumDto::from).collect(),
        total,
        offset,
        limit,
    }))
}

/// One album with its tracks in play order (disc, then track number).
#[utoipa::path(get, path = "/api/albums/{id}", tag = "library",
    params(("id" = i64, Path, description = "album id")),
    responses((status = 200, body = AlbumDetail), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn get_album(
    State(catalog): State<Catalog>,
    State(library): State<Library>,
    State(listening): State<Listening>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<AlbumDetail>> {
    let album = catalog.album(id).await?;
    let ids = catalog.album_track_ids(id).await?;
    let items = track_dtos(&library, &listening, &ids).await?;
    Ok(Json(AlbumDetail {
        album: album.into(),
        items,
    }))
}

/// The album's cover as JPEG (at most 600 px a side), made from the album's
/// files the first time: `cover.jpg`, `folder.jpg` or `front.*` beside them,
/// else a picture embedded in them. 404 when there is none.
#[utoipa::path(get, path = "/api/albums/{id}/cover", tag = "library",
    params(("id" = i64, Path, description = "album id")),
    responses((status = 200, description = "the cover", content_type = "image/jpeg"),
        (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn album_cover(
    State(catalog): State<Catalog>,
    State(library): State<Library>,
    AppPath(id): AppPath<i64>,
    req: axum::extract::Request,
) -> ApiResult<axum::response::Response> {
    match catalog.cover(id, &library).await? {
        Some(path) => Ok(super::tracks::serve_file(path, req).await),
        None => Err(AppError::NotFound(format!("album {id} has no cover picture")).into()),
    }
}

/// Every artist, album artists and track artists alike, by name, with how many
/// albums it is the album artist of or plays on, and its tracks.
#[utoipa::path(get, path = "/api/artists", tag = "library",
    responses((status = 200, body = [ArtistDto])),
    security(("token" = [])))]
pub(crate) async fn list_artists(
    State(catalog): State<Catalog>,
) -> ApiResult<Json<Vec<ArtistDto>>> {
    Ok(Json(
        catalog
            .artists()
            .await?
            .into_iter()
            .map(|a| ArtistDto {
                name: a.name,
                albums: a.albums,
                tracks: a.tracks,
            })
            .collect(),
    ))
}

/// Tracks by id, in that order, with their stems, plays and stars.
async fn track_dtos(
    library: &Library,
    listening: &Listening,
    ids: &[i64],
) -> ApiResult<Vec<TrackDto>> {
    let stems = library.stems_of(ids).await?;
    let used = listening.track_use(ids).await?;
    let mut items = Vec::with_capacity(ids.len());
    for &tid in ids {
        let track = library.track(tid).await?;
        let s = stems.get(&tid).cloned().unwrap_or_default();
        items.push(TrackDto::new(track, &s).with_use(used.get(&tid)));
    }
    Ok(items)
}

/// The playlists Subsonic players made, by name.
#[utoipa::path(get, path = "/api/playlists", tag = "library",
    responses((status = 200, body = [PlaylistDto])),
    security(("token" = [])))]
pub(crate) async fn list_playlists(
    State(listening): State<Listening>,
) -> ApiResult<Json<Vec<PlaylistDto>>> {
    Ok(Json(
        listening
            .playlists()
            .await?
            .into_iter()
            .map(PlaylistDto::from)
            .collect(),
    ))
}

/// One playlist with its tracks in order.
#[utoipa::path(get, path = "/api/playlists/{id}", tag = "library",
    params(("id" = i64, Path, description = "playlist id")),
    responses((status = 200, body = PlaylistDetail), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn get_playlist(
    State(library): State<Library>,
    State(listening): State<Listening>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<PlaylistDetail>> {
    let (playlist, ids) = listening.playlist(id).await?;
    Ok(Json(PlaylistDetail {
        playlist: playlist.into(),
        items: track_dtos(&library, &listening, &ids).await?,
    }))
}
