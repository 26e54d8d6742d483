// Cluster health: the LUN x node matrix, the root-cause hints (a banner each, markers on the
// cells, rows and columns they explain; see hints.js), the maintenance pre-flight form
// (preflight.js), the recent-events panel and the flapping markers (a ⟳ on the LUN rows and
// cells the status lists as flapping; see events.js). A LUN's WWID links to its timeline.
//
// Polls the status and the node list every 2 s and patches the page in place: rows are
// windowed (only the rows in view, plus a margin, exist in the DOM; spacer rows keep the
// scroll height), each cell remembers a signature of what it shows and is touched only when
// that changes, and the toolbar, header and scroll container are never rebuilt by an update,
// so scroll position, focus, filter and sort survive. The time of every render is measured
// (performance.now) and exposed on the table as data-render-ms (first render), data-update-ms
// (last update), data-layout-ms (style + layout of the next frame), data-frame-ms (until that
// frame was painted) and data-scroll-ms; data-hints-ms is reading and indexing the hints (done
// when a status arrives, before its render).

import { api } from './api.js';
import * as events from './events.js';
import { NO_FLAPS, flapIndex, lunHref, readFlapping } from './events.js';
import { NO_HINTS, cellMark, hintIndex, readHints, renderBanners } from './hints.js';
import * as preflight from './preflight.js';
import {
  STATES, badge, clock, fmtTime, h, humanSize, naturalCompare, normState, replace, setText,
  stateRank, str,
} from './util.js';

const POLL_MS = 2000;
const OVERSCAN = 12;
const DEFAULT_SORT = { key: 'state', dir: 1 };

// View settings survive page switches (module state) and updates.
const prefs = { filter: '', problems: false, sort: { ...DEFAULT_SORT } };

let ui = null; // DOM references while mounted
let model = null; // the last data received (kept across page switches)
let view = { rows: [], cols: [], colsKey: null };
let timer = 0;
let generation = 0;
let rowH = 30;
let scrollPending = false;
const stats = { updates: 0 };

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

export function mount(main) {
  generation += 1;
  build(main);
  if (model) render('render');
  poll(generation);
}

export function unmount() {
  generation += 1;
  clearTimeout(timer);
  preflight.unmount();
  events.unmount();
  if (ui) {
    window.removeEventListener('resize', ui.onResize);
  }
  ui = null;
}

// ---------------------------------------------------------------------------------------------
// Data

async function poll(gen) {
  let status = null;
  let overview = null;
  let stale = '';
  let failure = '';
  const [s, n] = await Promise.allSettled([
    api('GET', '/cluster/multipath/status'),
    api('GET', '/cluster/nodes'),
  ]);
  if (gen !== generation) return;
  if (s.status === 'fulfilled') {
    status = s.value;
  } else if (s.reason && s.reason.status === 401) {
    return; // the login screen takes over
  } else if (s.reason && s.reason.data && typeof s.reason.data === 'object') {
    status = s.reason.data;
    stale = s.reason.message || 'the cluster store is unavailable';
  } else {
    failure = (s.reason && s.reason.message) || String(s.reason);
  }
  if (n.status === 'fulfilled') overview = n.value;
  else if (n.reason && Array.isArray(n.reason.data)) overview = n.reason.data;

  if (status) {
    model = ingest(status, overview || (model ? model.overview : []), stale);
    preflight.update(model.nodeNames, model.hints);
    const first = !ui.table.dataset.renderMs;
    render(first ? 'render' : 'update');
  } else if (model) {
    // Keep showing what we had, marked stale.
    model.stale = failure;
    render('update');
  } else {
    setText(ui.loading, `Cannot load the cluster status: ${failure}`);
    ui.loading.className = 'banner error';
  }
  timer = setTimeout(() => poll(gen), POLL_MS);
}

