//! Browsing: artists, albums, songs, genres, lists and search, as Subsonic's
//! ID3 methods (`getArtists`, `getAlbum`, …) and its folder methods
//! (`getIndexes`, `getMusicDirectory`) describe them. Entities are built as
//! JSON; the XML form follows from it (see `xml.rs`).

use serde_json::{json, Value};

use super::{Fail, Params, Reply};
use crate::app::catalog::{Album, AlbumOrder};
use crate::app::library::{Track, TrackFilter, TrackSort};
use crate::app::listening::TrackUse;
use crate::app::App;

/// Articles a name is sorted without (Subsonic's `ignoredArticles`).
const ARTICLES: &str = "The El La Los Las Le Les";

/// The one music folder: the whole library (uploads and the library folder).
const FOLDER_ID: i64 = 1;

/// What an id names.
pub(crate) enum Id {
    Track(i64),
    Album(i64),
    Artist(String),
    /// A track's version rendered from its stems: `karaoke` or `acappella`.
    Version(i64, &'static str),
}

/// The versions of separated tracks: id prefix, preset, the name shown.
pub(crate) const VERSIONS: [(&str, &str, &str); 2] = [
    ("ka-", "karaoke", "Karaoke"),
    ("ac-", "acappella", "A cappella"),
];

impl Id {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_at_checked(3)?;
        match kind {
            "tr-" => rest.parse().ok().map(Id::Track),
            "ka-" | "ac-" => {
                let preset = VERSIONS.iter().find(|v| v.0 == kind).map(|v| v.1)?;
                rest.parse().ok().map(|id| Id::Version(id, preset))
            }
            "al-" => rest.parse().ok().map(Id::Album),
            "ar-" => super::unhex(rest)
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|n| !n.is_empty())
                .map(Id::Artist),
            _ => None,
        }
    }

    /// `id` as one of `kinds`, or error 70.
    pub(crate) fn of(params: &Params, name: &str) -> Result<Self, Fail> {
        let raw = params.required(name)?;
        Self::parse(raw).ok_or_else(|| Fail::not_found(format!("no song, album or artist {raw:?}")))
    }
}

/// The id of track `id`'s version `preset`.
pub(crate) fn version_id(id: i64, preset: &str) -> String {
    let prefix = VERSIONS
        .iter()
        .find(|v| v.1 == preset)
        .map_or("ka-", |v| v.0);
    format!("{prefix}{id}")
}

/// The name a version is shown with.
pub(crate) fn version_label(preset: &str) -> &'static str {
    VERSIONS
        .iter()
        .find(|v| v.1 == preset)
        .map_or("Karaoke", |v| v.2)
}

/// Track `t`'s version `preset` as a song: the track's tags, its title
/// marked, a FLAC file rendered from the stems.
pub(crate) fn version_song(t: &Track, used: &TrackUse, preset: &str) -> Value {
    let label = version_label(preset);
    let mut v = song(t, used);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), version_id(t.id, preset).into());
        m.insert("title".into(), format!("{} ({label})", t.title).into());
        m.insert("suffix".into(), "flac".into());
        m.insert("contentType".into(), "audio/flac".into());
        m.insert("bitDepth".into(), 16.into());
        m.insert("channelCount".into(), 2.into());
        m.insert(
            "comment".into(),
            format!("{label}: made from the stems").into(),
        );
        for gone in ["size", "bitRate"] {
            m.remove(gone);
        }
        if let Some(Value::String(path)) = m.get_mut("path") {
            *path = format!("{path} ({label}).flac");
        }
    }
    v
}

pub(crate) fn track_id(id: i64) -> String {
    format!("tr-{id}")
}

pub(crate) fn album_id(id: i64) -> String {
    format!("al-{id}")
}

pub(crate) fn artist_id(name: &str) -> String {
    format!("ar-{}", super::hex(name.as_bytes()))
}

/// Drops the `null` fields of an entity (Subsonic leaves absent fields out).
pub(crate) fn compact(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}

