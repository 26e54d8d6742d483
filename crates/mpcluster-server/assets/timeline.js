// The timeline of one LUN (#/lun/<wwid>): its events over the last 15 minutes (the scale of
// the flapping window), hour, day or week, drawn as horizontal bands (SVG, no library): one
// for the cluster state, coloured per state between the LUN's events (the matrix's colours,
// with the state's icon where a segment is wide enough), and one per node from its cell
// events, over a time axis; the event list below, newest first. Followed with `after=` every
// few seconds while shown.
//
// A band's state between two events is the earlier event's `after` (or the later one's
// `before`); before the first event in the range it is that event's `before`; after the last
// one, and on a band without events, it is what the status says now.

import { api } from './api.js';
import { change, flapLine, readEventPage, readFlapping, shortTime } from './events.js';
import { STATES, badge, clock, fmtTime, h, naturalCompare, normState, replace, setText, str } from './util.js';

const RANGES = [
  { key: '15m', label: '15 min', secs: 900 },
  { key: '1h', label: '1 h', secs: 3600 },
  { key: '24h', label: '24 h', secs: 86400 },
  { key: '7d', label: '7 d', secs: 7 * 86400 },
];
const POLL_MS = 3000;
const LIMIT = 5000;
const LIST_MAX = 500;
const SVG = 'http://www.w3.org/2000/svg';

// Module state: the chosen range survives page switches.
const saved = { range: '1h' };

let ui = null;
let generation = 0;
let timer = 0;
let data = null; // { wwid, events, lastSeq, truncated, current, status, at }

/** An SVG element: attributes set with setAttribute, children appended (strings as text). */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.setAttribute('class', v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) throw new Error('inline handlers are not used: ' + k);
      else el.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const rangeOf = (key) => RANGES.find((r) => r.key === key) || RANGES[1];

export function mount(main, params) {
  generation += 1;
  const wwid = params.wwid || '';
  data = null;
  const buttons = RANGES.map((r) => h('button', {
    type: 'button', class: 'range', id: `range-${r.key}`, dataset: { range: r.key },
    'aria-pressed': String(r.key === saved.range),
  }, r.label));
  const title = h('h1', { id: 'lun-title' }, 'LUN ', h('span', { class: 'name', text: wwid }));
  const state = h('span', { id: 'lun-state' });
  const flap = h('p', { id: 'lun-flap', class: 'banner warn', hidden: true });
  const status = h('p', { id: 'timeline-status', class: 'help', 'aria-live': 'polite', text: 'Loading the events…' });
  const chart = h('div', { id: 'timeline', class: 'timeline', role: 'img', 'aria-label': 'State over time per band' });
  const tbody = h('tbody');
  const table = h('table', { id: 'lun-events', class: 'grid events' },
    h('thead', null, h('tr', null, h('th', { scope: 'col', text: 'Time' }), h('th', { scope: 'col', text: 'Where' }),
      h('th', { scope: 'col', text: 'Change' }))), tbody);
  const empty = h('p', { id: 'lun-events-empty', class: 'empty', hidden: true, text: 'No events in this range.' });
  const section = h('section', { class: 'page lun-page', id: 'lun-page', dataset: { wwid }, 'aria-labelledby': 'lun-title' },
    h('p', { class: 'back' }, h('a', { href: '#/health', text: '‹ Cluster health' })),
    h('div', { class: 'lun-head' }, title, state),
    h('p', { class: 'meta' }, 'WWID ', h('code', { id: 'lun-wwid', text: wwid })),
    flap,
    h('div', { class: 'card' },
      h('div', { class: 'tl-toolbar' }, h('h2', { text: 'Timeline' }),
        h('div', { class: 'range-buttons', role: 'group', 'aria-label': 'Time range' }, buttons),
        status),
      chart,
      h('p', { class: 'help tl-legend' }, Object.keys(STATES).map((k) => [badge(k), ' ']),
        h('span', { class: 'badge st-none', text: 'not present' }))),
    h('div', { class: 'card' }, h('h2', { text: 'Events' }), empty, table));
  main.appendChild(section);
  for (const b of buttons) {
    b.addEventListener('click', () => {
      saved.range = b.dataset.range;
      for (const x of buttons) x.setAttribute('aria-pressed', String(x === b));
      load();
    });
  }
  const onResize = () => draw();
  window.addEventListener('resize', onResize);
  ui = { wwid, title, state, flap, status, chart, tbody, empty, onResize, listKey: null };
  load();
}