function ingest(status, overview, stale) {
  const rows = [];
  const names = new Set();
  const luns = Array.isArray(status.luns) ? status.luns : [];
  for (const l of luns) {
    if (!l || typeof l.wwid !== 'string') continue;
    const nodes = l.nodes && typeof l.nodes === 'object' ? l.nodes : {};
    let bad = 0;
    for (const k of Object.keys(nodes)) {
      names.add(k);
      const c = nodes[k];
      if (!c || c.state !== 'optimal') bad += 1;
    }
    const alias = str(l.alias);
    const used = Array.isArray(l['used-by']) ? l['used-by'].map(str).join(', ') : str(l['used-by']);
    rows.push({
      wwid: l.wwid,
      alias,
      used,
      size: typeof l.size === 'number' ? l.size : null,
      state: normState(l['cluster-state']),
      nodes,
      bad,
      search: `${l.wwid}\n${alias}\n${used}`.toLowerCase(),
    });
  }
  const issues = status.nodes && typeof status.nodes === 'object' ? status.nodes : {};
  for (const k of Object.keys(issues)) names.add(k);
  const ov = Array.isArray(overview) ? overview.filter((o) => o && typeof o.node === 'string') : [];
  const byNode = new Map();
  for (const o of ov) {
    names.add(o.node);
    byNode.set(o.node, o);
  }
  const nodeNames = [...names].sort(naturalCompare);
  // Per-node facts shown in cell titles and the header.
  const info = new Map();
  for (const name of nodeNames) {
    const o = byNode.get(name);
    const i = hasOwn(issues, name) ? issues[name] || {} : {};
    const lines = [];
    let offline = false;
    if (o) {
      offline = o.online === false;
      if (offline) lines.push('node offline');
      if (typeof o['last-broadcast'] === 'number') lines.push(`last broadcast: ${fmtTime(o['last-broadcast'])}`);
      else lines.push('no broadcast received');
    }
    if (i.agent === 'never-seen') lines.push('agent never seen: no mpcluster agent on this node has ever joined the cluster');
    if (i['broadcast-error']) lines.push(str(i['broadcast-error']));
    if (i['publish-error']) lines.push(`publish error${i['publish-time'] ? ` (since ${fmtTime(i['publish-time'])})` : ''}: ${str(i['publish-error'])}`);
    if (i['apply-error']) lines.push(`apply error${i['apply-time'] ? ` (${fmtTime(i['apply-time'])})` : ''}: ${str(i['apply-error'])}`);
    if (i['apply-waiting']) lines.push(str(i['apply-waiting']));
    if (i['plan-error']) lines.push(str(i['plan-error']));
    if (i['collect-error']) lines.push(`collect error${i['collect-time'] ? ` (${fmtTime(i['collect-time'])})` : ''}: ${str(i['collect-error'])}`);
    info.set(name, { offline, lines, sig: `${offline}\u0001${lines.join('\u0001')}` });
  }
  // The hint index is rebuilt only when the hints change: the cells compare their marker by
  // identity, so an unchanged hint touches no cell.
  const h0 = performance.now();
  const hints = readHints(status);
  const hintKey = JSON.stringify(hints);
  const hidx = model && model.hintKey === hintKey
    ? model.hidx
    : (hints.length ? hintIndex(hints, model ? model.hidx : null) : NO_HINTS);
  // The flapping index likewise, rebuilt only when the list changes.
  const rawFlaps = status.flapping;
  const flapKey = Array.isArray(rawFlaps) && rawFlaps.length ? JSON.stringify(rawFlaps) : '';
  const fidx = model && model.flapKey === flapKey
    ? model.fidx
    : (flapKey ? flapIndex(readFlapping(status), model ? model.fidx : null) : NO_FLAPS);
  const hintMs = performance.now() - h0;
  // Problems with the stored documents (read as empty by the server).
  const docProblems = Array.isArray(status.problems) ? status.problems.filter((x) => typeof x === 'string') : [];
  return {
    rows, nodeNames, info, overview: ov, issues, stale, hints, hintKey, hidx, flapKey, fidx, hintMs, docProblems, at: clock(),
  };
}

// ---------------------------------------------------------------------------------------------
// Skeleton (built once per mount)