/// Milliseconds since the epoch as ISO 8601 (UTC), as Subsonic dates are.
pub(crate) fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// A file's MIME type from its extension.
pub(crate) fn content_type(suffix: &str) -> &'static str {
    match suffix {
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" | "mp4" | "aac" | "alac" => "audio/mp4",
        "wav" => "audio/wav",
        "aif" | "aiff" => "audio/aiff",
        "wv" => "audio/x-wavpack",
        _ => "application/octet-stream",
    }
}

/// The extension of a track's file, lowercase.
pub(crate) fn suffix(t: &Track) -> String {
    std::path::Path::new(&t.path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| t.codec.clone())
}

/// Tracks as Subsonic songs, with their plays and stars.
pub(crate) async fn songs(app: &App, tracks: &[Track]) -> Result<Vec<Value>, Fail> {
    let ids: Vec<i64> = tracks.iter().map(|t| t.id).collect();
    let uses = app.listening().track_use(&ids).await?;
    let none = TrackUse::default();
    Ok(tracks
        .iter()
        .map(|t| song(t, uses.get(&t.id).unwrap_or(&none)))
        .collect())
}

/// Albums as Subsonic's `AlbumID3`, with their plays and stars.
pub(crate) async fn albums(app: &App, list: &[Album]) -> Result<Vec<Value>, Fail> {
    let ids: Vec<i64> = list.iter().map(|a| a.id).collect();
    let uses = app.listening().albums_use(&ids).await?;
    let none = TrackUse::default();
    Ok(list
        .iter()
        .map(|a| album_entity(a, uses.get(&a.id).unwrap_or(&none)))
        .collect())
}

/// A track as a Subsonic song (`Child`).
pub(crate) fn song(t: &Track, used: &TrackUse) -> Value {
    let suffix = suffix(t);
    let duration = t.duration_s.unwrap_or(0.0);
    // An integer: players decode it as one (a float breaks their XML).
    let bit_rate =
        (duration > 0.0).then(|| (t.file_size as f64 * 8.0 / duration / 1000.0).round() as i64);
    let artist = t.artist.clone().or_else(|| t.album_artist.clone());
    let album_artist = t.album_artist.clone().or_else(|| t.artist.clone());
    compact(json!({
        "id": track_id(t.id),
        "parent": t.album_id.map(album_id),
        "isDir": false,
        "title": t.title,
        "album": t.album,
        "artist": artist,
        "track": t.track_no,
        "year": t.year,
        "genre": t.genre,
        "coverArt": t.album_id.map_or_else(|| track_id(t.id), album_id),
        "size": t.file_size,
        "contentType": content_type(&suffix),
        "suffix": suffix,
        "duration": duration.round() as i64,
        "bitRate": bit_rate,
        "bitDepth": t.bits_per_sample,
        "samplingRate": t.sample_rate,
        "channelCount": t.channels,
        "path": format!("{}/{}", album_artist.as_deref().unwrap_or("Unknown artist"),
            t.original_name.as_deref().unwrap_or(&t.path)),
        "isVideo": false,
        "discNumber": t.disc_no,
        "created": iso8601(t.created_at),
        "albumId": t.album_id.map(album_id),
        "artistId": artist.as_deref().map(artist_id),
        "type": "music",
        "mediaType": "song",
        "displayArtist": artist,
        "artists": artist.as_deref().map(|a| json!([{"id": artist_id(a), "name": a}])).unwrap_or(json!([])),
        "displayAlbumArtist": album_artist,
        "albumArtists": album_artist.as_deref().map(|a| json!([{"id": artist_id(a), "name": a}])).unwrap_or(json!([])),
        "genres": t.genre.as_deref().map(|g| json!([{"name": g}])).unwrap_or(json!([])),
        "playCount": used.plays,
        "played": used.last_played.map(iso8601),
        "starred": used.starred.map(iso8601),
    }))
}

