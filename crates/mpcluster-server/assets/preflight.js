// The maintenance pre-flight on the health page: the components to take down (target ports,
// nodes, adapters of a node; several at once, all down together), the redundancy to keep,
// "Check" -> POST /cluster/multipath/preflight, and the answer: SAFE, UNSAFE (each LUN that
// would lose its last usable path, per node, with the storages using it) or UNKNOWN (which
// nodes' paths are not known). A 400's field errors (`down.<i>.node`, `min-paths`, ...) are
// shown next to their inputs. Nothing is changed by a check, so a read-only token may ask.
// What was typed, whether the form is open and the last answer survive page switches.

import { api } from './api.js';
import { clearErrors, markFieldErrors, textField } from './form.js';
import { clock, h, replace, str } from './util.js';

const KINDS = [
  { value: 'target', label: 'Target port' },
  { value: 'node', label: 'Whole node' },
  { value: 'adapter', label: 'Adapter of a node' },
];

const blankRow = () => ({ kind: 'target', target: '', node: '', adapter: '' });

// Module state: kept across page switches.
const saved = { open: false, rows: [blankRow()], minPaths: '', result: null };

let ui = null; // DOM references while mounted
let generation = 0;

/** The pre-flight panel (a <details>), built from the saved state. */
export function build() {
  generation += 1;
  const rowsEl = h('div', { id: 'pf-rows', class: 'pf-rows' });
  const help = h('p', { id: 'pf-help', class: 'help', text: 'Target port: an iSCSI portal (10.0.0.1:3260 or its address), an FC target WWPN, an NVMe controller address, or a target name (IQN, NQN: all its ports). Adapter: host3, a PCI address, an initiator address or a host WWPN. Computed from the paths the nodes report now; nothing is changed.' });
  const min = textField('pf', 'min-paths', 'Keep at least', 'min-paths', {
    type: 'number', min: '0', step: '1', inputmode: 'numeric', placeholder: '2',
    title: 'LUNs left with fewer usable paths than this on some node are listed (default 2)',
  });
  min.wrap.append(h('span', { class: 'unit', text: 'paths' }));
  min.input.value = saved.minPaths;
  min.input.addEventListener('input', () => { saved.minPaths = min.input.value; });
  const add = h('button', { type: 'button', id: 'pf-add', class: 'secondary' }, '+ Add component');
  const check = h('button', { type: 'submit', id: 'preflight-check', class: 'primary' }, 'Check');
  const result = h('div', { id: 'preflight-result', class: 'pf-result', 'aria-live': 'polite' });
  const nodeList = h('datalist', { id: 'pf-node-list' });
  const targetList = h('datalist', { id: 'pf-target-list' });
  const form = h('form', { id: 'preflight-form', novalidate: true, 'aria-describedby': 'pf-help' },
    rowsEl,
    h('div', { class: 'pf-options' }, add, min.wrap, check),
    help, nodeList, targetList);
  const body = h('div', { class: 'pf-body' }, form, result);
  const details = h('details', { id: 'preflight', class: 'preflight', open: saved.open },
    h('summary', null, 'Maintenance pre-flight',
      h('span', { class: 'sub', text: ' — would every LUN keep a usable path on every node with these target ports, nodes or adapters down?' })),
    body);
  details.addEventListener('toggle', () => { saved.open = details.open; });
  add.addEventListener('click', () => {
    saved.rows.push(blankRow());
    renderRows();
    const last = ui.rows[ui.rows.length - 1];
    if (last) last.kind.focus();
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
  ui = { details, form, body, rowsEl, min, check, result, nodeList, targetList, rows: [], listsKey: null };
  renderRows();
  if (saved.result) showResult(saved.result);
  return details;
}

export function unmount() {
  generation += 1;
  ui = null;
}

/** Suggestions for the inputs: the cluster's nodes, and the target ports hints name. */
export function update(nodeNames, hints) {
  if (!ui) return;
  const targets = [...new Set(hints.map((x) => x.targetPort).filter(Boolean))].sort();
  const key = JSON.stringify([nodeNames, targets]);
  if (ui.listsKey === key) return;
  ui.listsKey = key;
  replace(ui.nodeList, nodeNames.map((n) => h('option', { value: n })));
  replace(ui.targetList, targets.map((t) => h('option', { value: t })));
}

// ---------------------------------------------------------------------------------------------
// The component rows

function renderRows() {
  ui.rows = saved.rows.map((row, i) => componentRow(row, i));
  replace(ui.rowsEl, ui.rows.map((r) => r.el));
}

/** Row `i`: its kind, the inputs that kind needs, its own error line, a Remove button. */
function componentRow(row, i) {
  const kind = h('select', { id: `pf-kind-${i}`, name: `kind-${i}`, 'aria-describedby': `pf-row-${i}-error` },
    KINDS.map((k) => h('option', { value: k.value, text: k.label, selected: k.value === row.kind })));
  const target = textField('pf', `target-${i}`, 'Target port', `down.${i}.target`, { placeholder: '10.0.0.1:3260', list: 'pf-target-list' });
  const node = textField('pf', `node-${i}`, 'Node', `down.${i}.node`, { list: 'pf-node-list' });
  const adapter = textField('pf', `adapter-${i}`, 'Adapter', `down.${i}.adapter`, { placeholder: 'host3' });
  target.set(row.target);
  node.set(row.node);
  adapter.set(row.adapter);
  const err = h('p', { id: `pf-row-${i}-error`, class: 'field-error', dataset: { field: `down.${i}` }, 'aria-live': 'polite' });
  const remove = saved.rows.length > 1
    ? h('button', { type: 'button', class: 'secondary', dataset: { action: 'remove' }, 'aria-label': `Remove component ${i + 1}`, text: 'Remove' })
    : null;
  const kindWrap = h('div', { class: 'field' }, h('label', { for: kind.id, text: `Component ${i + 1}` }), kind);
  const el = h('div', { class: 'pf-row', dataset: { row: String(i) } },
    kindWrap, target.wrap, node.wrap, adapter.wrap, remove, err);
  const r = {
    el, kind, target, node, adapter,
    // The row's own error (a combination that means nothing), shown like a field's.
    self: { key: `down.${i}`, err, focusEl: kind, wrap: kindWrap },
  };
  const show = () => {
    target.wrap.hidden = row.kind !== 'target';
    node.wrap.hidden = row.kind === 'target';
    adapter.wrap.hidden = row.kind !== 'adapter';
  };
  show();
  kind.addEventListener('change', () => {
    row.kind = kind.value;
    show();
  });
  for (const [f, k] of [[target, 'target'], [node, 'node'], [adapter, 'adapter']]) {
    f.input.addEventListener('input', () => { row[k] = f.input.value; });
  }
  if (remove) {
    remove.addEventListener('click', () => {
      saved.rows.splice(i, 1);
      renderRows();
      const next = ui.rows[Math.min(i, ui.rows.length - 1)];
      if (next) next.kind.focus();
    });
  }
  return r;
}

/** Every field object of the form (for clearing and placing errors). */
function fields() {
  const out = [ui.min];
  for (const r of ui.rows) out.push(r.target, r.node, r.adapter, r.self);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Check

/**
 * The request body, and for each component sent the row it came from. Rows left blank are not
 * sent; a half-filled one is (the server says what is missing, next to the input).
 */
function request() {
  const down = [];
  const from = [];
  saved.rows.forEach((row, i) => {
    const t = row.target.trim();
    const n = row.node.trim();
    const a = row.adapter.trim();
    let d = null;
    if (row.kind === 'target' && t) d = { target: t };
    else if (row.kind === 'node' && n) d = { node: n };
    else if (row.kind === 'adapter' && (n || a)) d = { node: n, adapter: a };
    if (d) {
      down.push(d);
      from.push(i);
    }
  });
  const body = { down };
  const m = saved.minPaths.trim();
  if (m) body['min-paths'] = /^\d+$/.test(m) ? Number(m) : m;
  return { body, from };
}

async function submit() {
  const gen = generation;
  const all = fields();
  clearErrors(all, ui.result);
  ui.result.className = 'pf-result';
  const { body, from } = request();
  if (!body.down.length) {
    const first = ui.rows[0];
    const f = first.kind.value === 'target' ? first.target : first.node;
    f.err.textContent = 'Give at least one target port, node or adapter to take down.';
    f.focusEl.setAttribute('aria-invalid', 'true');
    f.wrap.classList.add('invalid');
    f.focusEl.focus();
    return;
  }
  ui.check.disabled = true;
  ui.check.textContent = 'Checking…';
  let report = null;
  let failure = null;
  try {
    report = await api('POST', '/cluster/multipath/preflight', body);
  } catch (e) {
    failure = e;
  }
  if (gen !== generation || !ui) {
    if (report) saved.result = { report, at: clock() };
    return;
  }
  ui.check.disabled = false;
  ui.check.textContent = 'Check';
  if (failure) {
    if (failure.status === 401) return; // the login screen takes over
    showFailure(failure, from);
    return;
  }
  saved.result = { report, at: clock() };
  showResult(saved.result);
  reveal();
}

/** Scroll the panel so that the answer shows (all of it when it fits, else its start). */
function reveal() {
  const b = ui.body;
  const top = ui.result.offsetTop;
  const bottom = top + ui.result.offsetHeight;
  if (bottom > b.scrollTop + b.clientHeight) b.scrollTop = Math.max(0, Math.min(top - 4, bottom - b.clientHeight));
}

/** An API failure: field errors next to their inputs (`down.<i>` of the request is row
 * `from[i]`), the message above the result. */
function showFailure(e, from) {
  const byKey = new Map();
  for (const f of [ui.min]) byKey.set(f.key, f);
  from.forEach((row, i) => {
    const r = ui.rows[row];
    byKey.set(`down.${i}.target`, r.target);
    byKey.set(`down.${i}.node`, r.node);
    byKey.set(`down.${i}.adapter`, r.adapter);
    byKey.set(`down.${i}`, r.self);
  });
  const { rest, first } = markFieldErrors(e, byKey);
  ui.result.className = 'pf-result';
  replace(ui.result, h('div', { id: 'preflight-error', class: 'banner error', role: 'alert' },
    h('strong', { text: 'Cannot check: ' }),
    first && !rest.length ? h('span', { title: e.message, text: 'see the marked input(s).' }) : h('span', { text: e.message }),
    rest.length ? h('ul', null, rest) : null));
  if (first) first.focusEl.focus();
  else reveal();
}

// ---------------------------------------------------------------------------------------------
// The answer

const VERDICTS = {
  safe: { cls: 'ok', word: 'SAFE', tail: 'leaves every LUN a usable path on every node' },
  unsafe: { cls: 'error', word: 'UNSAFE', tail: 'would cut LUNs off' },
  unknown: { cls: 'warn', word: 'UNKNOWN', tail: "cannot be judged: some nodes' paths are not known" },
};

const list = (v) => (Array.isArray(v) ? v.filter((x) => x && typeof x === 'object') : []);

/** A component as the CLI writes it: `target=X`, `node=N`, `node=N,adapter=A`. */
function downText(d) {
  return ['target', 'node', 'adapter'].filter((k) => typeof d[k] === 'string').map((k) => `${k}=${d[k]}`).join(',');
}

function lunCell(i) {
  const name = str(i.name);
  return h('td', { class: 'lun' }, name ? [h('strong', { text: name }), ' '] : null, h('code', { class: 'wwid', text: str(i.wwid) }));
}

/** A table of LUN impacts: LUN, node, paths, storages. */
function impactTable(id, rows, paths) {
  return h('table', { id, class: 'grid pf-impact' },
    h('thead', null, h('tr', null, ['LUN', 'Node', 'Usable paths', 'Used by (storages)'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', null, rows.map((i) => h('tr', { dataset: { wwid: str(i.wwid), node: str(i.node) } },
      lunCell(i),
      h('td', { class: 'node', text: str(i.node) }),
      h('td', { class: 'paths', text: paths(i) }),
      h('td', { class: 'used-by', text: str(i['used-by']) || '—' })))));
}

function showResult({ report, at }) {
  const v = Object.prototype.hasOwnProperty.call(VERDICTS, report.verdict) ? report.verdict : 'unknown';
  const meta = VERDICTS[v];
  const down = list(report.down).map(downText).join(' + ') || 'nothing';
  const lost = list(report.lost);
  const below = list(report.below);
  const unchecked = list(report.unchecked);
  const failed = list(report['already-failed']);
  const unmatched = list(report.unmatched);
  const checked = Array.isArray(report['checked-nodes']) ? report['checked-nodes'].map(str) : [];
  const min = typeof report['min-paths'] === 'number' ? report['min-paths'] : 2;
  const staleNodes = [...new Set(unchecked.map((u) => str(u.node)))];
  const parts = [];
  parts.push(h('div', { id: 'preflight-verdict', class: `banner ${meta.cls}`, role: 'status', dataset: { verdict: v } },
    h('strong', { class: 'verdict', text: meta.word }), `: taking down ${down} ${meta.tail}`,
    v === 'unknown' && staleNodes.length ? ` (${staleNodes.join(', ')})` : '',
    h('span', { class: 'sub', text: ` — checked at ${at} on ${checked.length} node${checked.length === 1 ? '' : 's'}${checked.length ? ` (${checked.join(', ')})` : ''}` })));
  if (lost.length) {
    parts.push(h('h3', { text: 'Would lose its last usable path' }),
      impactTable('preflight-lost', lost, (i) => `all ${i.usable} go down`));
  }
  if (unchecked.length) {
    parts.push(h('h3', { text: 'Not known' }),
      h('ul', { id: 'preflight-unchecked' }, unchecked.map((u) => h('li', { dataset: { node: str(u.node) } },
        h('strong', { text: str(u.node) }), u.wwid ? [' ', h('code', { text: str(u.wwid) })] : null, `: ${str(u.reason)}`))));
  }
  if (below.length) {
    parts.push(h('h3', { text: `Would drop below ${min} paths` }),
      impactTable('preflight-below', below, (i) => `${i.remaining} of ${i.usable} left`));
  }
  if (failed.length) {
    parts.push(h('h3', { text: 'Already without a usable path (not by this maintenance)' }),
      impactTable('preflight-failed', failed, () => 'none now'));
  }
  if (unmatched.length) {
    parts.push(h('h3', { text: 'Matched no known path or node (a typo?)' }),
      h('ul', { id: 'preflight-unmatched' }, unmatched.map((d) => h('li', null, h('code', { text: downText(d) })))));
  }
  ui.result.className = `pf-result verdict-${v}`;
  replace(ui.result, parts);
}
