//! What players report and keep: scrobbles (play counts, recently played,
//! now playing), stars, playlists; and the lyrics a track's tags carry.

use serde_json::{json, Value};

use super::browse::{
    album_id, albums, artist_id, compact, iso8601, songs, version_label, version_song, Id, VERSIONS,
};
use super::{Fail, Params, Reply};
use crate::app::catalog::tag;
use crate::app::library::{TrackFilter, TrackSort};
use crate::app::listening::{Playlist, PlaylistChange, Starred};
use crate::app::App;

/// The id of a playlist.
fn playlist_id(id: i64) -> String {
    format!("pl-{id}")
}

/// A playlist the listener keeps, by id; refused (error 50) for the ones the
/// station keeps.
fn parse_playlist(raw: &str) -> Result<i64, Fail> {
    match parse_any_playlist(raw)? {
        Some(id) => Ok(id),
        None => Err(Fail::new(
            50,
            "the station keeps this playlist (every separated track): it cannot be changed",
        )),
    }
}

/// A playlist id: `Some(id)` for a stored one, `None` for the station's
/// Karaoke and A cappella playlists.
fn parse_any_playlist(raw: &str) -> Result<Option<i64>, Fail> {
    let rest = raw
        .strip_prefix("pl-")
        .ok_or_else(|| Fail::not_found(format!("no playlist {raw:?}")))?;
    if VERSIONS.iter().any(|v| v.1 == rest) {
        return Ok(None);
    }
    rest.parse()
        .map(Some)
        .map_err(|_| Fail::not_found(format!("no playlist {raw:?}")))
}

/// Every separated track, by artist, album and number.
async fn separated(app: &App) -> Result<Vec<crate::app::library::Track>, Fail> {
    let filter = TrackFilter {
        separated: true,
        sort: Some(TrackSort::Artist),
        ..TrackFilter::default()
    };
    Ok(app.library().list_tracks(&filter, 0, 100_000).await?.0)
}

/// The station's playlist of `preset` versions, with its entries if asked.
async fn version_playlist(app: &App, preset: &str, entries: bool) -> Result<Value, Fail> {
    let tracks = separated(app).await?;
    let owner = app
        .subsonic_login()
        .get()
        .map(|l| l.user)
        .unwrap_or_default();
    let label = version_label(preset);
    let what = if preset == "karaoke" {
        "without its vocals"
    } else {
        "with only its vocals"
    };
    let mut v = json!({
        "id": format!("pl-{preset}"),
        "name": label,
        "comment": format!("Every separated track {what}, kept up to date by the station"),
        "owner": owner,
        "public": false,
        "songCount": tracks.len(),
        "duration": tracks.iter().filter_map(|t| t.duration_s).sum::<f64>().round() as i64,
        "created": iso8601(0),
        "changed": iso8601(tracks.iter().map(|t| t.created_at).max().unwrap_or(0)),
        "readonly": true,
    });
    if let Some(first) = tracks.first().and_then(|t| t.album_id) {
        v["coverArt"] = album_id(first).into();
    }
    if entries {
        let ids: Vec<i64> = tracks.iter().map(|t| t.id).collect();
        let uses = app.listening().track_use(&ids).await?;
        let none = crate::app::listening::TrackUse::default();
        let list: Vec<Value> = tracks
            .iter()
            .map(|t| version_song(t, uses.get(&t.id).unwrap_or(&none), preset))
            .collect();
        v["entry"] = list.into();
    }
    Ok(v)
}

/// A song id of the library, checked.
async fn track_of(app: &App, raw: &str) -> Result<i64, Fail> {
    // A version counts as its track (a play, a star).
    match Id::parse(raw) {
        Some(Id::Track(id) | Id::Version(id, _)) => {
            app.library().track(id).await?;
            Ok(id)
        }
        _ => Err(Fail::not_found(format!("no song {raw:?}"))),
    }
}

pub(crate) async fn scrobble(app: &App, params: &Params) -> Result<Reply, Fail> {
    let ids = params.all("id");
    if ids.is_empty() {
        return Err(Fail::missing("id"));
    }
    let times = params.all("time");
    let submission = params.flag("submission")?.unwrap_or(true);
    let player: String = params
        .get("c")
        .unwrap_or("a Subsonic player")
        .chars()
        .take(64)
        .collect();
    // Every id and time checked before any is recorded: a player that retries
    // after an error counts nothing twice.
    let mut plays = Vec::with_capacity(ids.len());
    for (i, raw) in ids.iter().enumerate() {
        let track = track_of(app, raw).await?;
        let at = times
            .get(i)
            .map(|t| {
                t.parse::<i64>()
                    .map_err(|_| Fail::bad("time", &format!("{t:?} is not milliseconds")))
            })
            .transpose()?;
        plays.push((track, at));
    }
    for (track, at) in plays {
        if submission {
            app.listening().played(track, at).await?;
        } else {
            app.listening().playing(track, &player);
        }
    }
    Ok(Reply::Empty)
}