/// An album as Subsonic's `AlbumID3`.
fn album_entity(a: &Album, used: &TrackUse) -> Value {
    compact(json!({
        "id": album_id(a.id),
        "name": a.title,
        "artist": a.shown_artist.as_deref().unwrap_or("Various Artists"),
        "artistId": a.shown_artist.as_deref().map(artist_id),
        "coverArt": album_id(a.id),
        "songCount": a.tracks,
        "duration": a.duration_s.round() as i64,
        "created": iso8601(a.created_at),
        "year": a.year,
        "genre": a.genre,
        "genres": a.genre.as_deref().map(|g| json!([{"name": g}])).unwrap_or(json!([])),
        "displayArtist": a.shown_artist.as_deref().unwrap_or("Various Artists"),
        "artists": a.shown_artist.as_deref().map(|n| json!([{"id": artist_id(n), "name": n}])).unwrap_or(json!([])),
        "isCompilation": a.shown_artist.is_none(),
        "discTitles": [],
        "playCount": used.plays,
        "played": used.last_played.map(iso8601),
        "starred": used.starred.map(iso8601),
    }))
}

/// An album as a folder (`Child` with `isDir`), for `getMusicDirectory`.
fn album_folder(a: &Album) -> Value {
    compact(json!({
        "id": album_id(a.id),
        "parent": a.shown_artist.as_deref().map(artist_id),
        "isDir": true,
        "title": a.title,
        "name": a.title,
        "album": a.title,
        "artist": a.shown_artist,
        "year": a.year,
        "genre": a.genre,
        "coverArt": album_id(a.id),
        "duration": a.duration_s.round() as i64,
        "created": iso8601(a.created_at),
        "mediaType": "album",
    }))
}

/// The letter an artist is filed under: its first letter or digit once an
/// article is skipped, uppercase; `#` for anything else.
fn index_letter(name: &str) -> String {
    let trimmed = ARTICLES
        .split(' ')
        .find_map(|a| {
            name.get(..a.len() + 1)
                .filter(|head| head.eq_ignore_ascii_case(&format!("{a} ")))
                .map(|_| &name[a.len() + 1..])
        })
        .unwrap_or(name);
    match trimmed.chars().next() {
        Some(c) if c.is_alphabetic() => c.to_uppercase().collect(),
        _ => "#".into(),
    }
}

/// Every artist, filed by letter: `[{name, artist: [...]}]`.
async fn artist_index(app: &App, with_counts: bool) -> Result<Vec<Value>, Fail> {
    let mut index: Vec<(String, Vec<Value>)> = Vec::new();
    let mut artists = app.catalog().artists().await?;
    artists.sort_by_key(|a| (index_letter(&a.name), a.name.to_lowercase()));
    for a in artists {
        let letter = index_letter(&a.name);
        let entry = if with_counts {
            json!({"id": artist_id(&a.name), "name": a.name, "albumCount": a.albums})
        } else {
            json!({"id": artist_id(&a.name), "name": a.name})
        };
        match index.last_mut() {
            Some((l, list)) if *l == letter => list.push(entry),
            _ => index.push((letter, vec![entry])),
        }
    }
    Ok(index
        .into_iter()
        .map(|(name, artist)| json!({"name": name, "artist": artist}))
        .collect())
}

pub(crate) async fn artists(app: &App) -> Result<Reply, Fail> {
    Ok(Reply::Data(
        "artists",
        json!({"ignoredArticles": ARTICLES, "index": artist_index(app, true).await?}),
    ))
}

pub(crate) async fn indexes(app: &App) -> Result<Reply, Fail> {
    Ok(Reply::Data(
        "indexes",
        json!({
            "lastModified": crate::app::now_ms(),
            "ignoredArticles": ARTICLES,
            "index": artist_index(app, false).await?,
        }),
    ))
}

pub(crate) fn music_folders() -> Reply {
    Reply::Data(
        "musicFolders",
        json!({"musicFolder": [{"id": FOLDER_ID, "name": "Music"}]}),
    )
}