function build(main) {
  const filter = h('input', {
    id: 'filter', type: 'search', value: prefs.filter, placeholder: 'WWID, alias or node',
    autocomplete: 'off', spellcheck: 'false', 'aria-controls': 'matrix',
  });
  const problems = h('input', { id: 'problems', type: 'checkbox', checked: prefs.problems, 'aria-controls': 'matrix' });
  const resetSort = h('button', { type: 'button', id: 'sort-reset', class: 'secondary' }, 'Worst first');
  const summary = h('span', { id: 'summary', class: 'summary' });
  const legend = h('span', { id: 'legend', class: 'legend', 'aria-label': 'LUNs per cluster state' });
  const staleBanner = h('div', { id: 'stale-banner', class: 'banner error', role: 'alert', hidden: true });
  const nodeBanner = h('div', { id: 'node-banner', class: 'banner-group', role: 'status' });
  const hintBanners = h('div', { id: 'hint-banners', class: 'hint-banners', role: 'status', 'aria-label': 'Root-cause hints' });
  const loading = h('p', { id: 'matrix-loading', class: 'banner info', text: 'Loading the cluster status…' });
  const headRow = h('tr');
  const thead = h('thead', null, headRow);
  const spacerTopCell = h('td');
  const spacerBottomCell = h('td');
  const spacerTop = h('tr', { class: 'spacer', 'aria-hidden': 'true' }, spacerTopCell);
  const spacerBottom = h('tr', { class: 'spacer', 'aria-hidden': 'true' }, spacerBottomCell);
  const tbody = h('tbody', null, spacerTop, spacerBottom);
  const table = h('table', { id: 'matrix', class: 'matrix', 'aria-label': 'LUN health per node' }, thead, tbody);
  const empty = h('p', { id: 'matrix-empty', class: 'empty', hidden: true });
  const scroller = h('div', {
    id: 'matrix-scroll', class: 'matrix-scroll', tabindex: '0',
    role: 'region', 'aria-label': 'Health matrix (scrollable)',
  }, table, empty);

  const section = h('section', { class: 'health', 'aria-labelledby': 'health-title' },
    h('div', { class: 'toolbar' },
      h('h1', { id: 'health-title', text: 'Cluster health' }),
      h('label', { for: 'filter', class: 'inline' }, 'Filter'), filter,
      h('label', { class: 'check' }, problems, ' Problems only'),
      resetSort,
      legend,
      summary),
    preflight.build(), events.build(), staleBanner, hintBanners, nodeBanner, loading, scroller);
  main.appendChild(section);

  filter.addEventListener('input', () => {
    prefs.filter = filter.value;
    if (model) render('filter');
  });
  problems.addEventListener('change', () => {
    prefs.problems = problems.checked;
    if (model) render('filter');
  });
  resetSort.addEventListener('click', () => {
    prefs.sort = { ...DEFAULT_SORT };
    if (model) render('sort');
  });
  thead.addEventListener('click', (ev) => {
    const b = ev.target.closest('button.sort');
    if (!b) return;
    const key = b.dataset.key;
    prefs.sort = prefs.sort.key === key ? { key, dir: -prefs.sort.dir } : { key, dir: 1 };
    if (model) render('sort');
  });
  scroller.addEventListener('scroll', () => {
    if (scrollPending) return;
    scrollPending = true;
    requestAnimationFrame(() => {
      scrollPending = false;
      if (!ui || !model) return;
      const t0 = performance.now();
      renderWindow();
      ui.table.dataset.scrollMs = (performance.now() - t0).toFixed(1);
    });
  });
  const onResize = () => {
    if (ui && model) renderWindow();
  };
  window.addEventListener('resize', onResize);

  ui = {
    filter, problems, summary, legend, staleBanner, nodeBanner, hintBanners, loading, headRow, thead,
    tbody, table, scroller, empty, spacerTop, spacerBottom, spacerTopCell, spacerBottomCell, pool: [],
    onResize, bannerKey: null, hintKey: null, headKey: null, sortKey: null, headH: 52,
  };
}

// ---------------------------------------------------------------------------------------------
// Render