pub(crate) async fn star(app: &App, params: &Params, on: bool) -> Result<Reply, Fail> {
    let mut what = Vec::new();
    // `id` may name a song, album or artist (ids here say which).
    for raw in params
        .all("id")
        .into_iter()
        .chain(params.all("albumId"))
        .chain(params.all("artistId"))
    {
        what.push(match Id::parse(raw) {
            Some(Id::Track(id) | Id::Version(id, _)) => {
                app.library().track(id).await?;
                Starred::Track(id)
            }
            Some(Id::Album(id)) => {
                app.catalog().album(id).await?;
                Starred::Album(id)
            }
            Some(Id::Artist(name)) => Starred::Artist(name),
            None => return Err(Fail::not_found(format!("no song, album or artist {raw:?}"))),
        });
    }
    if what.is_empty() {
        return Err(Fail::missing("id, albumId or artistId"));
    }
    for w in &what {
        if on {
            app.listening().star(w).await?;
        } else {
            app.listening().unstar(w).await?;
        }
    }
    Ok(Reply::Empty)
}

pub(crate) async fn starred(app: &App) -> Result<Reply, Fail> {
    let mut artists = Vec::new();
    let mut album_list = Vec::new();
    let mut tracks = Vec::new();
    let known = app.catalog().artists().await?;
    for (what, at) in app.listening().starred().await? {
        match what {
            Starred::Artist(name) => {
                let count = known
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(&name))
                    .map_or(0, |a| a.albums);
                artists.push(json!({
                    "id": artist_id(&name), "name": name, "albumCount": count,
                    "starred": iso8601(at),
                }));
            }
            Starred::Album(id) => match app.catalog().album(id).await {
                Ok(a) => album_list.push(a),
                Err(crate::AppError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            },
            Starred::Track(id) => match app.library().track(id).await {
                Ok(t) => tracks.push(t),
                Err(crate::AppError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
    Ok(Reply::Data(
        "starred2",
        json!({
            "artist": artists,
            "album": albums(app, &album_list).await?,
            "song": songs(app, &tracks).await?,
        }),
    ))
}

pub(crate) async fn now_playing(app: &App) -> Result<Reply, Fail> {
    let user = app
        .subsonic_login()
        .get()
        .map(|l| l.user)
        .unwrap_or_default();
    let mut entries = Vec::new();
    for n in app.listening().now_playing() {
        let Ok(t) = app.library().track(n.track_id).await else {
            continue;
        };
        let mut song = songs(app, &[t]).await?.pop().unwrap_or_default();
        if let Value::Object(m) = &mut song {
            m.insert("username".into(), user.clone().into());
            m.insert("minutesAgo".into(), n.minutes_ago.into());
            m.insert("playerId".into(), 0.into());
            m.insert("playerName".into(), n.player.into());
        }
        entries.push(song);
    }
    Ok(Reply::Data("nowPlaying", json!({"entry": entries})))
}

fn playlist_entity(app: &App, p: &Playlist) -> Value {
    let owner = app
        .subsonic_login()
        .get()
        .map(|l| l.user)
        .unwrap_or_default();
    compact(json!({
        "id": playlist_id(p.id),
        "name": p.name,
        "owner": owner,
        "public": p.public,
        "songCount": p.entries,
        "duration": p.duration_s.round() as i64,
        "created": iso8601(p.created_at),
        "changed": iso8601(p.changed_at),
        "comment": p.comment,
        "coverArt": p.first_album.map(album_id),
    }))
}

pub(crate) async fn playlists(app: &App) -> Result<Reply, Fail> {
    let mut list = Vec::new();
    for v in VERSIONS {
        list.push(version_playlist(app, v.1, false).await?);
    }
    let stored: Vec<Value> = app
        .listening()
        .playlists()
        .await?
        .iter()
        .map(|p| playlist_entity(app, p))
        .collect();
    list.extend(stored);
    Ok(Reply::Data("playlists", json!({"playlist": list})))
}

async fn playlist_reply(app: &App, id: i64) -> Result<Reply, Fail> {
    let (p, ids) = app.listening().playlist(id).await?;
    let mut tracks = Vec::with_capacity(ids.len());
    for t in ids {
        tracks.push(app.library().track(t).await?);
    }
    let mut v = playlist_entity(app, &p);
    if let Value::Object(m) = &mut v {
        m.insert("entry".into(), songs(app, &tracks).await?.into());
    }
    Ok(Reply::Data("playlist", v))
}

pub(crate) async fn playlist(app: &App, params: &Params) -> Result<Reply, Fail> {
    let raw = params.required("id")?;
    match parse_any_playlist(raw)? {
        Some(id) => playlist_reply(app, id).await,
        None => {
            let preset = VERSIONS
                .iter()
                .find(|v| raw.ends_with(v.1))
                .map_or("karaoke", |v| v.1);
            Ok(Reply::Data(
                "playlist",
                version_playlist(app, preset, true).await?,
            ))
        }
    }
}

/// The `songId`s of a request, checked.
async fn song_ids(app: &App, params: &Params, name: &str) -> Result<Vec<i64>, Fail> {
    let mut out = Vec::new();
    for raw in params.all(name) {
        out.push(track_of(app, raw).await?);
    }
    Ok(out)
}

/// A playlist name: one line of 1 to 200 characters.
fn check_name(name: &str) -> Result<&str, Fail> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Fail::bad("name", "one line of 1-200 characters"));
    }
    Ok(name)
}

/// The `name` of a request, checked, if given.
fn new_name(params: &Params) -> Result<Option<String>, Fail> {
    Ok(params
        .get("name")
        .map(check_name)
        .transpose()?
        .map(str::to_owned))
}

pub(crate) async fn create_playlist(app: &App, params: &Params) -> Result<Reply, Fail> {
    let tracks = song_ids(app, params, "songId").await?;
    // With playlistId, the playlist's songs are replaced (Subsonic's update).
    let id = if let Some(raw) = params.get("playlistId") {
        let id = parse_playlist(raw)?;
        let change = PlaylistChange {
            name: new_name(params)?,
            replace: Some(tracks),
            ..PlaylistChange::default()
        };
        app.listening().update_playlist(id, &change).await?;
        id
    } else {
        let name = check_name(params.required("name")?)?;
        app.listening().create_playlist(name, &tracks).await?
    };
    playlist_reply(app, id).await
}

pub(crate) async fn update_playlist(app: &App, params: &Params) -> Result<Reply, Fail> {
    let id = parse_playlist(params.required("playlistId")?)?;
    let mut remove = Vec::new();
    for raw in params.all("songIndexToRemove") {
        remove.push(
            raw.parse::<usize>().map_err(|_| {
                Fail::bad("songIndexToRemove", &format!("{raw:?} is not a position"))
            })?,
        );
    }
    let comment = params.get("comment");
    if comment.is_some_and(|c| c.chars().count() > 2000) {
        return Err(Fail::bad("comment", "at most 2000 characters"));
    }
    let change = PlaylistChange {
        name: new_name(params)?,
        comment: comment.map(str::to_owned),
        public: params.flag("public")?,
        add: song_ids(app, params, "songIdToAdd").await?,
        remove,
        replace: None,
    };
    match app.listening().update_playlist(id, &change).await {
        Err(crate::AppError::BadRequest(why)) => Err(Fail::bad("songIndexToRemove", &why)),
        other => Ok(other.map(|()| Reply::Empty)?),
    }
}

pub(crate) async fn delete_playlist(app: &App, params: &Params) -> Result<Reply, Fail> {
    let id = parse_playlist(params.required("id")?)?;
    app.listening().delete_playlist(id).await?;
    Ok(Reply::Empty)
}

/// `[mm:ss.xx]` at the start of an LRC line, in milliseconds.
fn lrc_time(line: &str) -> Option<(i64, &str)> {
    let rest = line.strip_prefix('[')?;
    let (stamp, text) = rest.split_once(']')?;
    let (m, s) = stamp.split_once(':')?;
    let m: i64 = m.trim().parse().ok().filter(|m| (0..100_000).contains(m))?;
    let s: f64 = s
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| (0.0..60.0).contains(s))?;
    Some((m * 60_000 + (s * 1000.0).round() as i64, text))
}