/// The artist an id names, as the library spells it, with its albums.
async fn artist_of(app: &App, params: &Params) -> Result<(String, Vec<Album>), Fail> {
    let Id::Artist(name) = Id::of(params, "id")? else {
        return Err(Fail::not_found("not an artist id"));
    };
    let albums = app.catalog().artist_albums(&name).await?;
    let known = app
        .catalog()
        .artists()
        .await?
        .into_iter()
        .find(|a| a.name.to_lowercase() == name.to_lowercase());
    match known {
        Some(a) => Ok((a.name, albums)),
        None => Err(Fail::not_found(format!("no artist {name:?}"))),
    }
}

pub(crate) async fn artist(app: &App, params: &Params) -> Result<Reply, Fail> {
    let (name, albums) = artist_of(app, params).await?;
    Ok(Reply::Data(
        "artist",
        compact(json!({
            "id": artist_id(&name),
            "name": name,
            "albumCount": albums.len(),
            "coverArt": albums.first().map(|a| album_id(a.id)),
            "album": self::albums(app, &albums).await?,
        })),
    ))
}

pub(crate) async fn artist_info(app: &App, params: &Params) -> Result<Reply, Fail> {
    // Tags carry no biography or pictures of the artist: the info is what the
    // library knows, which is that the artist exists.
    artist_of(app, params).await?;
    Ok(Reply::Data("artistInfo2", json!({})))
}

/// Every track of album `id`, in play order.
async fn album_tracks(app: &App, id: i64) -> Result<Vec<Track>, Fail> {
    let filter = TrackFilter {
        album: Some(id),
        sort: Some(TrackSort::Album),
        ..TrackFilter::default()
    };
    Ok(app.library().list_tracks(&filter, 0, 100_000).await?.0)
}

pub(crate) async fn album(app: &App, params: &Params) -> Result<Reply, Fail> {
    let Id::Album(id) = Id::of(params, "id")? else {
        return Err(Fail::not_found("not an album id"));
    };
    let a = app.catalog().album(id).await?;
    let used = app.listening().albums_use(&[id]).await?;
    let mut entity = album_entity(&a, used.get(&id).unwrap_or(&TrackUse::default()));
    let songs = songs(app, &album_tracks(app, id).await?).await?;
    if let Value::Object(m) = &mut entity {
        m.insert("song".into(), songs.into());
    }
    Ok(Reply::Data("album", entity))
}

pub(crate) async fn get_song(app: &App, params: &Params) -> Result<Reply, Fail> {
    let (id, version) = match Id::of(params, "id")? {
        Id::Track(id) => (id, None),
        Id::Version(id, preset) => (id, Some(preset)),
        _ => return Err(Fail::not_found("not a song id")),
    };
    let track = app.library().track(id).await?;
    let used = app.listening().track_use(&[id]).await?;
    let used = used.get(&id).cloned().unwrap_or_default();
    Ok(Reply::Data(
        "song",
        match version {
            Some(preset) => version_song(&track, &used, preset),
            None => song(&track, &used),
        },
    ))
}

pub(crate) async fn music_directory(app: &App, params: &Params) -> Result<Reply, Fail> {
    match Id::of(params, "id")? {
        Id::Artist(_) => {
            let (name, albums) = artist_of(app, params).await?;
            Ok(Reply::Data(
                "directory",
                json!({
                    "id": artist_id(&name),
                    "name": name,
                    "child": albums.iter().map(album_folder).collect::<Vec<_>>(),
                }),
            ))
        }
        Id::Album(id) => {
            let a = app.catalog().album(id).await?;
            let songs = songs(app, &album_tracks(app, id).await?).await?;
            Ok(Reply::Data(
                "directory",
                compact(json!({
                    "id": album_id(a.id),
                    "parent": a.shown_artist.as_deref().map(artist_id),
                    "name": a.title,
                    "child": songs,
                })),
            ))
        }
        Id::Track(_) | Id::Version(..) => Err(Fail::not_found("a song is not a directory")),
    }
}