function render(kind) {
  if (!ui || !model) return;
  const t0 = performance.now();
  ui.loading.hidden = true;
  computeView();
  const t1 = performance.now();
  syncHeader();
  const t2 = performance.now();
  renderWindow();
  const t3 = performance.now();
  syncBanners();
  syncHints();
  syncSummary();
  const ms = performance.now() - t0;
  ui.table.dataset.phasesMs = `view ${(t1 - t0).toFixed(1)}, header ${(t2 - t1).toFixed(1)}, ` +
    `rows ${(t3 - t2).toFixed(1)}, banners ${(performance.now() - t3).toFixed(1)}`;
  // Read and index the hints (when they changed), before the render.
  ui.table.dataset.hintsMs = model.hintMs.toFixed(1);
  const ds = ui.table.dataset;
  const label = kind === 'render' ? 'renderMs' : (kind === 'update' ? 'updateMs' : 'viewMs');
  ds[label] = ms.toFixed(1);
  ds.lastMs = ms.toFixed(1);
  ds.rows = String(view.rows.length);
  ds.cols = String(view.cols.length);
  if (kind === 'update') {
    stats.updates += 1;
    ds.updates = String(stats.updates);
  }
  const table = ui.table;
  requestAnimationFrame(() => {
    // Style and layout of this frame, forced here to time them (the frame needs them anyway).
    const l0 = performance.now();
    void table.offsetHeight;
    table.dataset.layoutMs = (performance.now() - l0).toFixed(1);
    setTimeout(() => {
      table.dataset.frameMs = (performance.now() - t0).toFixed(1);
      measure();
    }, 0);
  });
  if (kind !== 'update' || ms > 50) {
    console.debug(`[mpcluster] matrix ${kind}: ${ms.toFixed(1)} ms ` +
      `(${view.rows.length} of ${model.rows.length} LUNs x ${view.cols.length} nodes)`);
  }
}

function computeView() {
  const f = prefs.filter.trim().toLowerCase();
  let cols = model.nodeNames;
  let nodeMatch = null;
  if (f) {
    const m = cols.filter((n) => n.toLowerCase().includes(f));
    if (m.length) {
      nodeMatch = m;
      cols = m;
    }
  }
  const rows = model.rows.filter((r) => {
    if (prefs.problems && r.state === 'optimal') return false;
    if (!f) return true;
    if (r.search.includes(f)) return true;
    return nodeMatch ? nodeMatch.some((n) => hasOwn(r.nodes, n)) : false;
  });
  rows.sort(comparator(prefs.sort));
  const colsKey = cols.join('\u0001');
  view = { rows, cols, colsKey };
}

const byWwid = (a, b) => (a.wwid < b.wwid ? -1 : (a.wwid > b.wwid ? 1 : 0));
const textKey = (s) => (s ? s : '\uffff');

function comparator(sort) {
  const d = sort.dir;
  let c;
  if (sort.key === 'state') {
    c = (a, b) => d * (stateRank(a.state) - stateRank(b.state) || b.bad - a.bad) ||
      naturalCompare(textKey(a.alias), textKey(b.alias)) || byWwid(a, b);
  } else if (sort.key === 'wwid') {
    c = (a, b) => d * byWwid(a, b);
  } else if (sort.key === 'alias') {
    c = (a, b) => d * naturalCompare(textKey(a.alias), textKey(b.alias)) || byWwid(a, b);
  } else if (sort.key === 'used') {
    c = (a, b) => d * naturalCompare(textKey(a.used), textKey(b.used)) || byWwid(a, b);
  } else if (sort.key === 'size') {
    c = (a, b) => d * ((a.size ?? -1) - (b.size ?? -1)) || byWwid(a, b);
  } else if (sort.key.startsWith('node:')) {
    const n = sort.key.slice(5);
    const rank = (r) => (hasOwn(r.nodes, n) && r.nodes[n] ? stateRank(r.nodes[n].state) : 5);
    c = (a, b) => d * (rank(a) - rank(b)) || stateRank(a.state) - stateRank(b.state) || byWwid(a, b);
  } else {
    c = byWwid;
  }
  return c;
}

// Column widths (px), as in style.css.
const FIXED_WIDTH = 300 + 120 + 100 + 80 + 112;
const NODE_WIDTH = 96;

const FIXED_COLS = [
  { key: 'wwid', label: 'WWID', cls: 'col-wwid' },
  { key: 'alias', label: 'Alias', cls: 'col-alias' },
  { key: 'used', label: 'Used by', cls: 'col-used' },
  { key: 'size', label: 'Size', cls: 'col-size' },
  { key: 'state', label: 'State', cls: 'col-state', title: 'Cluster state (worst first)' },
];

function sortButton(key, label, title) {
  return h('button', { type: 'button', class: 'sort', dataset: { key }, title },
    h('span', { class: 'label', text: label }), h('span', { class: 'arrow', 'aria-hidden': 'true' }));
}

