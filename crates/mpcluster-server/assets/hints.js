// Root-cause hints on the health page: one banner per hint above the matrix, and an index,
// built when the hints change (not per cell render), that tells the matrix which cells (LUN x
// node), LUN rows (a hint that names LUNs but no nodes) and node columns (nodes but no LUNs) a
// hint explains: a windowed row looks its LUN up once, each cell checks the few hints on it.

import { fmtTime, h, replace, str } from './util.js';

/** Hint severities: banner class and words, most severe first. */
export const SEVERITY = {
  critical: { rank: 0, label: 'Critical', banner: 'error' },
  warning: { rank: 1, label: 'Warning', banner: 'warn' },
  info: { rank: 2, label: 'Info', banner: 'info' },
};

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const severityOf = (s) => (hasOwn(SEVERITY, s) ? s : 'warning');
const strings = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === 'string') : []);

// Hints that explain lost paths: their marker goes on cells that show a problem only.
const PATH_LOSS = new Set(['target-side', 'host-side']);

/** The status's hints, checked (peer data) and most severe first. */
export function readHints(status) {
  const list = status && Array.isArray(status.hints) ? status.hints : [];
  const out = [];
  for (const x of list) {
    if (!x || typeof x !== 'object' || typeof x.message !== 'string') continue;
    out.push({
      id: str(x.id) || x.message,
      kind: str(x.kind) || 'hint',
      severity: severityOf(x.severity),
      nodes: strings(x.nodes),
      luns: strings(x.luns),
      message: x.message,
      since: typeof x.since === 'number' ? x.since : null,
      targetPort: str(x['target-port']),
      adapters: strings(x['host-adapters']),
    });
  }
  out.sort((a, b) => SEVERITY[a.severity].rank - SEVERITY[b.severity].rank);
  return out;
}

/** One line of a cell's, row's or column's title. */
function titleLine(hint) {
  return `◆ ${SEVERITY[hint.severity].label} hint (${hint.kind}): ${hint.message}`;
}

/** One mark for several hints: the worst severity, every sentence. */
function merge(marks) {
  let severity = marks[0].severity;
  for (const m of marks) if (SEVERITY[m.severity].rank < SEVERITY[severity].rank) severity = m.severity;
  return {
    severity, lines: marks.flatMap((m) => m.lines), problemsOnly: marks.every((m) => m.problemsOnly), key: '',
  };
}

/**
 * The markers of `hints`: `{ cells: Map<wwid, {entries: [{nodes: Set, mark}], merged}>,
 * rows: Map<wwid, mark>, cols: Map<node, mark>, marks }`, each mark `{ severity, lines,
 * problemsOnly }`. Building it costs one entry per hint and LUN (a hint on 1000 LUNs x 64
 * nodes is 1000 entries sharing one node set); cellMark() finds a cell's mark. A hint that
 * is unchanged since `prev` keeps its mark object, so the cells it marks (compared by
 * identity) are not touched again.
 */
export function hintIndex(hints, prev) {
  const cells = new Map();
  const rows = new Map();
  const cols = new Map();
  const marks = new Map();
  const add = (map, key, mark) => {
    const m = map.get(key);
    map.set(key, m ? merge([m, mark]) : mark);
  };
  for (const hint of hints) {
    const key = JSON.stringify([hint.id, hint.kind, hint.severity, hint.message]);
    const mark = (prev && prev.marks.get(key)) || {
      severity: hint.severity, lines: [titleLine(hint)], problemsOnly: PATH_LOSS.has(hint.kind), key,
    };
    marks.set(key, mark);
    if (hint.luns.length && hint.nodes.length) {
      const nodes = new Set(hint.nodes);
      for (const w of hint.luns) {
        let per = cells.get(w);
        if (!per) {
          per = { entries: [], merged: new Map() };
          cells.set(w, per);
        }
        per.entries.push({ nodes, mark });
      }
    } else if (hint.luns.length) {
      for (const w of hint.luns) add(rows, w, mark);
    } else {
      for (const n of hint.nodes) add(cols, n, mark);
    }
  }
  return { cells, rows, cols, marks };
}

/** The mark of the cell of `node` in a row (`index.cells.get(wwid)`), or undefined. */
export function cellMark(row, node) {
  if (!row) return undefined;
  const e = row.entries;
  let found;
  let many = false;
  for (let i = 0; i < e.length; i += 1) {
    if (!e[i].nodes.has(node)) continue;
    if (found) {
      many = true;
      break;
    }
    found = e[i].mark;
  }
  if (!many) return found;
  // Several hints on one cell: one merged mark, kept for as long as this index is.
  let m = row.merged.get(node);
  if (!m) {
    m = merge(e.filter((x) => x.nodes.has(node)).map((x) => x.mark));
    row.merged.set(node, m);
  }
  return m;
}

/** An empty index (no hints). */
export const NO_HINTS = hintIndex([]);

const LIST_MAX = 8;

/** `items` as an inline list, at most LIST_MAX shown, then "and N more". */
function inlineList(cls, items, item) {
  const shown = items.slice(0, LIST_MAX).map(item);
  const rest = items.length - shown.length;
  return h('ul', { class: `inline-list ${cls}` }, shown, rest > 0 ? h('li', { text: `and ${rest} more` }) : null);
}

/**
 * One banner per hint in `el`: severity-coloured, the sentence, the nodes and LUNs (by alias
 * where the LUN has one), since when. `names` maps a WWID to its alias.
 */
export function renderBanners(el, hints, names) {
  replace(el, hints.map((hint) => {
    const sev = SEVERITY[hint.severity];
    const meta = [];
    if (hint.nodes.length) {
      meta.push(h('span', { class: 'hint-nodes' }, `Node${hint.nodes.length > 1 ? 's' : ''}: `,
        inlineList('nodes', hint.nodes, (n) => h('li', { dataset: { node: n } },
          h('a', { href: `#/node/${encodeURIComponent(n)}`, text: n })))));
    }
    if (hint.luns.length) {
      meta.push(h('span', { class: 'hint-luns' }, `LUN${hint.luns.length > 1 ? 's' : ''}: `,
        inlineList('luns', hint.luns, (w) => h('li', { dataset: { wwid: w }, title: w, text: names.get(w) || w }))));
    }
    if (hint.since !== null) {
      meta.push(h('span', { class: 'hint-since', text: `since ${fmtTime(hint.since)}` }));
    }
    return h('div', {
      class: `banner ${sev.banner} hint hint-${hint.severity}`,
      dataset: { hintId: hint.id, kind: hint.kind, severity: hint.severity },
    },
    h('span', { class: 'hint-mark', 'aria-hidden': 'true', text: '◆ ' }),
    h('strong', { class: 'hint-kind', text: `${sev.label} · ${hint.kind}: ` }),
    h('span', { class: 'msg', text: hint.message }),
    h('div', { class: 'hint-meta' }, meta.map((m, i) => (i ? [' · ', m] : m))));
  }));
}