export function unmount() {
  generation += 1;
  clearTimeout(timer);
  if (ui) window.removeEventListener('resize', ui.onResize);
  ui = null;
  data = null;
  document.title = 'mpcluster';
}

// ---------------------------------------------------------------------------------------------
// Data

/** The LUN in a status: `{alias, cluster: {state, paths}|null, nodes: Map<node, {state, paths}>,
 * flaps: [...]}`; `cluster` null when the status does not list it. */
function currentOf(status, wwid) {
  const luns = status && Array.isArray(status.luns) ? status.luns : [];
  const l = luns.find((x) => x && x.wwid === wwid);
  const nodes = new Map();
  if (l && l.nodes && typeof l.nodes === 'object') {
    for (const n of Object.keys(l.nodes)) {
      const c = l.nodes[n];
      if (!c || typeof c !== 'object') continue;
      const a = c['paths-active'];
      const t = c['paths-total'];
      nodes.set(n, { state: normState(c.state), paths: typeof a === 'number' && typeof t === 'number' ? `${a}/${t}` : '' });
    }
  }
  return {
    alias: l ? str(l.alias) : '',
    cluster: l ? { state: normState(l['cluster-state']), paths: '' } : null,
    nodes,
    flaps: readFlapping(status).filter((f) => f.wwid === wwid),
  };
}

async function load() {
  generation += 1;
  clearTimeout(timer);
  const gen = generation;
  const wwid = ui.wwid;
  const range = rangeOf(saved.range);
  setText(ui.status, 'Loading the events…');
  const w = encodeURIComponent(wwid);
  const [ev, st] = await Promise.allSettled([
    api('GET', `/cluster/multipath/events?wwid=${w}&since=${range.key}&limit=${LIMIT}`),
    api('GET', '/cluster/multipath/status'),
  ]);
  if (gen !== generation || !ui) return;
  if (ev.status === 'rejected') {
    if (ev.reason && ev.reason.status === 401) return;
    setText(ui.status, `Cannot read the events: ${(ev.reason && ev.reason.message) || ev.reason}`);
    ui.status.className = 'banner error';
    timer = setTimeout(load, POLL_MS * 2);
    return;
  }
  const page = readEventPage(ev.value);
  let current = null;
  if (st.status === 'fulfilled') current = currentOf(st.value, wwid);
  else if (st.reason && st.reason.data && typeof st.reason.data === 'object') current = currentOf(st.reason.data, wwid);
  data = {
    wwid,
    events: page.events.filter((e) => e.wwid === wwid),
    lastSeq: page.lastSeq,
    truncated: page.truncated,
    current,
    at: clock(),
  };
  render();
  timer = setTimeout(() => follow(gen), POLL_MS);
}

async function follow(gen) {
  if (gen !== generation || !ui || !data) return;
  let again = false;
  try {
    const w = encodeURIComponent(data.wwid);
    const page = readEventPage(await api('GET', `/cluster/multipath/events?wwid=${w}&after=${data.lastSeq}&limit=${LIMIT}`));
    if (gen !== generation || !ui) return;
    if (page.truncated || page.lastSeq < data.lastSeq) {
      load();
      return;
    }
    const known = new Set(data.events.map((e) => e.seq));
    const fresh = page.events.filter((e) => e.wwid === data.wwid && !known.has(e.seq));
    data.events = data.events.concat(fresh);
    data.lastSeq = page.lastSeq;
    data.at = clock();
    again = fresh.length > 0;
  } catch (e) {
    if (gen !== generation) return;
    if (e && e.status === 401) return;
  }
  render(again);
  timer = setTimeout(() => follow(gen), POLL_MS);
}