function syncHeader() {
  // The header is rebuilt only when the columns change; node facts (offline, last broadcast)
  // are patched into the existing cells, so a focused sort button survives every update.
  if (ui.headKey !== view.colsKey) {
    ui.headKey = view.colsKey;
    ui.sortKey = null;
    const cells = FIXED_COLS.map((c) => h('th', { scope: 'col', class: c.cls, dataset: { key: c.key } },
      sortButton(c.key, c.label, c.title || `Sort by ${c.label.toLowerCase()}`)));
    for (const n of view.cols) {
      const th = h('th', { scope: 'col', class: 'col-node', dataset: { key: `node:${n}`, node: n } },
        sortButton(`node:${n}`, n, `Sort by the state on ${n}`),
        h('a', { class: 'node-link', href: `#/node/${encodeURIComponent(n)}`, 'aria-label': `Paths of ${n}` }));
      th._sig = null;
      cells.push(th);
    }
    ui.headRow.replaceChildren(...cells);
    // Fixed layout with an explicit width: the browser never measures cell contents.
    ui.table.style.width = `${FIXED_WIDTH + NODE_WIDTH * view.cols.length}px`;
    const span = String(FIXED_COLS.length + view.cols.length);
    ui.spacerTopCell.colSpan = span;
    ui.spacerBottomCell.colSpan = span;
  }
  const ths = ui.headRow.children;
  const colMarks = model.hidx.cols;
  for (let i = 0; i < view.cols.length; i += 1) {
    const th = ths[FIXED_COLS.length + i];
    const n = view.cols[i];
    const info = model.info.get(n) || { offline: false, lines: [], sig: '' };
    const mark = colMarks.get(n);
    if (th._sig === info.sig && th._mark === mark) continue;
    th._sig = info.sig;
    th._mark = mark;
    th.classList.toggle('offline', info.offline);
    markClass(th, mark);
    th.title = [n, ...(mark ? mark.lines : []), ...info.lines].join('\n');
    setText(th.lastChild, info.offline ? '⚠ offline' : 'paths ›');
  }
  const sortKey = `${prefs.sort.key}\u0001${prefs.sort.dir}`;
  if (ui.sortKey !== sortKey) {
    ui.sortKey = sortKey;
    for (const th of ui.headRow.children) {
      const active = th.dataset.key === prefs.sort.key;
      const worstFirst = th.dataset.key === 'state' || th.dataset.key.startsWith('node:');
      if (active) {
        const asc = prefs.sort.dir === 1;
        th.setAttribute('aria-sort', worstFirst ? 'other' : (asc ? 'ascending' : 'descending'));
        th.querySelector('.arrow').textContent = asc ? ' ▾' : ' ▴';
        th.dataset.sorted = worstFirst ? (asc ? 'worst-first' : 'best-first') : (asc ? 'ascending' : 'descending');
      } else {
        th.removeAttribute('aria-sort');
        th.querySelector('.arrow').textContent = '';
        delete th.dataset.sorted;
      }
    }
  }
}

function makeRow() {
  const tr = document.createElement('tr');
  tr.className = 'row';
  const th = document.createElement('th');
  th.scope = 'row';
  th.className = 'col-wwid';
  // The flapping marker (shown when the LUN's cluster state flaps), then the WWID, linking to
  // the LUN's timeline.
  const fl = document.createElement('span');
  fl.className = 'flap';
  fl.textContent = '⟳';
  fl.hidden = true;
  const a = document.createElement('a');
  a.className = 'lun-link';
  th.append(fl, a);
  th._fl = fl;
  th._a = a;
  tr.appendChild(th);
  for (const cls of ['col-alias', 'col-used', 'col-size', 'col-state']) {
    const td = document.createElement('td');
    td.className = cls;
    tr.appendChild(td);
  }
  tr._cells = [];
  return tr;
}

/**
 * Show rows [first, last) of the view. Rows are keyed by WWID: a row still in the window
 * keeps its <tr> (only moved if its position changed), so scrolling and updates touch only
 * the rows entering the window and the cells whose content changed. No layout is read here
 * (the sizes used come from the previous frame; see measure()).
 */
