// A generated music library for the browser tests, made with ffmpeg (an
// oracle nobody here wrote): three albums whose cover art is in the files
// (embedded) or beside them (cover.jpg, front.png), one on two discs, tagged
// with album artist, genre, year, disc and track numbers. Each track is a
// short sine, so its loudness is known.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function ffmpeg(args) {
  const r = spawnSync('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...args]);
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${r.stderr}`);
}

/// A picture: `colour` fills it, `size` a side.
function picture(path, colour, size = 800) {
  ffmpeg(['-f', 'lavfi', '-i', `color=c=${colour}:s=${size}x${size}`, '-frames:v', '1', path]);
}

/// A FLAC of `seconds` of an `hz` sine at `dbfs` (peak), with `tags` and
/// optionally an embedded `cover` picture.
function track(path, { seconds = 4, hz = 440, dbfs = -20, tags = {}, cover = null }) {
  const amp = 10 ** (dbfs / 20);
  const args = ['-f', 'lavfi', '-i', `aevalsrc=${amp}*sin(2*PI*${hz}*t)|${amp}*sin(2*PI*${hz}*t):s=44100:d=${seconds}`];
  if (cover) args.push('-i', cover, '-map', '0:a', '-map', '1:v', '-c:v', 'png', '-disposition:v', 'attached_pic');
  for (const [k, v] of Object.entries(tags)) args.push('-metadata', `${k}=${v}`);
  args.push('-c:a', 'flac', path);
  ffmpeg(args);
}

export const ALBUMS = [
  {
    dir: 'Kai Westlund - Legends of the North', album: 'Legends of the North', artist: 'Kai Westlund', year: 2019,
    genre: 'Folk', cover: 'folder', discs: [['Frozen Fjord', 'Long Night'], ['Dawn Over Ice', 'The Last Saga']],
  },
  {
    dir: 'Aurora Ensemble - Quiet Rooms', album: 'Quiet Rooms', artist: 'Aurora Ensemble', year: 2021,
    genre: 'Ambient', cover: 'embedded', discs: [['Felt', 'Wool', 'Linen']],
  },
  {
    dir: 'Various - Battle Hymns', album: 'Battle Hymns', artist: 'Various Artists', year: 2003,
    genre: 'Soundtrack', cover: 'front', discs: [['Siege', 'Charge']], trackArtists: ['Anna Berg', 'Tom Reyes'],
  },
];

/// Writes the library into `root`; returns what it wrote: per album its
/// tracks in play order with their tags.
export async function makeLibrary(root) {
  const made = [];
  const colours = { folder: 'steelblue', embedded: 'darkred', front: 'darkgreen' };
  const scratch = await mkdtemp(join(tmpdir(), 'sonantica-covers-')); // outside the library
  for (const [n, a] of ALBUMS.entries()) {
    const dir = join(root, a.dir);
    await mkdir(dir, { recursive: true });
    let cover = null;
    if (a.cover === 'folder') picture(join(dir, 'cover.jpg'), colours.folder);
    if (a.cover === 'front') picture(join(dir, 'front.png'), colours.front, 300);
    if (a.cover === 'embedded') { cover = join(scratch, `embedded-${n}.png`); picture(cover, colours.embedded, 500); }
    const tracks = [];
    // Files written in an order unlike the play order (last disc first).
    for (const [d, titles] of [...a.discs.entries()].reverse()) {
      for (const [i, title] of [...titles.entries()].reverse()) {
        const tags = {
          title, album: a.album, album_artist: a.artist, artist: a.trackArtists?.[i] ?? a.artist,
          genre: a.genre, date: String(a.year), track: `${i + 1}/${titles.length}`, disc: `${d + 1}/${a.discs.length}`,
        };
        track(join(dir, `${String(titles.length - i).padStart(2, '0')} ${title}.flac`), { tags, hz: 330 + 110 * i, cover });
        tracks.unshift({ title, disc: d + 1, track: i + 1, artist: tags.artist });
      }
    }
    made.push({ ...a, colour: colours[a.cover], tracks });
  }
  return made;
}