// ---------------------------------------------------------------------------------------------
// Bands and segments

/**
 * The bands: `[{key, label, node, points: [{t, seq, before, after}]}]`, the cluster band
 * first, then one per node (natural order). `before`/`after`: `{state, paths}`, `NONE`
 * (absent) or undefined (not known from this event).
 */
const NONE = { state: 'none', paths: '' };

function bandsOf(events, current) {
  const cluster = { key: 'cluster', label: 'Cluster', node: '', points: [] };
  const nodes = new Map();
  const nodeBand = (n) => {
    let b = nodes.get(n);
    if (!b) {
      b = { key: `node:${n}`, label: n, node: n, points: [] };
      nodes.set(n, b);
    }
    return b;
  };
  if (current) for (const n of current.nodes.keys()) nodeBand(n);
  for (const e of events) if (e.kind === 'cell') nodeBand(e.node);
  for (const e of events) {
    if (e.kind === 'lun') {
      cluster.points.push({ t: e.time, seq: e.seq, before: e.before || NONE, after: e.after || NONE });
      // A LUN that appears or goes: its cells come or go with it (not listed one by one).
      if (!e.before || !e.after) {
        for (const b of nodes.values()) {
          b.points.push({ t: e.time, seq: e.seq, before: e.before ? undefined : NONE, after: e.after ? undefined : NONE });
        }
      }
    } else if (e.kind === 'cell') {
      nodeBand(e.node).points.push({ t: e.time, seq: e.seq, before: e.before || NONE, after: e.after || NONE });
    }
  }
  const list = [...nodes.values()].sort((a, b) => naturalCompare(a.node, b.node));
  for (const b of [cluster, ...list]) b.points.sort((x, y) => x.t - y.t || x.seq - y.seq);
  return [cluster, ...list];
}