function renderWindow() {
  const rows = view.rows;
  const sc = ui.scroller;
  const top = Math.max(0, sc.scrollTop - ui.headH);
  const height = sc.clientHeight || 600;
  const first = Math.max(0, Math.min(rows.length, Math.floor(top / rowH) - OVERSCAN));
  const last = Math.min(rows.length, Math.ceil((top + height) / rowH) + OVERSCAN);
  const old = new Map();
  for (const tr of ui.pool) old.set(tr._wwid, tr);
  const pool = [];
  for (let i = first; i < last; i += 1) {
    const tr = old.get(rows[i].wwid);
    pool.push(tr || null);
    if (tr) old.delete(rows[i].wwid);
  }
  const spare = [...old.values()];
  let prev = ui.spacerTop;
  for (let k = 0; k < pool.length; k += 1) {
    let tr = pool[k];
    if (!tr) {
      tr = spare.pop() || makeRow();
      pool[k] = tr;
    }
    if (prev.nextSibling !== tr) ui.tbody.insertBefore(tr, prev.nextSibling);
    patchRow(tr, rows[first + k]);
    prev = tr;
  }
  for (const tr of spare) tr.remove();
  ui.pool = pool;
  setHeight(ui.spacerTop, ui.spacerTopCell, first * rowH);
  setHeight(ui.spacerBottom, ui.spacerBottomCell, (rows.length - last) * rowH);
  const none = rows.length === 0;
  ui.empty.hidden = !none;
  if (none) {
    setText(ui.empty, model.rows.length === 0
      ? 'No LUNs: no node reports a multipath map and the allow-list is empty.'
      : 'No LUN matches the filter.');
  }
}

/** After a frame: read the header and row heights; re-window if they differ from the guess. */
function measure() {
  if (!ui) return;
  const headH = ui.thead.offsetHeight;
  const r = ui.pool.length ? ui.pool[0].getBoundingClientRect().height : rowH;
  let changed = false;
  if (headH > 0 && Math.abs(headH - ui.headH) > 0.5) {
    ui.headH = headH;
    changed = true;
  }
  if (r > 0 && Math.abs(r - rowH) > 0.5) {
    rowH = r;
    changed = true;
  }
  if (changed && model) renderWindow();
}

function setHeight(tr, td, px) {
  const v = `${px}px`;
  const hide = px === 0;
  if (tr.hidden !== hide) tr.hidden = hide;
  if (td.style.height !== v) td.style.height = v;
}

function patchRow(tr, r) {
  if (tr._wwid !== r.wwid) {
    tr._wwid = r.wwid;
    tr.dataset.wwid = r.wwid;
  }
  const c = tr.children;
  const th = c[0];
  const link = th._a;
  if (link._wwid !== r.wwid) {
    link._wwid = r.wwid;
    link.textContent = r.wwid;
    link.href = lunHref(r.wwid);
  }
  const hidx = model.hidx;
  const rowMark = hidx.rows.get(r.wwid);
  if (th._mark !== rowMark) {
    th._mark = rowMark;
    markClass(th, rowMark);
  }
  const flap = model.fidx.rows.get(r.wwid);
  if (th._flap !== flap) {
    th._flap = flap;
    th._fl.hidden = !flap;
    th.classList.toggle('flapping', !!flap);
    if (flap) th.dataset.flap = String(flap.changes);
    else delete th.dataset.flap;
  }
  const title = [r.wwid, r.alias && `alias ${r.alias}`, r.used && `used by ${r.used}`,
    ...(rowMark ? rowMark.lines : []), flap && flap.line, 'Click: the timeline of this LUN']
    .filter(Boolean).join('\n');
  if (th.title !== title) th.title = title;
  setText(c[1], r.alias);
  setText(c[2], r.used);
  setText(c[3], humanSize(r.size));
  if (c[4]._s !== r.state) {
    c[4]._s = r.state;
    replace(c[4], badge(r.state));
    tr.dataset.state = r.state;
  }
  const cells = tr._cells;
  const cols = view.cols;
  while (cells.length < cols.length) {
    const td = document.createElement('td');
    const ic = document.createElement('span');
    ic.className = 'ic';
    ic.setAttribute('aria-hidden', 'true');
    const sr = document.createElement('span');
    sr.className = 'sr';
    const tx = document.createTextNode('');
    const fl = document.createElement('span');
    fl.className = 'flap';
    td.append(ic, sr, tx, fl);
    td._ic = ic;
    td._sr = sr;
    td._tx = tx;
    td._fl = fl;
    tr.appendChild(td);
    cells.push(td);
  }
  while (cells.length > cols.length) cells.pop().remove();
  const info = model.info;
  const nodes = r.nodes;
  const marks = hidx.cells.get(r.wwid);
  const flaps = model.fidx.cells.get(r.wwid);
  for (let i = 0; i < cols.length; i += 1) {
    const n = cols[i];
    patchCell(cells[i], n, hasOwn(nodes, n) ? nodes[n] : null, info.get(n), cellMark(marks, n),
      flaps ? flaps.get(n) : undefined);
  }
}

