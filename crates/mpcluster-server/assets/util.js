// Small DOM and formatting helpers. Every string from the API (WWIDs, aliases, node names,
// error messages) reaches the page as a text node or an attribute value: nothing here parses
// HTML.

/**
 * Create an element. `attrs`: `class`, `text` (textContent), `on` ({event: fn}, added with
 * addEventListener), `dataset` ({key: value}), boolean/property keys (`hidden`, `disabled`,
 * `checked`, `value`) and any other attribute (set with setAttribute). Children: nodes or
 * strings (as text), null/false skipped, arrays flattened.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'value' ||
               k === 'readOnly' || k === 'required' || k === 'selected') el[k] = v;
      else if (k.startsWith('on')) throw new Error('inline handlers are not used: ' + k);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set textContent only when it differs (no needless DOM mutation). */
export function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

/** The five map states: colour class, icon and words, most severe first. */
export const STATES = {
  failed: { icon: '✕', label: 'failed', rank: 0 },
  missing: { icon: '◌', label: 'missing', rank: 1 },
  degraded: { icon: '▲', label: 'degraded', rank: 2 },
  unknown: { icon: '?', label: 'unknown', rank: 3 },
  optimal: { icon: '✓', label: 'optimal', rank: 4 },
};

/** Severity rank of a state (lower is worse); absent cells sort last. */
export function stateRank(s) {
  const st = STATES[s];
  return st ? st.rank : 5;
}

/** A state known to the UI, else `unknown` (peer data is not trusted to be one of ours). */
export function normState(s) {
  return Object.prototype.hasOwnProperty.call(STATES, s) ? s : 'unknown';
}

/** A state badge: icon + word, coloured by class. */
export function badge(state) {
  const s = normState(state);
  return h('span', { class: `badge st-${s}` },
    h('span', { class: 'ic', 'aria-hidden': 'true', text: STATES[s].icon }), ' ', STATES[s].label);
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
/** Natural order (`n2` before `n10`). */
export const naturalCompare = (a, b) => collator.compare(a, b);

/** Bytes in binary units (`2.0 TiB`, `500 GiB`). */
export function humanSize(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const digits = i === 0 || v >= 100 || Number.isInteger(v) ? 0 : 1;
  return `${v.toFixed(digits)} ${units[i]}`;
}

/** A unix time (seconds) as local `YYYY-MM-DD HH:MM:SS`; '' when absent. */
export function fmtTime(unix) {
  if (typeof unix !== 'number' || !Number.isFinite(unix)) return '';
  const d = new Date(unix * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `HH:MM:SS` of now. */
export function clock() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A string value of peer data, '' for anything else. */
export function str(v) {
  return typeof v === 'string' ? v : (typeof v === 'number' ? String(v) : '');
}
