// Configuration: the defaults knobs (a form built from the server's knob table), the WWID
// allow-list (add with alias and per-LUN knobs, edit, remove with confirmation) and the
// overrides text. Every write sends the digest the page read; a lost race (409) shows "changed
// meanwhile — reload" and keeps everything typed: "Reload" refreshes only the fields the user
// has not touched. API field errors are shown next to their fields.

import { api, seg } from './api.js';
import { clearErrors, messageArea, showFailure, showOk, textField } from './form.js';
import { h, humanSize, replace, str } from './util.js';

let generation = 0;
let st = null; // page state while mounted

export function unmount() {
  generation += 1;
  st = null;
}

export function mount(main) {
  generation += 1;
  const gen = generation;
  st = {
    gen, digest: null, knobs: [], defaults: {}, fixed: {}, wwids: [], overridesDigest: null,
    overrides: '', suggestions: [], editing: null, defaultsForm: null, wwidForm: null,
    overridesForm: null,
  };
  const status = h('div', { id: 'config-status' }, h('p', { class: 'banner info', text: 'Loading the configuration…' }));
  const page = h('section', { class: 'page config' }, h('h1', { text: 'Configuration' }), status);
  main.appendChild(page);
  load().then(() => {
    if (!alive(gen)) return;
    replace(status);
    page.append(buildDefaults(), buildAllowList(), buildOverrides(), buildDialog());
    refreshAllowTable();
    refreshSuggestions();
  }).catch((e) => {
    if (!alive(gen) || e.status === 401) return;
    replace(status, h('p', { class: 'banner error', role: 'alert', text: `Cannot load the configuration: ${e.message}` }));
  });
}

const alive = (gen) => st !== null && st.gen === gen;

/** Read everything from the server into `st` (not the forms). */
async function load() {
  const [cfg, list, ov] = await Promise.all([
    api('GET', '/cluster/multipath/config'),
    api('GET', '/cluster/multipath/wwids'),
    api('GET', '/cluster/multipath/overrides'),
  ]);
  st.knobs = Array.isArray(cfg.knobs) ? cfg.knobs : [];
  st.defaults = cfg.defaults || {};
  st.fixed = cfg.fixed || {};
  st.digest = cfg.digest;
  st.wwids = Array.isArray(list.wwids) ? list.wwids : [];
  if (list.digest) st.digest = list.digest;
  st.overrides = str(ov.content);
  st.overridesDigest = ov.digest;
  await loadSuggestions();
}

/** WWIDs the nodes report that the allow-list lacks. */
async function loadSuggestions() {
  let status = null;
  try {
    status = await api('GET', '/cluster/multipath/status');
  } catch (e) {
    status = e.data && typeof e.data === 'object' ? e.data : null;
  }
  const listed = new Set(st.wwids.map((w) => w.wwid));
  const luns = status && Array.isArray(status.luns) ? status.luns : [];
  st.suggestions = luns.filter((l) => l && typeof l.wwid === 'string' && !listed.has(l.wwid))
    .map((l) => ({
      wwid: l.wwid,
      size: typeof l.size === 'number' ? l.size : null,
      nodes: l.nodes && typeof l.nodes === 'object' ? Object.keys(l.nodes) : [],
    }));
}

// ---------------------------------------------------------------------------------------------
// Fields

/**
 * An input for one knob, typed by its value-type: integer -> number input with min/max,
 * choice -> select, choice-or-integer -> select of the words or "number" plus a number input.
 * Empty means unset (the default applies).
 */
