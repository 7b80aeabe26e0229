// Small DOM and formatting helpers shared by every module of the Studio.

export const $ = (s, root = document) => root.querySelector(s);
export const $$ = (s, root = document) => [...root.querySelectorAll(s)];

/// An element with properties (`text` sets textContent, `class` the class name,
/// `attrs` attributes, `on` listeners) and children.
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k === 'attrs') for (const [a, x] of Object.entries(v)) { if (x != null) e.setAttribute(a, x); }
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === 'data') Object.assign(e.dataset, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

/// 3:07, or 2:04:08 from an hour on.
export const fmtTime = (s) => {
  if (!Number.isFinite(s) || s < 0) return '–';
  const sec = String(Math.floor(s % 60)).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}:${sec}`;
  return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${sec}`;
};

/// A number with `digits` decimals and a unit; "–" when there is none.
export const fmt = (v, digits, unit) => (v == null || Number.isNaN(v) ? '–' : `${v.toFixed(digits)}${unit}`);

/// A level reading: below the meter's floor (silence reads −∞ dB inside the
/// meter, or a huge negative number from a log of almost nothing) it shows "−∞".
export const fmtLevel = (v, digits, unit, floor = -70) => {
  if (v == null || Number.isNaN(v)) return '–';
  if (v < floor) return `−∞${unit}`;
  return `${v.toFixed(digits)}${unit}`;
};

export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/// A short message at the bottom of the screen that goes by itself: every
/// failed request says what went wrong here (never an `alert()`).
export function toast(text, kind = 'error') {
  const box = $('#toasts');
  const t = el('div', { class: `toast ${kind}`, text });
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
  return t;
}