/** Mark (or unmark) an element as explained by a hint: `hinted hint-<severity>`, data-hint. */
function markClass(el, mark) {
  for (const s of ['critical', 'warning', 'info']) el.classList.toggle(`hint-${s}`, !!mark && mark.severity === s);
  el.classList.toggle('hinted', !!mark);
  if (mark) el.dataset.hint = mark.severity;
  else delete el.dataset.hint;
}

/** Mark (or unmark) a cell as flapping: class `flapping`, data-flap (the changes), ⟳. */
function flapClass(td, flap) {
  if (flap) {
    td.classList.add('flapping');
    td.dataset.flap = String(flap.changes);
    td._fl.textContent = '⟳';
  } else {
    delete td.dataset.flap;
    td._fl.textContent = '';
  }
}

function patchCell(td, node, c, info, hint, flap) {
  const isig = info ? info.sig : '';
  const sig = c
    ? `${node}\u0001${c.state}\u0001${c['paths-active']}\u0001${c['paths-total']}\u0001${c.transport}\u0001${isig}`
    : `${node}\u0001\u0001${isig}`;
  if (td._sig === sig && td._hint === hint && td._flap === flap) return;
  td._sig = sig;
  td._hint = hint;
  td._flap = flap;
  if (td.dataset.node !== node) td.dataset.node = node;
  const extra = info ? info.lines : [];
  if (!c) {
    td.className = 'cell none';
    flapClass(td, flap);
    delete td.dataset.hint;
    td.dataset.state = 'none';
    td._ic.textContent = '';
    td._sr.textContent = 'not present';
    td._tx.data = '';
    td.title = [`${node}: not present, not expected`, flap && flap.line, ...extra].filter(Boolean).join('\n');
    return;
  }
  const s = normState(c.state);
  const a = c['paths-active'];
  const t = c['paths-total'];
  const counts = typeof a === 'number' && typeof t === 'number';
  // A hint about lost paths explains only the cells that lost some.
  const mark = hint && !(hint.problemsOnly && s === 'optimal') ? hint : undefined;
  td.className = mark ? `cell st-${s} hinted hint-${mark.severity}` : `cell st-${s}`;
  flapClass(td, flap);
  if (mark) td.dataset.hint = mark.severity;
  else delete td.dataset.hint;
  td.dataset.state = s;
  td._ic.textContent = STATES[s].icon;
  // The icon tells the state without colour; screen readers get the word (and the hint).
  td._sr.textContent = (counts ? `${STATES[s].label} ` : '') + (mark ? 'root-cause hint ' : '') +
    (flap ? 'flapping ' : '');
  td._tx.data = counts ? `${a}/${t}` : STATES[s].label;
  const lines = [`${node}: ${STATES[s].label}`];
  if (counts) lines.push(`${a} of ${t} paths active`);
  if (typeof c.transport === 'string') lines.push(`transport: ${c.transport}`);
  if (mark) lines.push(...mark.lines);
  if (flap) lines.push(flap.line);
  td.title = lines.concat(extra).join('\n');
}

