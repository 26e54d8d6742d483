// The event history in the UI: reading events and flapping entries (peer data: every field is
// checked), the flapping index the matrix marks rows and cells from, and the recent-events
// panel on the health page (the newest events, health and configuration, followed with
// `after=` every few seconds while the page is shown).

import { api } from './api.js';
import { badge, clock, fmtTime, h, normState, replace, setText, str } from './util.js';

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/** The page of the timeline of `wwid`. */
export const lunHref = (wwid) => `#/lun/${encodeURIComponent(wwid)}`;

/** `HH:MM` of a unix time, local. */
export function hhmm(unix) {
  const d = new Date(unix * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A unix time as `HH:MM:SS` when it is today, else `YYYY-MM-DD HH:MM:SS`. */
export function shortTime(unix) {
  const full = fmtTime(unix);
  const today = fmtTime(Date.now() / 1000).slice(0, 10);
  return full.startsWith(today) ? full.slice(11) : full;
}

/** A cell value of an event (`{state, paths-active?, paths-total?}`), or null (no cell). */
function cellValue(v) {
  if (!v || typeof v !== 'object') return null;
  const a = v['paths-active'];
  const t = v['paths-total'];
  return {
    state: normState(v.state),
    paths: isNum(a) && isNum(t) ? `${a}/${t}` : '',
  };
}

/** A LUN's state in an event: `{state, paths: ''}`, or null (the LUN did not exist). */
function lunValue(v) {
  return typeof v === 'string' ? { state: normState(v), paths: '' } : null;
}

/**
 * One event of the API, checked: `{seq, time, kind: 'lun'|'cell'|'config', wwid, alias, node,
 * before, after, doc, actor, summary}` (`before`/`after`: `{state, paths}` or null = absent),
 * or null when it is not a well-formed event.
 */
export function readEvent(x) {
  if (!x || typeof x !== 'object' || !isNum(x.seq) || !isNum(x.time)) return null;
  const e = {
    seq: x.seq, time: x.time, kind: x.kind, wwid: '', alias: '', node: '',
    before: null, after: null, doc: '', actor: '', summary: '',
  };
  if (x.kind === 'lun' || x.kind === 'cell') {
    if (typeof x.wwid !== 'string' || !x.wwid) return null;
    e.wwid = x.wwid;
    e.alias = str(x.alias);
    if (x.kind === 'cell') {
      if (typeof x.node !== 'string' || !x.node) return null;
      e.node = x.node;
      e.before = cellValue(x.before);
      e.after = cellValue(x.after);
    } else {
      e.before = lunValue(x.before);
      e.after = lunValue(x.after);
    }
    return e;
  }
  if (x.kind === 'config') {
    e.doc = str(x.doc);
    e.actor = str(x.actor);
    e.summary = str(x.summary);
    return e;
  }
  return null;
}

/** An event page of the API: `{events (checked, oldest first), lastSeq, truncated}`. */
export function readEventPage(data) {
  const d = data && typeof data === 'object' ? data : {};
  const list = Array.isArray(d.events) ? d.events : [];
  const events = [];
  for (const x of list) {
    const e = readEvent(x);
    if (e) events.push(e);
  }
  events.sort((a, b) => a.seq - b.seq);
  const last = isNum(d['last-seq']) ? d['last-seq'] : (events.length ? events[events.length - 1].seq : 0);
  return { events, lastSeq: last, truncated: d.truncated === true };
}

/** A state badge, or a grey one with `none` for "absent" (a new or removed LUN or cell). */
export function valueBadge(v, none) {
  if (!v) return h('span', { class: 'badge st-none', dataset: { state: 'none' }, text: none });
  const b = badge(v.state);
  b.dataset.state = v.state;
  if (v.paths) b.append(h('span', { class: 'paths', text: ` ${v.paths}` }));
  return b;
}

/** `before → after` of a health event, as badges. */
export function change(e) {
  const cell = e.kind === 'cell';
  return h('span', { class: 'ev-change' },
    valueBadge(e.before, cell ? 'not present' : 'new'),
    h('span', { class: 'arrow', 'aria-label': 'became', text: ' → ' }),
    valueBadge(e.after, cell ? 'not present' : 'removed'));
}

// ---------------------------------------------------------------------------------------------
// Flapping

/** The status's flapping list, checked: `[{wwid, node ('' for the LUN), changes, since, last}]`. */
export function readFlapping(status) {
  const list = status && Array.isArray(status.flapping) ? status.flapping : [];
  const out = [];
  for (const x of list) {
    if (!x || typeof x !== 'object' || typeof x.wwid !== 'string' || !x.wwid) continue;
    if (hasOwn(x, 'node') && x.node !== null && typeof x.node !== 'string') continue;
    out.push({
      wwid: x.wwid,
      node: typeof x.node === 'string' ? x.node : '',
      changes: isNum(x.changes) ? x.changes : 0,
      since: isNum(x.since) ? x.since : null,
      last: isNum(x.last) ? x.last : null,
    });
  }
  return out;
}

/** The title line of a flapping LUN or cell. */
export function flapLine(f) {
  const what = f.node ? `on ${f.node}` : 'cluster state';
  return `⟳ flapping (${what}): ${f.changes} changes` +
    (f.since !== null ? ` since ${hhmm(f.since)}` : '') +
    (f.last !== null ? `, last ${hhmm(f.last)}` : '');
}

/** A mark; its title line is written when first asked for (only rows and cells in view are). */
class FlapMark {
  constructor(f, key) {
    this.changes = f.changes;
    this.since = f.since;
    this.last = f.last;
    this.key = key;
    this.flap = f;
    this.text = null;
  }

  get line() {
    if (this.text === null) this.text = flapLine(this.flap);
    return this.text;
  }
}

/**
 * The flapping marks: `{rows: Map<wwid, mark>, cells: Map<wwid, Map<node, mark>>, marks}`,
 * each mark `{changes, since, last, line, key}`; built when the list changes, so a windowed
 * row looks its LUN up once. A mark unchanged since `prev` is the same object (the matrix
 * compares marks by identity and leaves unchanged rows and cells alone).
 */
export function flapIndex(flaps, prev) {
  const rows = new Map();
  const cells = new Map();
  const marks = new Map();
  for (const f of flaps) {
    const key = `${f.wwid}\u0001${f.node}\u0001${f.changes}\u0001${f.since}\u0001${f.last}`;
    const mark = (prev && prev.marks.get(key)) || new FlapMark(f, key);
    marks.set(key, mark);
    if (!f.node) {
      rows.set(f.wwid, mark);
    } else {
      let per = cells.get(f.wwid);
      if (!per) {
        per = new Map();
        cells.set(f.wwid, per);
      }
      per.set(f.node, mark);
    }
  }
  return { rows, cells, marks };
}

/** An empty index (nothing flaps). */
export const NO_FLAPS = flapIndex([]);

// ---------------------------------------------------------------------------------------------
// The recent-events panel (health page)

const PANEL_MAX = 20;
const POLL_MS = 3000;
const FOLLOW_LIMIT = 200;

// Module state: kept across page switches.
const saved = { open: true, events: [], lastSeq: null, error: '', at: '' };

let ui = null;
let generation = 0;
let timer = 0;

/** The panel (a <details>); starts following the event log. */
export function build() {
  generation += 1;
  clearTimeout(timer);
  const list = h('ol', { id: 'events-list', class: 'events-list', 'aria-label': 'Recent events, newest first' });
  const empty = h('p', { id: 'events-empty', class: 'empty', hidden: true, text: 'No events recorded yet.' });
  const error = h('p', { id: 'events-error', class: 'banner error', role: 'alert', hidden: true });
  const count = h('span', { id: 'events-count', class: 'sub' });
  const updated = h('span', { id: 'events-updated', class: 'sub updated' });
  const details = h('details', { id: 'events-panel', class: 'events-panel', open: saved.open },
    h('summary', null, 'Recent events', count,
      h('span', { class: 'sub', text: ' — LUN states, cells and configuration changes, newest first' }), updated),
    h('div', { class: 'ev-body' }, error, empty, list));
  details.addEventListener('toggle', () => { saved.open = details.open; });
  ui = { details, list, empty, error, count, updated, key: null };
  render();
  poll(generation);
  return details;
}

/** Stop following. */
export function unmount() {
  generation += 1;
  clearTimeout(timer);
  ui = null;
}

async function poll(gen) {
  const follow = saved.lastSeq !== null;
  const q = follow ? `after=${saved.lastSeq}&limit=${FOLLOW_LIMIT}` : `limit=${PANEL_MAX}`;
  let again = false;
  try {
    const page = readEventPage(await api('GET', `/cluster/multipath/events?${q}`));
    if (gen !== generation) return;
    if (follow && (page.truncated || page.lastSeq < saved.lastSeq)) {
      // Too much happened meanwhile, or the log was reset: start over from the newest.
      saved.lastSeq = null;
      saved.events = [];
      again = true;
    } else {
      const known = new Set(saved.events.map((e) => e.seq));
      saved.events = saved.events.concat(page.events.filter((e) => !known.has(e.seq))).slice(-PANEL_MAX);
      saved.lastSeq = page.lastSeq;
    }
    saved.error = '';
  } catch (e) {
    if (gen !== generation) return;
    if (e && e.status === 401) return; // the login screen takes over
    saved.error = (e && e.message) || String(e);
  }
  saved.at = clock();
  render();
  timer = setTimeout(() => poll(gen), again ? 0 : POLL_MS);
}

function render() {
  if (!ui) return;
  ui.error.hidden = !saved.error;
  setText(ui.error, saved.error ? `Cannot read the event history: ${saved.error}` : '');
  setText(ui.updated, saved.at ? ` · updated ${saved.at}` : '');
  ui.list.dataset.lastSeq = saved.lastSeq === null ? '' : String(saved.lastSeq);
  const key = saved.events.map((e) => e.seq).join(',');
  if (ui.key === key) return;
  ui.key = key;
  setText(ui.count, ` (${saved.events.length})`);
  ui.empty.hidden = saved.events.length > 0 || saved.lastSeq === null;
  replace(ui.list, saved.events.slice().reverse().map(eventItem));
}

/** The LUN of an event: its alias (or WWID), linking to its timeline. */
function lunLink(e) {
  return h('a', { class: 'ev-lun', href: lunHref(e.wwid), title: `${e.wwid}\nTimeline of this LUN`, text: e.alias || e.wwid });
}

function eventItem(e) {
  const parts = [h('time', { class: 'ev-time', datetime: new Date(e.time * 1000).toISOString(), title: fmtTime(e.time), text: shortTime(e.time) })];
  if (e.kind === 'config') {
    parts.push(h('span', { class: 'ev-tag', text: 'config' }),
      h('span', { class: 'ev-what' }, h('code', { class: 'ev-doc', text: e.doc }), ' by ',
        h('span', { class: 'ev-actor', text: e.actor })),
      h('span', { class: 'ev-summary', text: e.summary }));
  } else {
    parts.push(h('span', { class: 'ev-tag', text: e.kind === 'cell' ? 'node' : 'LUN' }),
      h('span', { class: 'ev-what' }, lunLink(e),
        e.kind === 'cell'
          ? [' on ', h('a', { class: 'ev-node', href: `#/node/${encodeURIComponent(e.node)}`, text: e.node })]
          : ' (cluster)'),
      change(e));
  }
  const dataset = { seq: String(e.seq), kind: e.kind };
  if (e.wwid) dataset.wwid = e.wwid;
  if (e.node) dataset.node = e.node;
  return h('li', { class: `ev ev-${e.kind}`, dataset }, parts);
}