function knobField(prefix, knob, errKey) {
  const id = `${prefix}-${knob.name}`;
  const errId = `${id}-error`;
  const vt = knob['value-type'] || {};
  const words = Array.isArray(vt.words) ? vt.words.map(str) : [];
  const unit = vt.unit ? str(vt.unit) : '';
  const range = (typeof vt.min === 'number' && typeof vt.max === 'number') ? `${vt.min}–${vt.max}` : '';
  const err = h('p', { id: errId, class: 'field-error', dataset: { field: errKey }, 'aria-live': 'polite' });
  const describedBy = `${errId} ${id}-help`;
  let get;
  let set;
  let control;
  let focusEl;
  if (vt.type === 'integer') {
    const input = h('input', {
      id, name: knob.name, type: 'number', step: '1', inputmode: 'numeric',
      min: vt.min, max: vt.max, placeholder: 'default', 'aria-describedby': describedBy,
    });
    get = () => (input.value.trim() === '' ? undefined : toValue(input.value.trim()));
    set = (v) => { input.value = v === undefined || v === null ? '' : String(v); };
    control = input;
    focusEl = input;
  } else if (vt.type === 'choice') {
    const sel = h('select', { id, name: knob.name, 'aria-describedby': describedBy },
      h('option', { value: '', text: '(default)' }), words.map((w) => h('option', { value: w, text: w })));
    get = () => (sel.value === '' ? undefined : sel.value);
    set = (v) => { sel.value = v === undefined || v === null ? '' : String(v); };
    control = sel;
    focusEl = sel;
  } else {
    const sel = h('select', { id, name: knob.name, 'aria-describedby': describedBy },
      h('option', { value: '', text: '(default)' }), words.map((w) => h('option', { value: w, text: w })),
      h('option', { value: '#', text: 'number…' }));
    const num = h('input', {
      id: `${id}-number`, type: 'number', step: '1', min: vt.min, max: vt.max, inputmode: 'numeric',
      'aria-label': `${knob.name} number${unit ? ` in ${unit}` : ''}`, 'aria-describedby': describedBy, hidden: true,
    });
    const unitEl = h('span', { class: 'unit', text: unit, hidden: true });
    sel.addEventListener('change', () => {
      num.hidden = sel.value !== '#';
      unitEl.hidden = num.hidden;
      if (!num.hidden) num.focus();
    });
    get = () => {
      if (sel.value === '') return undefined;
      if (sel.value === '#') return num.value.trim() === '' ? '' : toValue(num.value.trim());
      return sel.value;
    };
    set = (v) => {
      if (v === undefined || v === null || v === '') {
        sel.value = '';
        num.value = '';
      } else if (typeof v === 'number' || !words.includes(String(v))) {
        sel.value = '#';
        num.value = String(v);
      } else {
        sel.value = String(v);
        num.value = '';
      }
      num.hidden = sel.value !== '#';
      unitEl.hidden = num.hidden;
    };
    control = h('span', { class: 'combo' }, sel, num, unitEl);
    focusEl = sel;
  }
  const help = [str(knob.description)];
  if (range || unit) help.push(` (${[range, unit].filter(Boolean).join(' ')})`);
  if (knob.keyword) help.push(' — ', h('code', { text: `${str(knob.keyword)}` }));
  const wrap = h('div', { class: 'field', dataset: { knob: knob.name } },
    h('label', { for: id, text: knob.name }),
    control,
    h('p', { id: `${id}-help`, class: 'help' }, help),
    err);
  const f = { name: knob.name, key: errKey, wrap, err, focusEl, get, set, dirty: false, loaded: undefined };
  wrap.addEventListener('input', () => { f.dirty = true; });
  wrap.addEventListener('change', () => { f.dirty = true; });
  return f;
}

function toValue(s) {
  return /^-?\d+$/.test(s) ? Number(s) : s;
}

const same = (a, b) => (a === undefined ? b === undefined : String(a) === String(b));

/** Re-read the server state; fields the user has not changed take the new values. */
async function reloadKeepingInput() {
  const gen = st.gen;
  await load();
  if (!alive(gen)) return;
  for (const f of st.defaultsForm.fields) {
    f.loaded = st.defaults[f.name];
    if (!f.dirty) f.set(f.loaded);
  }
  if (!st.overridesForm.dirty) st.overridesForm.textarea.value = st.overrides;
  refreshAllowTable();
  refreshSuggestions();
  for (const m of [st.defaultsForm.msg, st.wwidForm.msg, st.overridesForm.msg]) {
    if (m.classList.contains('conflict')) {
      m.className = 'form-msg banner info';
      replace(m, 'Reloaded the current configuration; your changes are kept — review and save again.');
    }
  }
}

function reloadHandler(msg) {
  return () => {
    reloadKeepingInput().catch((e) => {
      msg.className = 'form-msg banner error';
      replace(msg, `Cannot reload: ${e.message}`);
    });
  };
}

// ---------------------------------------------------------------------------------------------
// Defaults

