#!/usr/bin/env python3
"""A Subsonic player's view of the station, through py-opensonic.

Run by crates/cli/tests/subsonic_cli.rs as
    player.py BASE_URL EXPECTED_JSON
against a running `sonantica serve` whose library holds the albums described
in EXPECTED_JSON (made with ffmpeg). Every check raises on failure; the last
line says "all checks passed".
"""
import asyncio
import hashlib
import json
import subprocess
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from libopensonic import AsyncConnection, errors

NS = "{http://subsonic.org/restapi}"


def track_album_id(track):
    return track["album_id"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def jpeg_size(data):
    """(width, height) of a JPEG, from its SOF marker."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i < len(data):
        assert data[i] == 0xFF, f"bad JPEG marker at {i}"
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            h = int.from_bytes(data[i + 5:i + 7], "big")
            w = int.from_bytes(data[i + 7:i + 9], "big")
            return w, h
        i += 2 + length
    raise AssertionError("no SOF in JPEG")


def raw(base, method, params, headers=None, data=None):
    """One request without the client library: (status, headers, body)."""
    url = f"{base}/rest/{method}?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


async def expect_error(code, what, coro):
    try:
        await coro
    except errors.SonicError as e:
        kind = errors.getExcByCode(code)
        check(type(e) is kind, f"{what}: error {code} ({e})")
        return
    raise AssertionError(f"{what}: no error")


async def main(base, expected):
    host, port = base.rsplit(":", 1)
    user, password = expected["user"], expected["password"]
    albums = expected["albums"]
    songs = [t for a in albums for t in a["tracks"]]

    # Token authentication (md5 of password and salt), POSTed forms with .view.
    conn = AsyncConnection(host, user, password, port=int(port), app_name="sonantica-test")
    # p=enc:HEX, GET, no .view.
    legacy = AsyncConnection(host, user, password, port=int(port), legacy_auth=True,
                             use_get=True, use_views=False)
    try:
        check(await conn.ping(), "ping with a token and salt (POST, .view)")
        check(await legacy.ping(), "ping with p=enc:HEX (GET)")
        status, _, body = raw(base, "ping", {"u": user, "p": password, "f": "json", "v": "1.16.1", "c": "t"})
        reply = json.loads(body)["subsonic-response"]
        check(status == 200 and reply["status"] == "ok", "ping with a plain p")
        check(reply["version"] == "1.16.1" and reply["openSubsonic"] is True
              and reply["type"] == "sonantica" and reply["serverVersion"], "the envelope names the server")

        # Refusals.
        wrong = AsyncConnection(host, user, "not it", port=int(port))
        await expect_error(40, "a wrong password", wrong.ping())
        await wrong.cleanup()
        stranger = AsyncConnection(host, "mallory", password, port=int(port))
        await expect_error(40, "a wrong user name", stranger.ping())
        await stranger.cleanup()
        _, _, body = raw(base, "ping", {"f": "json"})
        check(json.loads(body)["subsonic-response"]["error"]["code"] == 10, "no credentials: error 10")
        _, _, body = raw(base, "ping", {"f": "json", "apiKey": "k"})
        check(json.loads(body)["subsonic-response"]["error"]["code"] == 44, "an unknown API key: error 44")
        _, _, body = raw(base, "ping", {"f": "json", "u": user, "p": password, "t": "x", "s": "y"})
        check(json.loads(body)["subsonic-response"]["error"]["code"] == 43, "token and password both: error 43")
        status, _, body = raw(base, "getNoSuchThing", {"f": "json", "u": user, "p": password})
        check(status == 404 and json.loads(body)["subsonic-response"]["status"] == "failed",
              "an unknown method: 404 with a Subsonic error")

        # What the server offers, before signing in.
        anon = AsyncConnection(host, "nobody", "x", port=int(port))
        exts = await anon.get_open_subsonic_extensions()
        await anon.cleanup()
        check(any(e.name == "formPost" for e in exts), "getOpenSubsonicExtensions lists formPost, no login needed")
        # An API key made in the Studio (apiKeyAuthentication), then revoked there.
        check(any(e.name == "apiKeyAuthentication" for e in exts), "apiKeyAuthentication is offered")
        keyed = AsyncConnection(host, api_key=expected["api_key"], port=int(port))
        check(await keyed.ping(), "ping with an API key")
        check((await keyed.token_info()).username == user, "tokenInfo names the user")
        req = urllib.request.Request(f"{base}/api/subsonic/keys/{expected['api_key_id']}", method="DELETE",
                                     headers={"Authorization": f"Bearer {expected['token']}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            check(r.status == 204, "the Studio revokes the key")
        await expect_error(44, "a revoked API key", keyed.ping())
        await keyed.cleanup()
        lic = await conn.get_license()
        check(lic["license"]["valid"] is True, "getLicense is valid")
        # py-opensonic 10.4.1 reads musicFolders as a bare list, which is not
        # the API's shape (musicFolders.musicFolder[], as Navidrome sends it
        # too): this one is checked without it.
        _, _, body = raw(base, "getMusicFolders", {"u": user, "p": password, "f": "json"})
        folders = json.loads(body)["subsonic-response"]["musicFolders"]["musicFolder"]
        check(len(folders) == 1 and folders[0]["id"] == 1, "one music folder")
        me = await conn.get_user(user)
        check(me.username == user and me.stream_role, "getUser")

        # Artists and albums (ID3).
        artists = await conn.get_artists()
        by_name = {a.name: a for idx in artists.index for a in idx.artist}
        for a in albums:
            check(a["artist"] in by_name, f"getArtists lists {a['artist']}")
        letters = {idx.name: [x.name for x in idx.artist] for idx in artists.index}
        check("The Beatniks" in letters.get("B", []), "'The Beatniks' is filed under B (article ignored)")
        album_ids = {}
        for a in albums:
            art = await conn.get_artist(by_name[a["artist"]].id)
            check([x.name for x in art.album] == [a["title"]], f"getArtist({a['artist']}) has its album")
            album_ids[a["title"]] = art.album[0].id
            full = await conn.get_album(art.album[0].id)
            check(full.song_count == len(a["tracks"]) and full.year == a["year"] and full.genre == a["genre"],
                  f"getAlbum({a['title']}): count, year, genre")
            check([s.title for s in full.song] == [t["title"] for t in a["tracks"]],
                  f"getAlbum({a['title']}) in track order")
            check([s.track for s in full.song] == [t["track"] for t in a["tracks"]], "track numbers")
            for s, t in zip(full.song, a["tracks"]):
                check(abs(s.duration - t["seconds"]) <= 1 and s.suffix == a["suffix"]
                      and s.album_id == full.id and s.artist == a["artist"],
                      f"{t['title']}: duration, suffix, album and artist")
                t["id"] = s.id
            for t in a["tracks"]:
                t["album_id"] = full.id
            one = await conn.get_song(full.song[0].id)
            check(one.title == a["tracks"][0]["title"], f"getSong({a['tracks'][0]['title']})")
        await expect_error(70, "getAlbum of an unknown id", conn.get_album("al-999999"))
        await expect_error(70, "getSong of an album id", conn.get_song(album_ids[albums[0]["title"]]))

        # Folders (getIndexes, getMusicDirectory): artist, album, songs.
        indexes = await conn.get_indexes()
        names = [a.name for idx in indexes.index for a in idx.artist]
        check(sorted(names) == sorted({a["artist"] for a in albums}), "getIndexes lists every artist")
        aurora = next(a for idx in indexes.index for a in idx.artist if a.name == albums[0]["artist"])
        d = await conn.get_music_directory(aurora.id)
        check([c.title for c in d.child] == [albums[0]["title"]] and d.child[0].is_dir, "artist directory holds the album")
        d2 = await conn.get_music_directory(d.child[0].id)
        check([c.title for c in d2.child] == [t["title"] for t in albums[0]["tracks"]], "album directory holds the songs")

        # Album lists.
        titles = lambda lst: [x.name for x in lst]
        by_name_list = await conn.get_album_list2("alphabeticalByName", size=10)
        check(titles(by_name_list) == sorted(a["title"] for a in albums), "alphabeticalByName")
        by_artist = await conn.get_album_list2("alphabeticalByArtist", size=10)
        check(titles(by_artist) == [a["title"] for a in sorted(albums, key=lambda a: a["artist"].lower())],
              "alphabeticalByArtist")
        newest = await conn.get_album_list2("newest", size=10)
        check(sorted(titles(newest)) == sorted(a["title"] for a in albums), "newest lists every album")
        rand = await conn.get_album_list2("random", size=10)
        check(sorted(titles(rand)) == sorted(a["title"] for a in albums), "random lists every album once")
        page = await conn.get_album_list2("alphabeticalByName", size=1, offset=1)
        check(titles(page) == sorted(a["title"] for a in albums)[1:2], "size and offset page the list")
        years = await conn.get_album_list2("byYear", from_year=2020, to_year=2030)
        check(titles(years) == [a["title"] for a in albums if 2020 <= a["year"] <= 2030], "byYear 2020-2030")
        genre = await conn.get_album_list2("byGenre", genre="rock")
        check(titles(genre) == [a["title"] for a in albums if a["genre"] == "Rock"], "byGenre (any case)")

        # Genres, random songs, songs by genre.
        genres = {g.value: g for g in await conn.get_genres()}
        for a in albums:
            g = genres.get(a["genre"])
            check(g is not None and g.song_count == len(a["tracks"]) and g.album_count == 1,
                  f"getGenres counts {a['genre']}")
        rs = await conn.get_random_songs(size=3)
        check(len(rs) == 3 and len({s.id for s in rs}) == 3, "getRandomSongs size 3, no repeats")
        amb = await conn.get_songs_by_genre("Ambient", count=10)
        check(sorted(s.title for s in amb) == sorted(t["title"] for t in albums[0]["tracks"]), "getSongsByGenre")

        # Search: an empty query lists everything (clients sync that way).
        every = await conn.search3("", artist_count=100, album_count=100, song_count=100)
        check(len(every.song) == len(songs) and len(every.album) == len(albums)
              and len(every.artist) == len({a["artist"] for a in albums}),
              f"search3 with an empty query lists all ({len(every.artist)} artists, {len(every.album)} albums, "
              f"{len(every.song)} songs)")
        hit = await conn.search3("last tra")
        check([s.title for s in hit.song] == ["Last Train Home"], "search3 by word prefixes finds the song")
        hit = await conn.search3("northern")
        check([a.name for a in hit.album] == ["Northern Lights"], "search3 finds the album by its title")
        hit = await conn.search3("aurora")
        check([a.name for a in hit.artist] == ["Aurora Band"], "search3 finds the artist")

        # stream and download: the file's bytes; a Range request.
        for t in songs:
            want = open(t["file"], "rb").read()
            res = await conn.stream(t["id"])
            got = await res.read()
            check(got == want, f"stream {t['title']}: the file's {len(want)} bytes")
        t = songs[0]
        want = open(t["file"], "rb").read()
        res = await legacy.stream(t["id"], byte_range="bytes=100-199")
        check(res.status == 206 and await res.read() == want[100:200], "stream with Range: 206 and those bytes")
        res = await conn.download(songs[-1]["id"])
        check(await res.read() == open(songs[-1]["file"], "rb").read()
              and "attachment" in res.headers.get("Content-Disposition", ""), "download: the file as an attachment")

        # Transcoding: Ogg Opus of the right length (ffmpeg decodes it).
        def opus_samples(data, name):
            path = f"{expected['work']}/{name}.opus"
            open(path, "wb").write(data)
            codec = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of",
                                    "csv=p=0", path], check=True, capture_output=True, text=True).stdout.strip()
            pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "s16le", "-ac", "2", "-"],
                                 check=True, capture_output=True).stdout
            return codec, len(pcm) // 4
        t = songs[0]
        res = await conn.stream(t["id"], tformat="opus")
        check(res.headers["Content-Type"] == "audio/ogg", "format=opus: audio/ogg")
        codec, n = opus_samples(await res.read(), "whole")
        check(codec == "opus" and n == round(t["seconds"] * 48000),
              f"format=opus: Opus that decodes to the track's {n} samples at 48 kHz")
        res = await conn.stream(t["id"], tformat="opus", time_offset=1)
        codec, n = opus_samples(await res.read(), "offset")
        check(n == round((t["seconds"] - 1) * 48000), f"timeOffset=1: one second less ({n} samples)")
        mp3 = songs[-1]
        res = await conn.stream(mp3["id"], max_bit_rate=64)
        codec, n = opus_samples(await res.read(), "capped")
        check(res.headers["Content-Type"] == "audio/ogg" and codec == "opus",
              "maxBitRate below the file's (128 kbps mp3): transcoded")
        res = await conn.stream(mp3["id"], tformat="mp3")
        check(await res.read() == open(mp3["file"], "rb").read(), "format=mp3 (not made here): the file itself")
        res = await conn.stream(mp3["id"], max_bit_rate=32, tformat="raw")
        check(await res.read() == open(mp3["file"], "rb").read(), "format=raw: the file, whatever maxBitRate says")
        exts = {e.name for e in await conn.get_open_subsonic_extensions()}
        check("transcodeOffset" in exts, "transcodeOffset is offered")

        # Covers: a folder's cover.jpg and a picture embedded in mp3s.
        for a in albums:
            aid = album_ids[a["title"]]
            res = await conn.get_cover_art(aid)
            full = await res.read()
            check(res.headers["Content-Type"] == "image/jpeg" and jpeg_size(full) == (600, 480),
                  f"getCoverArt {a['title']} ({a['tracks'][0]['file'].rsplit('.', 1)[1]}): 600x480 JPEG")
            res = await conn.get_cover_art(aid, size=100)
            check(jpeg_size(await res.read()) == (100, 80), f"getCoverArt {a['title']} size 100: 100x80")
        res = await conn.get_cover_art(songs[0]["id"], size=50)
        check(jpeg_size(await res.read()) == (50, 40), "getCoverArt of a song: its album's cover")

        # Scrobbles: play counts, frequent and recent albums, now playing.
        first, second = albums[0], albums[1]
        for _ in range(3):
            check(await conn.scrobble(second["tracks"][0]["id"]), "scrobble a play")
        await conn.scrobble(first["tracks"][1]["id"], listen_time=1_600_000_000)  # seconds; sent as ms
        played = await conn.get_song(second["tracks"][0]["id"])
        check(played.play_count == 3 and played.played is not None, "a song's playCount and played")
        freq = await conn.get_album_list2("frequent")
        check(titles(freq) == [second["title"], first["title"]], "frequent: most played album first")
        recent = await conn.get_album_list2("recent")
        check(titles(recent) == [second["title"], first["title"]], "recent: last played album first")
        await conn.scrobble(first["tracks"][2]["id"], submission=False)
        now = await conn.get_now_playing()
        check([n.title for n in now] == [first["tracks"][2]["title"]] and now[0].username == user,
              "getNowPlaying shows what a player started")
        await expect_error(70, "scrobble of an unknown song", conn.scrobble("tr-999999"))

        # Stars.
        check(await conn.star(sids=[first["tracks"][0]["id"]], album_ids=[album_ids[second["title"]]],
                              artist_ids=[by_name[first["artist"]].id]), "star a song, an album and an artist")
        st = await conn.get_starred2()
        check([s.title for s in st.song] == [first["tracks"][0]["title"]]
              and [a.name for a in st.album] == [second["title"]]
              and [a.name for a in st.artist] == [first["artist"]], "getStarred2 lists them")
        check(titles(await conn.get_album_list2("starred")) == [second["title"]], "starred album list")
        check((await conn.get_song(first["tracks"][0]["id"])).starred is not None, "the song says it is starred")
        await conn.unstar(sids=[first["tracks"][0]["id"]])
        st = await conn.get_starred2()
        check(not st.song and len(st.album) == 1, "unstar takes the song's star off, the rest stay")

        # Playlists round trip.
        ids = [t["id"] for t in songs]
        check(await conn.create_playlist(name="Road trip", song_ids=[ids[3], ids[0], ids[3]]),
              "createPlaylist with a song twice")
        kept = ["Karaoke", "A cappella"]  # the station's own, listed first
        pls = await conn.get_playlists()
        check([p.name for p in pls] == kept + ["Road trip"] and pls[2].song_count == 3, "getPlaylists")
        pls = pls[2:]
        pid = pls[0].id
        pl = await conn.get_playlist(pid)
        check([e.id for e in pl.entry] == [ids[3], ids[0], ids[3]], "getPlaylist keeps the order and repeats")
        check(await conn.update_playlist(pid, name="Road trip 2", comment="for the car",
                                         song_ids_to_add=[ids[1]], song_indices_to_remove=[0, 2]),
              "updatePlaylist: rename, comment, add one, remove two")
        pl = await conn.get_playlist(pid)
        check(pl.name == "Road trip 2" and pl.comment == "for the car" and [e.id for e in pl.entry] == [ids[0], ids[1]],
              "the playlist changed as asked")
        check(await conn.create_playlist(playlist_id=pid, song_ids=[ids[4]]), "createPlaylist with playlistId replaces")
        check([e.id for e in (await conn.get_playlist(pid)).entry] == [ids[4]], "the songs were replaced")
        await expect_error(0, "removing an entry that is not there",
                           conn.update_playlist(pid, song_indices_to_remove=[5]))
        check(await conn.delete_playlist(pid), "deletePlaylist")
        check([p.name for p in await conn.get_playlists()] == kept, "only the station's playlists left")
        await expect_error(70, "getPlaylist of a deleted one", conn.get_playlist(pid))

        # The station's playlists of separated tracks: Karaoke and A cappella.
        pls = {p.name: p for p in await conn.get_playlists()}
        check(pls["Karaoke"].song_count == 1 and pls["A cappella"].song_count == 1,
              "getPlaylists has Karaoke and A cappella with the separated track")
        track = next(t for t in songs if t["title"] == expected["separated"])
        for name in ("Karaoke", "A cappella"):
            pl = await conn.get_playlist(pls[name].id)
            check([e.title for e in pl.entry] == [f"{track['title']} ({name})"],
                  f"{name}: the track, its title marked")
            entry = pl.entry[0]
            check(entry.album_id == track_album_id(track) and entry.cover_art and entry.suffix == "flac",
                  f"{name}: in its album, with its cover, as FLAC")
            res = await conn.stream(entry.id)
            data = await res.read()
            path = f"{expected['work']}/{name}.flac"
            open(path, "wb").write(data)
            probe = json.loads(subprocess.run(
                ["ffprobe", "-v", "error", "-of", "json", "-show_entries",
                 "stream=duration_ts,sample_rate,channels:format_tags=title,version", path],
                check=True, capture_output=True, text=True).stdout)
            stream = probe["streams"][0]
            tags = {k.lower(): v for k, v in probe["format"].get("tags", {}).items()}
            check(stream["duration_ts"] == round(track["seconds"] * 44100) and stream["channels"] == 2,
                  f"{name}: streams FLAC that ffprobe reads as {stream['duration_ts']} samples, the track's length")
            check(tags.get("title") == f"{track['title']} ({name})" and tags.get("version") == name,
                  f"{name}: tagged as the track, title marked ({tags.get('title')})")
            again = await (await conn.stream(entry.id)).read()
            check(again == data, f"{name}: rendered once, the same bytes again")
        ka = (await conn.get_playlist(pls["Karaoke"].id)).entry[0].id
        await expect_error(50, "changing the Karaoke playlist", conn.update_playlist(pls["Karaoke"].id, name="x"))
        before = (await conn.get_song(track["id"])).play_count
        await conn.scrobble(ka)
        check((await conn.get_song(track["id"])).play_count == before + 1, "a Karaoke play counts for the track")

        # Lyrics from the tags (LRC: timed lines).
        lyr = await conn.get_lyrics_by_song_id(first["tracks"][0]["id"])
        check(len(lyr) == 1 and lyr[0].synced and [(l.start, l.value) for l in lyr[0].line]
              == [(500, f"{first['tracks'][0]['title']} falls"), (1750, "on the snow")], "getLyricsBySongId (synced)")
        check(await conn.get_lyrics_by_song_id(first["tracks"][1]["id"]) == [], "no lyrics tag, no lyrics")

        # Integers where players decode integers; CORS for players in a browser.
        _, _, body = raw(base, "getSong", {"u": user, "p": password, "f": "json", "id": songs[0]["id"]})
        song = json.loads(body)["subsonic-response"]["song"]
        check(all(isinstance(song[k], int) for k in ("bitRate", "duration", "size", "track")),
              f"bitRate, duration, size and track are integers ({song['bitRate']})")
        _, headers, _ = raw(base, "ping", {"u": user, "p": password}, headers={"Origin": "https://player.example"})
        check(headers.get("access-control-allow-origin") == "*", "CORS: any origin may call /rest")
        check(titles(await conn.get_album_list2("highest")) == titles(freq), "highest: the most played (no ratings)")

        # XML, the default format, and jsonp.
        status, headers, body = raw(base, "getAlbum.view", {"u": user, "p": password, "v": "1.16.1", "c": "t",
                                                           "id": album_ids[albums[1]["title"]]})
        root = ET.fromstring(body)
        check(headers["content-type"].startswith("text/xml") and root.tag == NS + "subsonic-response"
              and root.get("status") == "ok" and root.get("openSubsonic") == "true", "XML envelope")
        album = root.find(NS + "album")
        check(album is not None and album.get("name") == albums[1]["title"]
              and [s.get("title") for s in album.findall(NS + "song")] == [t["title"] for t in albums[1]["tracks"]],
              "XML getAlbum: attributes and repeated song elements")
        status, headers, body = raw(base, "getGenres", {"u": user, "p": password, "v": "1.16.1", "c": "t"})
        gs = {g.text: g.get("songCount") for g in ET.fromstring(body).iter(NS + "genre")}
        check(gs.get("Rock") == "2", "XML getGenres: the name is the element's text")
        status, headers, body = raw(base, "ping", {"u": user, "p": password, "f": "jsonp", "callback": "cb"})
        check(body.startswith(b"cb(") and body.endswith(b");"), "jsonp wraps the JSON in the callback")
        status, headers, body = raw(base, "ping", {"f": "json"}, data=urllib.parse.urlencode(
            {"u": user, "t": hashlib.md5((password + "abc").encode()).hexdigest(), "s": "abc"}).encode())
        check(json.loads(body)["subsonic-response"]["status"] == "ok", "credentials in a POSTed form (formPost)")

        # Back-off: after repeated wrong passwords even the right one waits.
        hammer = AsyncConnection(host, user, "nope", port=int(port))
        for _ in range(6):
            try:
                await hammer.ping()
            except errors.SonicError:
                pass
        await hammer.cleanup()
        try:
            await conn.ping()
            raise AssertionError("the right password was taken during the back-off")
        except errors.CredentialError as e:
            check("try again" in str(e), f"after six wrong passwords the address must wait ({e})")
    finally:
        await conn.cleanup()
        await legacy.cleanup()
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.load(open(sys.argv[2]))))