/** The band's segments within [start, end]: `[{from, to, state, paths}]`. */
function segmentsOf(points, start, end, now) {
  const unknown = { state: 'unknown', paths: '' };
  const nowValue = now || unknown;
  if (!points.length) return [{ from: start, to: end, ...nowValue }];
  const out = [];
  const push = (from, to, v) => {
    const f = Math.max(from, start);
    const t = Math.min(to, end);
    if (t <= f) return;
    const last = out[out.length - 1];
    if (last && last.to === f && last.state === v.state && last.paths === v.paths) last.to = t;
    else out.push({ from: f, to: t, state: v.state, paths: v.paths });
  };
  push(start, points[0].t, points[0].before || unknown);
  for (let i = 0; i < points.length; i += 1) {
    const p = points[i];
    const next = points[i + 1];
    const v = p.after || (next ? next.before : nowValue) || (next ? unknown : nowValue);
    push(p.t, next ? next.t : end, v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Render

function render(changed = true) {
  if (!ui || !data) return;
  const cur = data.current;
  const lastLun = [...data.events].reverse().find((e) => e.kind === 'lun');
  const alias = cur && cur.alias ? cur.alias : (lastLun && lastLun.alias) || '';
  setText(ui.title.lastChild, alias || data.wwid);
  document.title = `${alias || data.wwid} · mpcluster`;
  const nowState = lastLun ? lastLun.after : (cur ? cur.cluster : null);
  const sk = nowState ? nowState.state : 'none';
  if (ui.state.dataset.state !== sk) {
    ui.state.dataset.state = sk;
    replace(ui.state, nowState ? badge(nowState.state) : h('span', { class: 'badge st-none', text: 'not in the matrix' }));
  }
  const flaps = cur ? cur.flaps : [];
  ui.flap.hidden = !flaps.length;
  replace(ui.flap, flaps.map((f, i) => [i ? h('br') : null, flapLine(f)]));
  const range = rangeOf(saved.range);
  const n = data.events.length;
  ui.status.className = 'help';
  setText(ui.status, `${n} event${n === 1 ? '' : 's'} in the last ${range.label}` +
    (data.truncated ? ` (only the newest ${LIMIT})` : '') +
    (cur ? '' : ' · the current state is not known (the status cannot be read)') +
    ` · updated ${data.at}`);
  draw();
  if (changed) list();
}

/** The axis's tick step (seconds) for `span` seconds over `px` pixels. */
function tickStep(span, px) {
  const steps = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];
  const max = Math.max(2, Math.floor(px / 90));
  return steps.find((st) => span / st <= max) || steps[steps.length - 1];
}

function tickLabel(t, step) {
  const d = new Date(t * 1000);
  const p = (x) => String(x).padStart(2, '0');
  const day = `${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  const time = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (step >= 86400) return day;
  if (time === '00:00') return `${day} 00:00`;
  return time;
}

function dur(secs) {
  const s0 = Math.max(0, Math.round(secs));
  if (s0 < 60) return `${s0} s`;
  if (s0 < 3600) return `${Math.floor(s0 / 60)} min ${s0 % 60} s`;
  if (s0 < 86400) return `${Math.floor(s0 / 3600)} h ${Math.floor((s0 % 3600) / 60)} min`;
  return `${Math.floor(s0 / 86400)} d ${Math.floor((s0 % 86400) / 3600)} h`;
}

const LABEL_W = 130;
const RIGHT = 16;
const BAND_H = 24;
const GAP = 10;
const TOP = 6;
const AXIS_H = 30;

function draw() {
  if (!ui || !data) return;
  const range = rangeOf(saved.range);
  const last = data.events.length ? data.events[data.events.length - 1].time : 0;
  const end = Math.max(Date.now() / 1000, last);
  const start = end - range.secs;
  const cur = data.current;
  const bands = bandsOf(data.events, cur);
  const width = Math.max(480, Math.floor(ui.chart.clientWidth || 900));
  const pw = width - LABEL_W - RIGHT;
  const x = (t) => LABEL_W + ((t - start) / (end - start)) * pw;
  // Many nodes: thinner bands.
  const bh = bands.length > 16 ? 16 : BAND_H;
  const gap = bands.length > 16 ? 4 : GAP;
  const height = TOP + bands.length * (bh + gap) + AXIS_H;
  const svg = s('svg', {
    id: 'timeline-svg', width, height, viewBox: `0 0 ${width} ${height}`, class: 'tl',
    dataset: { start: String(Math.round(start)), end: String(Math.round(end)) },
  });
  // Grid and axis first (under the bands).
  const step = tickStep(range.secs, pw);
  const off = -new Date(start * 1000).getTimezoneOffset() * 60;
  const axisY = TOP + bands.length * (bh + gap);
  const grid = s('g', { class: 'tl-grid' });
  const axis = s('g', { class: 'tl-axis' },
    s('line', { x1: LABEL_W, x2: LABEL_W + pw, y1: axisY, y2: axisY }));
  for (let t = Math.ceil((start + off) / step) * step - off; t <= end; t += step) {
    const px = x(t).toFixed(1);
    grid.append(s('line', { x1: px, x2: px, y1: TOP, y2: axisY }));
    axis.append(s('line', { x1: px, x2: px, y1: axisY, y2: axisY + 5 }),
      s('text', { x: px, y: axisY + 18, 'text-anchor': 'middle' }, tickLabel(t, step)));
  }
  svg.append(grid, axis);
  bands.forEach((b, i) => {
    const y = TOP + i * (bh + gap);
    const now = b.node
      ? (cur ? (cur.nodes.get(b.node) || NONE) : null)
      : (cur ? (cur.cluster || NONE) : null);
    const segs = segmentsOf(b.points, start, end, now);
    const g = s('g', { class: `tl-band${b.node ? ' node' : ' cluster'}`, dataset: { band: b.key } });
    const label = b.node
      ? s('a', { href: `#/node/${encodeURIComponent(b.node)}` }, s('text', { x: LABEL_W - 8, y: y + bh / 2 + 4, 'text-anchor': 'end' }, b.label))
      : s('text', { x: LABEL_W - 8, y: y + bh / 2 + 4, 'text-anchor': 'end', class: 'cluster-label' }, b.label);
    g.append(s('rect', { class: 'tl-bg', x: LABEL_W, y, width: pw, height: bh }), label);
    for (const sg of segs) {
      const x1 = x(sg.from);
      const w = Math.max(1, x(sg.to) - x1);
      const word = sg.state === 'none' ? 'not present' : STATES[sg.state].label;
      const tip = `${b.node || 'cluster state'}: ${word}${sg.paths ? ` ${sg.paths}` : ''}\n` +
        `${fmtTime(sg.from)} – ${sg.to >= end - 1 ? 'now' : fmtTime(sg.to)} (${dur(sg.to - sg.from)})`;
      const seg = s('g', {
        class: `seg st-${sg.state}`,
        dataset: { state: sg.state, from: String(Math.round(sg.from)), to: String(Math.round(sg.to)), paths: sg.paths },
      }, s('title', null, tip),
      s('rect', { x: x1.toFixed(1), y, width: w.toFixed(1), height: bh }));
      // The state's icon (and word or path counts, where they fit): not by colour alone.
      if (w >= 18 && sg.state !== 'none') {
        const wide = w >= 90;
        seg.append(s('text', {
          class: 'seg-ic', x: (wide ? x1 + 6 : x1 + w / 2).toFixed(1), y: y + bh / 2 + 4, 'text-anchor': wide ? 'start' : 'middle',
        }, wide ? `${STATES[sg.state].icon} ${sg.paths || STATES[sg.state].label}` : STATES[sg.state].icon));
      }
      g.append(seg);
    }
    // A tick at every change (also the ones that keep the state and change the path counts).
    for (const p of b.points) {
      if (p.t < start) continue;
      const px = x(p.t).toFixed(1);
      g.append(s('line', { class: 'tl-tick', x1: px, x2: px, y1: y - 2, y2: y + bh + 2 }));
    }
    svg.append(g);
  });
  svg.append(s('line', { class: 'tl-now', x1: LABEL_W + pw, x2: LABEL_W + pw, y1: TOP - 4, y2: axisY }));
  ui.chart.replaceChildren(svg);
}

function list() {
  const shown = data.events.slice(-LIST_MAX).reverse();
  const key = shown.map((e) => e.seq).join(',');
  if (ui.listKey === key) return;
  ui.listKey = key;
  ui.empty.hidden = shown.length > 0;
  replace(ui.tbody, shown.map((e) => h('tr', {
    class: `ev ev-${e.kind}`, dataset: { seq: String(e.seq), kind: e.kind, ...(e.node ? { node: e.node } : {}) },
  },
  h('td', null, h('time', { datetime: new Date(e.time * 1000).toISOString(), title: fmtTime(e.time), text: shortTime(e.time) })),
  h('td', null, e.kind === 'cell'
    ? h('a', { href: `#/node/${encodeURIComponent(e.node)}`, text: e.node })
    : h('strong', { text: 'Cluster state' })),
  h('td', null, change(e)))));
  if (data.events.length > LIST_MAX) {
    ui.tbody.append(h('tr', null, h('td', { colspan: '3', class: 'help', text: `and ${data.events.length - LIST_MAX} older events (see the timeline)` })));
  }
}