function buildDefaults() {
  const msg = messageArea('defaults-msg');
  const fields = st.knobs.map((k) => knobField('defaults', k, `defaults.${k.name}`));
  for (const f of fields) {
    f.loaded = st.defaults[f.name];
    f.set(f.loaded);
  }
  const fixed = Object.entries(st.fixed).map(([k, v]) => h('li', null, h('code', { text: `${k} ${str(v)}` })));
  const save = h('button', { type: 'submit', class: 'primary', id: 'defaults-save' }, 'Save defaults');
  const form = h('form', { id: 'defaults-form', class: 'card', novalidate: true },
    h('h2', { text: 'Defaults' }),
    h('p', { class: 'help' }, 'Cluster-wide multipath knobs. Unset knobs keep multipath\'s own default.'),
    msg,
    h('div', { class: 'fields' }, fields.map((f) => f.wrap)),
    fixed.length ? h('div', { class: 'fixed' }, h('p', { class: 'help', text: 'Always set by mpcluster (not editable):' }), h('ul', { class: 'plain' }, fixed)) : null,
    h('div', { class: 'actions' }, save));
  st.defaultsForm = { form, fields, msg };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(fields, msg);
    const body = { digest: st.digest };
    const del = [];
    for (const f of fields) {
      const v = f.get();
      if (same(v, f.loaded)) continue;
      if (v === undefined) del.push(f.name);
      else body[f.name] = v;
    }
    if (del.length) body.delete = del;
    if (Object.keys(body).length === 1) {
      showOk(msg, 'Nothing changed.');
      return;
    }
    save.disabled = true;
    try {
      const r = await api('PUT', '/cluster/multipath/config', body);
      st.digest = r.digest;
      for (const f of fields) {
        f.loaded = f.get();
        f.dirty = false;
      }
      showOk(msg, 'Defaults saved; every node applies them.');
    } catch (e) {
      if (e.status !== 401) showFailure(e, fields, msg, reloadHandler(msg));
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

// ---------------------------------------------------------------------------------------------
// Allow-list

function buildAllowList() {
  const msg = messageArea('wwid-msg');
  const perLun = st.knobs.filter((k) => k['per-lun']);
  const wwid = textField('wwid', 'wwid', 'WWID', 'wwid', { list: 'wwid-suggestions', required: true, size: 40 });
  const alias = textField('wwid', 'alias', 'Alias', 'alias', { size: 24, placeholder: 'optional' });
  const knobs = perLun.map((k) => knobField('wwid', k, k.name));
  const fields = [wwid, alias, ...knobs];
  const datalist = h('datalist', { id: 'wwid-suggestions' });
  const suggest = h('div', { id: 'wwid-suggest', class: 'suggest' });
  const title = h('h3', { id: 'wwid-form-title', text: 'Add a WWID' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'wwid-submit' }, 'Add to allow-list');
  const cancel = h('button', { type: 'button', class: 'secondary', id: 'wwid-cancel', hidden: true }, 'Cancel edit');
  const form = h('form', { id: 'wwid-form', class: 'subcard', novalidate: true },
    title, msg,
    h('div', { class: 'fields two' }, wwid.wrap, alias.wrap),
    datalist, suggest,
    h('details', { id: 'wwid-knobs' }, h('summary', { text: 'Per-LUN settings (optional)' }),
      h('div', { class: 'fields' }, knobs.map((f) => f.wrap))),
    h('div', { class: 'actions' }, submit, cancel));
  const table = h('table', { class: 'grid', id: 'wwid-table' },
    h('thead', null, h('tr', null, ['WWID', 'Alias', 'Per-LUN settings', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody'));
  st.wwidForm = { form, fields, wwid, alias, knobs, msg, table, datalist, suggest, title, submit, cancel };

  const toAdd = () => {
    st.editing = null;
    for (const f of fields) {
      f.set(undefined);
      f.loaded = undefined;
      f.dirty = false;
    }
    wwid.input.readOnly = false;
    title.textContent = 'Add a WWID';
    submit.textContent = 'Add to allow-list';
    cancel.hidden = true;
  };
  cancel.addEventListener('click', () => {
    clearErrors(fields, msg);
    toAdd();
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(fields, msg);
    submit.disabled = true;
    try {
      let r;
      if (st.editing) {
        const body = { digest: st.digest };
        const del = [];
        for (const f of fields.slice(1)) {
          const v = f.get();
          if (same(v, f.loaded)) continue;
          if (v === undefined) del.push(f.name);
          else body[f.name] = v;
        }
        if (del.length) body.delete = del;
        r = await api('PUT', `/cluster/multipath/wwids/${seg(st.editing)}`, body);
        showOk(msg, `Saved ${st.editing}.`);
      } else {
        const body = { digest: st.digest, wwid: wwid.input.value.trim() };
        for (const f of fields.slice(1)) {
          const v = f.get();
          if (v !== undefined) body[f.name] = v;
        }
        r = await api('POST', '/cluster/multipath/wwids', body);
        showOk(msg, `Added ${body.wwid}${body.alias ? ` as ${body.alias}` : ''}; every node applies it.`);
      }
      st.digest = r.digest;
      toAdd();
      await refreshList();
    } catch (e) {
      if (e.status !== 401) showFailure(e, fields, msg, reloadHandler(msg));
    } finally {
      submit.disabled = false;
    }
  });

  table.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    const w = b.closest('tr').dataset.wwid;
    const entry = st.wwids.find((e) => e.wwid === w);
    if (!entry) return;
    if (b.dataset.action === 'edit') startEdit(entry);
    else confirmRemove(entry);
  });

  return h('section', { class: 'card', id: 'allowlist', 'aria-labelledby': 'allowlist-title' },
    h('h2', { id: 'allowlist-title', text: 'WWID allow-list' }),
    h('p', { class: 'help' }, 'LUNs multipath may assemble on every node, with their alias and per-LUN settings.'),
    table, form);
}

function startEdit(entry) {
  const F = st.wwidForm;
  clearErrors(F.fields, F.msg);
  st.editing = entry.wwid;
  for (const f of F.fields) {
    f.loaded = f.name === 'wwid' ? entry.wwid : entry[f.name];
    f.set(f.loaded);
    f.dirty = false;
  }
  F.wwid.input.readOnly = true;
  F.title.textContent = `Edit ${entry.wwid}`;
  F.submit.textContent = 'Save entry';
  F.cancel.hidden = false;
  if (F.knobs.some((f) => f.loaded !== undefined)) F.form.querySelector('details').open = true;
  F.alias.input.focus();
}

async function refreshList() {
  const gen = st.gen;
  const list = await api('GET', '/cluster/multipath/wwids');
  if (!alive(gen)) return;
  st.wwids = Array.isArray(list.wwids) ? list.wwids : [];
  if (list.digest) st.digest = list.digest;
  await loadSuggestions();
  if (!alive(gen)) return;
  refreshAllowTable();
  refreshSuggestions();
}

function refreshAllowTable() {
  const F = st.wwidForm;
  const perLun = new Set(st.knobs.filter((k) => k['per-lun']).map((k) => k.name));
  const tbody = F.table.tBodies[0];
  if (!st.wwids.length) {
    replace(tbody, h('tr', null, h('td', { colspan: '4', class: 'empty', text: 'The allow-list is empty.' })));
    return;
  }
  replace(tbody, st.wwids.map((e) => {
    const knobs = Object.entries(e).filter(([k]) => perLun.has(k)).map(([k, v]) => `${k}=${str(v)}`);
    return h('tr', { dataset: { wwid: e.wwid } },
      h('td', { class: 'mono', text: e.wwid }),
      h('td', { class: 'alias', text: str(e.alias) || '—' }),
      h('td', { text: knobs.join(', ') || '—' }),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', dataset: { action: 'edit' }, 'aria-label': `Edit ${e.wwid}` }, 'Edit'),
        ' ',
        h('button', { type: 'button', class: 'danger', dataset: { action: 'remove' }, 'aria-label': `Remove ${e.wwid}` }, 'Remove')));
  }));
}

function refreshSuggestions() {
  const F = st.wwidForm;
  const describe = (s) => [s.size !== null ? humanSize(s.size) : '', s.nodes.length ? `on ${s.nodes.join(', ')}` : ''].filter(Boolean).join(' · ');
  replace(F.datalist, st.suggestions.map((s) => h('option', { value: s.wwid, label: describe(s) })));
  if (!st.suggestions.length) {
    replace(F.suggest);
    return;
  }
  const shown = st.suggestions.slice(0, 12);
  replace(F.suggest, h('p', { class: 'help', text: 'Reported by nodes but not on the allow-list:' }),
    h('ul', { class: 'plain suggestions' }, shown.map((s) => h('li', null,
      h('button', {
        type: 'button', class: 'link suggestion', dataset: { wwid: s.wwid },
        on: {
          click: () => {
            if (st.editing) return;
            F.wwid.set(s.wwid);
            F.wwid.dirty = true;
            F.alias.input.focus();
          },
        },
      }, h('span', { class: 'mono', text: s.wwid })),
      ' ', h('span', { class: 'sub', text: describe(s) })))),
    st.suggestions.length > shown.length
      ? h('p', { class: 'help', text: `…and ${st.suggestions.length - shown.length} more (type to search them).` })
      : null);
}

function buildDialog() {
  const text = h('p', { id: 'confirm-text' });
  const yes = h('button', { type: 'button', class: 'danger', id: 'confirm-yes' }, 'Remove');
  const no = h('button', { type: 'button', class: 'secondary', id: 'confirm-no' }, 'Cancel');
  const dialog = h('dialog', { id: 'confirm-dialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
    h('h2', { id: 'confirm-title', text: 'Remove from the allow-list?' }), text,
    h('div', { class: 'actions' }, yes, no));
  no.addEventListener('click', () => dialog.close());
  yes.addEventListener('click', async () => {
    const entry = st.pendingRemove;
    dialog.close();
    if (!entry) return;
    const F = st.wwidForm;
    clearErrors(F.fields, F.msg);
    try {
      const r = await api('DELETE', `/cluster/multipath/wwids/${seg(entry.wwid)}?digest=${encodeURIComponent(st.digest)}`);
      st.digest = r.digest;
      if (st.editing === entry.wwid) F.cancel.click();
      showOk(F.msg, `Removed ${entry.wwid}.`);
      await refreshList();
    } catch (e) {
      if (e.status !== 401) showFailure(e, F.fields, F.msg, reloadHandler(F.msg));
    }
  });
  st.dialog = { dialog, text, yes };
  return dialog;
}

function confirmRemove(entry) {
  st.pendingRemove = entry;
  replace(st.dialog.text, 'Remove ', h('code', { text: entry.wwid }),
    entry.alias ? [' (alias ', h('strong', { text: str(entry.alias) }), ')'] : '',
    ' from the allow-list? Every node drops its alias and settings, and multipath may stop assembling it.');
  st.dialog.dialog.showModal();
  st.dialog.yes.focus();
}

// ---------------------------------------------------------------------------------------------
// Overrides

function buildOverrides() {
  const msg = messageArea('overrides-msg');
  const textarea = h('textarea', {
    id: 'overrides-content', name: 'content', rows: '12', spellcheck: 'false',
    'aria-describedby': 'overrides-content-error overrides-help',
  });
  textarea.value = st.overrides;
  const err = h('p', { id: 'overrides-content-error', class: 'field-error', dataset: { field: 'content' }, 'aria-live': 'polite' });
  const wrap = h('div', { class: 'field wide' }, h('label', { for: 'overrides-content', text: 'devices / overrides sections' }), textarea, err);
  const field = { name: 'content', key: 'content', wrap, err, focusEl: textarea };
  const save = h('button', { type: 'submit', class: 'primary', id: 'overrides-save' }, 'Save overrides');
  const form = h('form', { id: 'overrides-form', class: 'card', novalidate: true },
    h('h2', { text: 'Overrides' }),
    h('p', { id: 'overrides-help', class: 'help' }, 'Verbatim multipath.conf ', h('code', { text: 'devices' }), ' and ',
      h('code', { text: 'overrides' }), ' sections, written to every node.'),
    msg, wrap, h('div', { class: 'actions' }, save));
  const F = { form, textarea, msg, dirty: false };
  st.overridesForm = F;
  textarea.addEventListener('input', () => { F.dirty = true; });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors([field], msg);
    save.disabled = true;
    try {
      const r = await api('PUT', '/cluster/multipath/overrides', { content: textarea.value, digest: st.overridesDigest });
      st.overridesDigest = r.digest;
      st.overrides = textarea.value;
      F.dirty = false;
      showOk(msg, 'Overrides saved; every node applies them.');
    } catch (e) {
      if (e.status !== 401) {
        showFailure(e, [field], msg, () => {
          api('GET', '/cluster/multipath/overrides').then((ov) => {
            if (!st) return;
            st.overridesDigest = ov.digest;
            st.overrides = str(ov.content);
            msg.className = 'form-msg banner info';
            replace(msg, 'Reloaded; your text is kept — compare with the current overrides (',
              h('code', { text: `${st.overrides.split('\n').length} lines` }), ') and save again.');
          }).catch((e2) => replace(msg, `Cannot reload: ${e2.message}`));
        });
      }
    } finally {
      save.disabled = false;
    }
  });
  return form;
}