function syncBanners() {
  const offline = model.overview.filter((o) => o.online === false);
  const issues = Object.entries(model.issues);
  const key = JSON.stringify([model.stale, offline.map((o) => [o.node, o['last-broadcast'], o.member]), issues, model.docProblems]);
  if (ui.bannerKey === key) return;
  ui.bannerKey = key;
  ui.staleBanner.hidden = !model.stale;
  replace(ui.staleBanner, model.stale
    ? [h('strong', { text: 'Data is stale: ' }), model.stale,
      ' — showing the last good status; it may not reflect the cluster now.']
    : []);
  const parts = [];
  if (model.docProblems.length) {
    parts.push(h('div', { class: 'banner error', id: 'document-banner', role: 'alert' },
      h('strong', { text: 'Stored configuration problems (read as empty until repaired): ' }),
      h('ul', null, model.docProblems.map((p) => h('li', { text: p })))));
  }
  if (offline.length) {
    parts.push(h('div', { class: 'banner warn', id: 'offline-banner' },
      h('strong', { text: `Offline node${offline.length > 1 ? 's' : ''} (${offline.length}): ` }),
      h('ul', { class: 'inline-list' }, offline.map((o) => h('li', { dataset: { node: o.node } },
        h('a', { href: `#/node/${encodeURIComponent(o.node)}`, text: o.node }),
        typeof o['last-broadcast'] === 'number'
          ? ` — last broadcast ${fmtTime(o['last-broadcast'])}`
          : o.agent === 'never-seen'
            ? ' — agent never seen (install and start mpcluster there, or fix the storage\'s node list)'
            : ' — never reported')))));
  }
  const errs = [];
  for (const [node, i] of issues) {
    if (!i || typeof i !== 'object') continue;
    for (const [what, ek, tk] of [['apply', 'apply-error', 'apply-time'], ['collect', 'collect-error', 'collect-time'], ['publish', 'publish-error', 'publish-time']]) {
      if (!i[ek]) continue;
      errs.push(h('li', { dataset: { node, kind: what } },
        h('strong', { text: node }), ` — ${what} failed`,
        i[tk] ? ` at ${fmtTime(i[tk])}` : '', ': ', h('span', { class: 'msg', text: str(i[ek]) })));
    }
  }
  for (const [node, i] of issues) {
    if (!i || typeof i !== 'object') continue;
    for (const [what, k] of [['apply-waiting', 'apply-waiting'], ['plan', 'plan-error']]) {
      if (!i[k]) continue;
      errs.push(h('li', { dataset: { node, kind: what } },
        h('strong', { text: node }), ' — ', h('span', { class: 'msg', text: str(i[k]) })));
    }
  }
  for (const [node, i] of issues) {
    if (!i || typeof i !== 'object' || !i['broadcast-error']) continue;
    errs.push(h('li', { dataset: { node, kind: 'broadcast' } },
      h('strong', { text: node }), ' — ', h('span', { class: 'msg', text: str(i['broadcast-error']) })));
  }
  if (errs.length) {
    parts.push(h('div', { class: 'banner error', id: 'error-banner' },
      h('strong', { text: 'Node errors:' }), h('ul', null, errs)));
  }
  replace(ui.nodeBanner, parts);
}

/** The hint banners, rebuilt only when the hints or the aliases of their LUNs change. */
function syncHints() {
  const names = new Map();
  if (model.hints.length) {
    const hinted = new Set(model.hints.flatMap((x) => x.luns));
    for (const r of model.rows) if (r.alias && hinted.has(r.wwid)) names.set(r.wwid, r.alias);
  }
  const key = `${model.hintKey}\u0001${JSON.stringify([...names])}`;
  if (ui.hintKey === key) return;
  ui.hintKey = key;
  renderBanners(ui.hintBanners, model.hints, names);
}

function syncSummary() {
  const counts = { failed: 0, missing: 0, degraded: 0, unknown: 0, optimal: 0 };
  for (const r of model.rows) counts[r.state] += 1;
  const key = JSON.stringify(counts);
  if (ui.legend.dataset.key !== key) {
    ui.legend.dataset.key = key;
    replace(ui.legend, h('span', { class: 'legend-title', text: 'LUNs:' }), Object.keys(counts).map((s) => h('span', { class: `legend-item st-${s}`, dataset: { state: s }, title: `${counts[s]} LUNs ${STATES[s].label}` },
      h('span', { class: 'ic', 'aria-hidden': 'true', text: STATES[s].icon }), ` ${STATES[s].label} `,
      h('b', { text: String(counts[s]) }))));
  }
  setText(ui.summary, `${view.rows.length} of ${model.rows.length} LUNs · ` +
    `${view.cols.length} of ${model.nodeNames.length} nodes · updated ${model.at}`);
}