pub(crate) async fn album_list(app: &App, params: &Params) -> Result<Reply, Fail> {
    let kind = params.required("type")?;
    let size = params.count("size", 10, 500)?;
    let offset = params.count("offset", 0, i64::MAX)?;
    // Lists of what was played or starred come from the listening record.
    let picked: Option<Vec<i64>> = match kind {
        // `highest` (best rated) is the most played here: there are no ratings.
        "frequent" | "recent" | "highest" => Some(
            app.listening()
                .album_ids_by_plays(kind == "recent", offset, size)
                .await?,
        ),
        "starred" => Some(
            app.listening()
                .starred()
                .await?
                .into_iter()
                .filter_map(|(s, _)| match s {
                    crate::app::listening::Starred::Album(id) => Some(id),
                    _ => None,
                })
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(size).unwrap_or(0))
                .collect(),
        ),
        _ => None,
    };
    if let Some(ids) = picked {
        let mut list = Vec::new();
        for id in ids {
            match app.catalog().album(id).await {
                Ok(a) => list.push(a),
                Err(crate::AppError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Reply::Data(
            "albumList2",
            json!({"album": self::albums(app, &list).await?}),
        ));
    }
    let order = match kind {
        "alphabeticalByName" => AlbumOrder::Name,
        "alphabeticalByArtist" => AlbumOrder::Artist,
        "newest" => AlbumOrder::Newest,
        "random" => AlbumOrder::Random,
        "byYear" => AlbumOrder::Years {
            from: params
                .number("fromYear")?
                .ok_or_else(|| Fail::missing("fromYear"))?,
            to: params
                .number("toYear")?
                .ok_or_else(|| Fail::missing("toYear"))?,
        },
        "byGenre" => AlbumOrder::Genre(params.required("genre")?.to_owned()),
        other => {
            return Err(Fail::bad(
                "type",
                &format!(
                    "{other:?} is not a list type (random, newest, frequent, recent, \
                     alphabeticalByName, alphabeticalByArtist, starred, byYear, byGenre)"
                ),
            ))
        }
    };
    let albums = app.catalog().album_list(&order, offset, size).await?;
    Ok(Reply::Data(
        "albumList2",
        json!({"album": self::albums(app, &albums).await?}),
    ))
}

/// Tracks by id, in that order (ids that vanished meanwhile are skipped).
async fn tracks(app: &App, ids: &[i64]) -> Result<Vec<Value>, Fail> {
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        match app.library().track(id).await {
            Ok(t) => out.push(t),
            Err(crate::AppError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    songs(app, &out).await
}

pub(crate) async fn random_songs(app: &App, params: &Params) -> Result<Reply, Fail> {
    let size = params.count("size", 10, 500)?;
    let ids = app
        .catalog()
        .random_track_ids(
            size,
            params.get("genre"),
            params.number("fromYear")?,
            params.number("toYear")?,
        )
        .await?;
    Ok(Reply::Data(
        "randomSongs",
        json!({"song": tracks(app, &ids).await?}),
    ))
}

pub(crate) async fn songs_by_genre(app: &App, params: &Params) -> Result<Reply, Fail> {
    let filter = TrackFilter {
        genre: Some(params.required("genre")?.to_owned()),
        ..TrackFilter::default()
    };
    let count = params.count("count", 10, 500)?;
    let offset = params.count("offset", 0, i64::MAX)?;
    let (list, _) = app.library().list_tracks(&filter, offset, count).await?;
    Ok(Reply::Data(
        "songsByGenre",
        json!({"song": songs(app, &list).await?}),
    ))
}

pub(crate) async fn genres(app: &App) -> Result<Reply, Fail> {
    let list: Vec<Value> = app
        .catalog()
        .genres()
        .await?
        .into_iter()
        .map(|g| json!({"value": g.name, "songCount": g.tracks, "albumCount": g.albums}))
        .collect();
    Ok(Reply::Data("genres", json!({"genre": list})))
}

/// Whether every word of `query` starts a word of `text` (any case), as the
/// track search matches.
fn words_match(query: &[String], text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    query
        .iter()
        .all(|q| words.iter().any(|w| w.starts_with(q.as_str())))
}

pub(crate) async fn search(app: &App, params: &Params) -> Result<Reply, Fail> {
    // Clients sync the whole library with an empty query (or `""`).
    let raw = params.get("query").unwrap_or("").trim().trim_matches('"');
    let query: Vec<String> = raw
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let page = |count: &str, offset: &str| -> Result<(usize, usize), Fail> {
        let n = |v: i64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok((
            n(params.count(count, 20, 10_000)?),
            n(params.count(offset, 0, i64::MAX)?),
        ))
    };
    let (ac, ao) = page("artistCount", "artistOffset")?;
    let (bc, bo) = page("albumCount", "albumOffset")?;
    let (sc, so) = page("songCount", "songOffset")?;

    let artists: Vec<Value> = app
        .catalog()
        .artists()
        .await?
        .into_iter()
        .filter(|a| words_match(&query, &a.name))
        .skip(ao)
        .take(ac)
        .map(|a| json!({"id": artist_id(&a.name), "name": a.name, "albumCount": a.albums}))
        .collect();
    let albums: Vec<Album> = if query.is_empty() {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        app.catalog()
            .album_list(&AlbumOrder::Name, n(bo), n(bc))
            .await?
    } else {
        // The database narrows to albums holding every word; the words must
        // then start a word of the title or artist, as the track search does.
        app.catalog()
            .albums_containing(&query)
            .await?
            .into_iter()
            .filter(|a| {
                words_match(
                    &query,
                    &format!("{} {}", a.title, a.shown_artist.as_deref().unwrap_or("")),
                )
            })
            .skip(bo)
            .take(bc)
            .collect()
    };
    let filter = TrackFilter {
        q: (!query.is_empty()).then(|| raw.to_owned()),
        ..TrackFilter::default()
    };
    let (found, _) = app
        .library()
        .list_tracks(&filter, so as i64, sc as i64)
        .await?;
    Ok(Reply::Data(
        "searchResult3",
        json!({
            "artist": artists,
            "album": self::albums(app, &albums).await?,
            "song": self::songs(app, &found).await?,
        }),
    ))
}

pub(crate) fn user(app: &App, params: &Params) -> Result<Reply, Fail> {
    let name = params.required("username")?;
    let user = app.subsonic_login().get().map_or_else(
        || crate::app::subsonic_login::DEFAULT_USER.to_owned(),
        |l| l.user,
    );
    if name != user {
        return Err(Fail::not_found(format!("no user {name:?}")));
    }
    Ok(Reply::Data(
        "user",
        json!({
            "username": name,
            "scrobblingEnabled": true,
            "adminRole": true,
            "settingsRole": false,
            "downloadRole": true,
            "uploadRole": false,
            "playlistRole": true,
            "coverArtRole": false,
            "commentRole": false,
            "podcastRole": false,
            "streamRole": true,
            "jukeboxRole": false,
            "shareRole": false,
            "videoConversionRole": false,
            "folder": [FOLDER_ID],
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_8601_in_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        // 2026-12-02 03:04:05.678 UTC.
        assert_eq!(iso8601(1_796_180_645_678), "2026-12-02T03:04:05.678Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn artists_are_filed_without_their_article() {
        assert_eq!(index_letter("The Beatles"), "B");
        assert_eq!(index_letter("Theodorakis"), "T");
        assert_eq!(index_letter("élan"), "É");
        assert_eq!(index_letter("4 Non Blondes"), "#");
    }

    #[test]
    fn ids_name_their_kind_and_round_trip() {
        assert!(matches!(Id::parse("tr-12"), Some(Id::Track(12))));
        assert!(matches!(Id::parse("al-3"), Some(Id::Album(3))));
        assert!(
            matches!(Id::parse(&artist_id("Sigur Rós")), Some(Id::Artist(n)) if n == "Sigur Rós")
        );
        assert!(Id::parse("12").is_none());
        assert!(Id::parse("ar-zz").is_none());
        assert!(Id::parse("ar-").is_none());
    }
}