pub(crate) async fn lyrics(app: &App, params: &Params) -> Result<Reply, Fail> {
    let id = track_of(app, params.required("id")?).await?;
    let t = app.library().track(id).await?;
    let tags: serde_json::Map<String, Value> = serde_json::from_str(&t.tags).unwrap_or_default();
    let text = tag(
        &tags,
        &[
            "lyrics",
            "unsyncedlyrics",
            "unsynced lyrics",
            "uslt",
            "©lyr",
            "syncedlyrics",
        ],
    );
    let mut list = Vec::new();
    if let Some(text) = text {
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        let timed: Vec<(i64, &str)> = lines.iter().filter_map(|l| lrc_time(l)).collect();
        let synced =
            !timed.is_empty() && timed.len() * 2 >= lines.iter().filter(|l| !l.is_empty()).count();
        let line: Vec<Value> = if synced {
            timed
                .iter()
                .map(|(start, text)| json!({"start": start, "value": text.trim()}))
                .collect()
        } else {
            lines.iter().map(|l| json!({"value": l})).collect()
        };
        list.push(json!({
            "displayArtist": t.artist,
            "displayTitle": t.title,
            "lang": "xxx",
            "synced": synced,
            "line": line,
        }));
    }
    Ok(Reply::Data("lyricsList", json!({"structuredLyrics": list})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrc_stamps_are_read_in_milliseconds() {
        assert_eq!(lrc_time("[01:02.50]Hello"), Some((62_500, "Hello")));
        assert_eq!(lrc_time("[00:00]x"), Some((0, "x")));
        assert_eq!(lrc_time("no stamp"), None);
        assert_eq!(lrc_time("[ar:Someone]"), None);
        assert_eq!(lrc_time("[99999999999999999:00]x"), None);
        assert_eq!(lrc_time("[0:inf]x"), None);
        assert_eq!(lrc_time("[-1:00]x"), None);
    }
}
