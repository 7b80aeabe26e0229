// Jobs: every separation queued, running (progress and time left), done or
// failed (with the reason), with Cancel; and a count of active jobs on the
// Jobs tab that keeps itself up to date while any job is active.

import { $, el, fmtTime, toast } from './ui.js';
import { api, json } from './api.js';
import { state } from './state.js';
import * as router from './router.js';

const titles = new Map(); // track id → title
let timer = null;
let active = new Set();
let onFinish = () => {};

/// Called with the track id of every job that finishes while the page watches.
export const whenFinished = (f) => { onFinish = f; };

async function trackTitle(id) {
  if (!titles.has(id)) {
    titles.set(id, json(`/api/tracks/${id}`).then((t) => t.title).catch(() => `track ${id}`));
  }
  return titles.get(id);
}

/// A remote worker's name; the station's own workers go unnamed.
const where = (worker) => (worker && !worker.startsWith('local:') ? `on ${worker}` : null);

/// When a job finished (or started), as a time of day.
function when(j) {
  const t = j.finished_at ?? j.started_at;
  if (!t) return null;
  const d = new Date(t);
  return `${j.finished_at ? 'finished' : 'started'} ${d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
}

/// The engine a job ran on, when it was not the CPU (or the GPU was given
/// up): the adapter's name only, its full description in the tooltip.
function engine(j) {
  if (!j.device || j.device === 'CPU') return null;
  return j.device.startsWith('GPU: ') ? `on ${j.device.slice(5).replace(/ \(.*$/, '')}` : j.device;
}

const STATUS = { queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' };

async function jobRow(j) {
  const name = await trackTitle(j.track_id);
  const li = el('li', { data: { id: j.id, status: j.status } });
  const what = el('div', { class: 'what' },
    el('a', { href: `#/tracks?play=${j.track_id}`, class: 'title', text: name, on: { click: (e) => { e.preventDefault(); import('./player.js').then((p) => p.load(j.track_id)); } } }),
    el('span', { class: 'meta', text: [j.model, STATUS[j.status] ?? j.status, where(j.worker), engine(j), when(j)].filter(Boolean).join(' · '), attrs: j.device ? { title: j.device } : {} }));
  li.append(what);
  if (j.status === 'running' || j.status === 'queued') {
    const bar = el('progress', { max: 1, value: j.progress, attrs: { 'aria-label': `Separating ${name}` } });
    const left = j.status === 'running'
      ? (j.progress >= 0.999 ? 'writing the stems…' : j.eta_s != null ? `${fmtTime(j.eta_s)} left` : 'starting…')
      : 'waiting';
    li.append(el('span', { class: 'progress' }, bar, el('span', { class: 'meta', text: ` ${Math.round(j.progress * 100)} % · ${left}` })));
    li.append(el('button', {
      class: 'cancel', text: 'Cancel', attrs: { 'aria-label': `Cancel the separation of ${name}` },
      on: {
        click: async () => {
          try { await api(`/api/jobs/${j.id}`, { method: 'DELETE' }); } catch (e) { toast(`Cannot cancel: ${e.message}`); }
          poll();
        },
      },
    }));
  } else if (j.status === 'failed') {
    li.append(el('span', { class: 'error', text: j.error || 'failed' }));
  }
  return li;
}

/// The jobs view (#/jobs).
export async function jobsView() {
  const jobs = await json('/api/jobs?limit=100');
  const list = el('ol', { id: 'jobs' }, ...(await Promise.all(jobs.map(jobRow))));
  $('#view').replaceChildren(jobs.length ? list : el('p', { class: 'meta', text: 'No jobs yet: press Separate on a track or an album.' }));
  update(jobs);
}

function update(jobs) {
  const now = new Set(jobs.filter((j) => j.status === 'queued' || j.status === 'running').map((j) => j.id));
  for (const j of jobs) {
    if (active.has(j.id) && !now.has(j.id)) {
      if (j.status === 'done') trackTitle(j.track_id).then((n) => toast(`Stems ready: ${n}`, 'info'));
      if (j.status === 'failed') toast(`Separation failed: ${j.error}`);
      onFinish(j.track_id, j);
    }
  }
  active = now;
  $('#jobs-badge').textContent = now.size ? ` (${now.size})` : '';
  clearTimeout(timer);
  timer = now.size ? setTimeout(poll, 1000) : null;
}

async function poll() {
  try {
    if (router.current().view === 'jobs') await jobsView();
    else update(await json('/api/jobs?limit=100'));
  } catch {
    // unreachable or logged out: the banner or login says so; try again later
    clearTimeout(timer);
    timer = setTimeout(poll, 3000);
  }
}

/// Starts watching jobs (after queueing one, and at start).
export function watchJobs() {
  poll();
}

