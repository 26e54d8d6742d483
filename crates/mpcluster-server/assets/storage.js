// Storages (#/storage): the storage definitions that tell the status which nodes should carry
// which LUN. The list shows type, nodes, state, volume group, base, the LVM storages sitting on
// each, and where each definition comes from.
//
// mpcluster's own storage document: add / edit / remove multipath and LVM storages. Every write
// sends the digest the page read; field errors show next to their fields, a lost race (409)
// shows "changed meanwhile — reload" and keeps everything typed (see form.js).
//
// Proxmox mode (the server reads /etc/pve/storage.cfg): read-only, with the server's
// explanation (change storages with pvesm); the list refreshes every few seconds, so an edit of
// storage.cfg shows without a reload.

import { api, seg } from './api.js';
import { clearErrors, messageArea, showFailure, showOk, textField } from './form.js';
import { h, replace, str } from './util.js';

const READ_ONLY_POLL_MS = 3000;

let generation = 0;
let timer = 0;
let st = null; // page state while mounted

export function unmount() {
  generation += 1;
  clearTimeout(timer);
  st = null;
}

export function mount(main) {
  generation += 1;
  const gen = generation;
  st = { gen, list: null, digest: null, editing: null, wwids: [], form: null, dialog: null, shown: '' };
  const status = h('div', { id: 'storage-status' }, h('p', { class: 'banner info', text: 'Loading the storages…' }));
  const source = h('div', { id: 'storage-source' });
  const table = h('table', { class: 'grid', id: 'storage-table' }, h('thead'), h('tbody'));
  const card = h('section', { class: 'card', id: 'storages', 'aria-labelledby': 'storages-title' },
    h('h2', { id: 'storages-title', text: 'Storage definitions' }), source, table);
  const page = h('section', { class: 'page storage' }, h('h1', { text: 'Storages' }), status);
  main.appendChild(page);
  st.el = { status, source, table, card, page };
  load().then(() => {
    if (!alive(gen)) return;
    replace(status);
    page.append(card);
    if (st.list.source.editable) {
      card.append(buildForm());
      page.append(buildDialog());
    }
    render();
    if (!st.list.source.editable) schedule(gen);
  }).catch((e) => {
    if (!alive(gen) || e.status === 401) return;
    replace(status, h('p', { class: 'banner error', role: 'alert', text: `Cannot load the storages: ${e.message}` }));
  });
}

const alive = (gen) => st !== null && st.gen === gen;

/** Proxmox mode: follow storage.cfg by re-reading the list. */
function schedule(gen) {
  timer = setTimeout(async () => {
    if (!alive(gen)) return;
    try {
      await load();
      if (!alive(gen)) return;
      replace(st.el.status);
      render();
    } catch (e) {
      if (!alive(gen) || e.status === 401) return;
      replace(st.el.status, h('p', { class: 'banner error', role: 'alert', text: `Cannot refresh the storages: ${e.message}` }));
    }
    schedule(gen);
  }, READ_ONLY_POLL_MS);
}

/** Read the list (and, for the base suggestions, the allow-list) into `st`. */
async function load() {
  const gen = st.gen;
  const list = await api('GET', '/storage');
  if (!alive(gen)) return;
  st.list = {
    source: list.source && typeof list.source === 'object' ? list.source : { kind: 'mpcluster', editable: true },
    storages: Array.isArray(list.storages) ? list.storages.filter((s) => s && typeof s.id === 'string') : [],
    usedBy: list['used-by'] && typeof list['used-by'] === 'object' ? list['used-by'] : {},
    origins: list.origins && typeof list.origins === 'object' ? list.origins : {},
  };
  st.digest = list.digest;
  if (st.list.source.editable) {
    try {
      const w = await api('GET', '/cluster/multipath/wwids');
      if (alive(gen)) st.wwids = Array.isArray(w.wwids) ? w.wwids : [];
    } catch {
      // Suggestions only.
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The list

const COLUMNS = ['ID', 'Type', 'Nodes', 'State', 'Volume group', 'Base', 'Used by', 'Source'];

function sourceText(s) {
  const src = st.list.source;
  const o = st.list.origins[s.id];
  if (src.kind === 'pve' && o && typeof o.line === 'number') {
    const file = str(src.path).split('/').pop() || 'storage.cfg';
    return { text: `${file}:${o.line}${o.iscsi ? ` (iSCSI ${str(o.iscsi)})` : ''}`, title: `${str(src.path)}, line ${o.line}` };
  }
  return { text: 'mpcluster', title: 'mpcluster\'s storage document' };
}

function nodesText(s) {
  return Array.isArray(s.nodes) && s.nodes.length ? s.nodes.map(str).join(', ') : 'all nodes';
}

function render() {
  renderSource();
  const text = JSON.stringify([st.list, st.digest]);
  if (text === st.shown) return;
  st.shown = text;
  const editable = st.list.source.editable;
  const table = st.el.table;
  const cols = editable ? [...COLUMNS, 'Actions'] : COLUMNS;
  replace(table.tHead, h('tr', null, cols.map((t) => h('th', { scope: 'col', text: t }))));
  const tbody = table.tBodies[0];
  if (!st.list.storages.length) {
    const empty = editable
      ? 'No storages yet: without them the status expects every allow-listed LUN on every node.'
      : 'storage.cfg defines no multipath or LVM-on-multipath storages.';
    replace(tbody, h('tr', null, h('td', { colspan: String(cols.length), class: 'empty', text: empty })));
    return;
  }
  replace(tbody, st.list.storages.map((s) => {
    const src = sourceText(s);
    const users = Array.isArray(st.list.usedBy[s.id]) ? st.list.usedBy[s.id].map(str) : [];
    const row = h('tr', { dataset: { id: s.id, type: str(s.type) }, class: s.disable ? 'disabled' : null },
      h('th', { scope: 'row', class: 'mono', text: s.id }),
      h('td', { class: 'type', text: str(s.type) }),
      h('td', { class: 'nodes', text: nodesText(s) }),
      h('td', { class: 'state' }, h('span', { class: `pill ${s.disable ? 'off' : 'on'}`, text: s.disable ? 'disabled' : 'enabled' })),
      h('td', { class: 'vgname', text: str(s.vgname) || '—' }),
      h('td', { class: 'base mono', text: str(s.base) || '—' }),
      h('td', { class: 'used-by', text: users.join(', ') || '—' }),
      h('td', { class: 'source', title: src.title, text: src.text }));
    if (editable) {
      row.append(h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', dataset: { action: 'edit' }, 'aria-label': `Edit ${s.id}` }, 'Edit'),
        ' ',
        h('button', { type: 'button', class: 'danger', dataset: { action: 'remove' }, 'aria-label': `Remove ${s.id}` }, 'Remove')));
    }
    return row;
  }));
}

function renderSource() {
  const src = st.list.source;
  let banner;
  if (src.editable) {
    banner = h('p', { class: 'help', id: 'storage-source-text' },
      'Kept in mpcluster\'s storage document. The status expects a LUN on the nodes of the storages that use it ',
      '(an LVM storage on a multipath storage), and every allow-listed LUN on the nodes of the enabled multipath storages.');
  } else {
    const problems = Array.isArray(src.problems) ? src.problems.map(str) : [];
    // The server's explanation (the message of every refused write): where the storages
    // come from, and pvesm.
    const note = str(src.note) || `storages are read from ${str(src.path)} and cannot be changed here`;
    banner = h('div', { class: 'banner info read-only', id: 'storage-source-text', role: 'note' },
      h('strong', { text: 'Read-only: Proxmox VE mode. ' }),
      h('span', { class: 'note', text: `${note.charAt(0).toUpperCase()}${note.slice(1)}.` }),
      problems.length ? h('div', { class: 'problems' }, h('p', { text: 'Sections that cannot be used:' }),
        h('ul', null, problems.map((p) => h('li', { text: p })))) : null);
  }
  const key = JSON.stringify(src);
  if (st.el.source.dataset.shown === key) return;
  st.el.source.dataset.shown = key;
  replace(st.el.source, banner);
}

// ---------------------------------------------------------------------------------------------
// Add / edit

/** A checkbox field with an error line. */
function checkField(prefix, name, label, errKey) {
  const id = `${prefix}-${name}`;
  const errId = `${id}-error`;
  const input = h('input', { id, name, type: 'checkbox', 'aria-describedby': errId });
  const err = h('p', { id: errId, class: 'field-error', dataset: { field: errKey }, 'aria-live': 'polite' });
  const wrap = h('div', { class: 'field', dataset: { field: name } }, h('label', { class: 'check', for: id }, input, label), err);
  const f = {
    name, key: errKey, wrap, err, input, focusEl: input, dirty: false, loaded: false,
    get: () => input.checked,
    set: (v) => { input.checked = Boolean(v); },
  };
  input.addEventListener('change', () => { f.dirty = true; });
  return f;
}

/** The type select. */
function typeField() {
  const id = 'storage-type';
  const errId = `${id}-error`;
  const sel = h('select', { id, name: 'type', 'aria-describedby': errId },
    h('option', { value: 'multipath', text: 'multipath — the allow-listed LUNs on its nodes' }),
    h('option', { value: 'lvm', text: 'lvm — a volume group on one multipath LUN' }));
  const err = h('p', { id: errId, class: 'field-error', dataset: { field: 'type' }, 'aria-live': 'polite' });
  const wrap = h('div', { class: 'field', dataset: { field: 'type' } }, h('label', { for: id, text: 'Type' }), sel, err);
  return {
    name: 'type', key: 'type', wrap, err, input: sel, focusEl: sel, dirty: false, loaded: undefined,
    get: () => sel.value,
    set: (v) => { sel.value = v === 'lvm' ? 'lvm' : 'multipath'; },
  };
}

function buildForm() {
  const msg = messageArea('storage-msg');
  const type = typeField();
  const id = textField('storage', 'id', 'ID', 'id', { required: true, size: 24, placeholder: 'e.g. san' });
  const nodes = textField('storage', 'nodes', 'Nodes', 'nodes', { size: 32, placeholder: 'every node' });
  const disable = checkField('storage', 'disable', 'Disabled (counts nowhere)', 'disable');
  const vgname = textField('storage', 'vgname', 'Volume group', 'vgname', { size: 24 });
  const base = textField('storage', 'base', 'Base (multipath storage:WWID)', 'base', { size: 48, list: 'storage-base-suggestions', placeholder: 'san:3600a0…' });
  const fields = [type, id, nodes, disable, vgname, base];
  const nodesHelp = h('p', { class: 'help', text: 'Comma-separated node names; empty for every node of the cluster.' });
  nodes.wrap.insertBefore(nodesHelp, nodes.err);
  const datalist = h('datalist', { id: 'storage-base-suggestions' });
  const title = h('h3', { id: 'storage-form-title', text: 'Add a storage' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'storage-submit' }, 'Add storage');
  const cancel = h('button', { type: 'button', class: 'secondary', id: 'storage-cancel', hidden: true }, 'Cancel edit');
  const form = h('form', { id: 'storage-form', class: 'subcard', novalidate: true },
    title, msg,
    h('div', { class: 'fields' }, type.wrap, id.wrap, nodes.wrap, disable.wrap, vgname.wrap, base.wrap),
    datalist,
    h('div', { class: 'actions' }, submit, cancel));
  const F = { form, msg, fields, type, id, nodes, disable, vgname, base, datalist, title, submit, cancel };
  st.form = F;

  const showType = () => {
    const lvm = type.get() === 'lvm';
    vgname.wrap.hidden = !lvm;
    base.wrap.hidden = !lvm;
  };
  type.input.addEventListener('change', () => { type.dirty = true; showType(); });
  showType();
  refreshSuggestions();

  const toAdd = () => {
    st.editing = null;
    for (const f of fields) {
      f.set(undefined);
      f.loaded = undefined;
      f.dirty = false;
    }
    type.input.disabled = false;
    id.input.readOnly = false;
    title.textContent = 'Add a storage';
    submit.textContent = 'Add storage';
    cancel.hidden = true;
    showType();
  };
  F.toAdd = toAdd;
  cancel.addEventListener('click', () => {
    clearErrors(fields, msg);
    toAdd();
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(fields, msg);
    submit.disabled = true;
    try {
      if (st.editing) {
        const body = changes(F);
        if (body === null) {
          showOk(msg, 'Nothing changed.');
          return;
        }
        const r = await api('PUT', `/storage/${seg(st.editing)}`, body);
        st.digest = r.digest;
        const edited = st.editing;
        toAdd();
        showOk(msg, `Saved ${edited}.`);
      } else {
        const body = { type: type.get(), digest: st.digest };
        for (const f of [id, nodes]) {
          const v = f.get();
          if (v !== undefined) body[f.name] = v;
        }
        if (disable.get()) body.disable = true;
        if (type.get() === 'lvm') {
          // Sent even when empty, so the API names what is missing.
          body.vgname = vgname.input.value.trim();
          body.base = base.input.value.trim();
        }
        const r = await api('POST', '/storage', body);
        st.digest = r.digest;
        const added = body.id;
        toAdd();
        showOk(msg, `Added ${added}.`);
      }
      await refresh();
    } catch (e) {
      if (e.status !== 401) showFailure(e, fields, msg, reloadHandler(msg));
    } finally {
      submit.disabled = false;
    }
  });

  st.el.table.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    const s = st.list.storages.find((x) => x.id === b.closest('tr').dataset.id);
    if (!s) return;
    if (b.dataset.action === 'edit') startEdit(s);
    else confirmRemove(s);
  });
  return form;
}

const nodesValue = (s) => (Array.isArray(s.nodes) && s.nodes.length ? s.nodes.map(str).join(',') : undefined);
const sameNodes = (a, b) => (a || '').split(',').map((x) => x.trim()).filter(Boolean).join(',') ===
  (b || '').split(',').map((x) => x.trim()).filter(Boolean).join(',');

/** The PUT body of an edit: only what changed (`null` when nothing did). */
function changes(F) {
  const body = { digest: st.digest };
  const del = [];
  const n = F.nodes.get();
  if (!sameNodes(n, F.nodes.loaded)) {
    if (n === undefined) del.push('nodes');
    else body.nodes = n;
  }
  if (F.disable.get() !== Boolean(F.disable.loaded)) body.disable = F.disable.get();
  if (F.type.get() === 'lvm') {
    for (const f of [F.vgname, F.base]) {
      const v = f.input.value.trim();
      if (v !== str(f.loaded)) body[f.name] = v;
    }
  }
  if (del.length) body.delete = del;
  return Object.keys(body).length === 1 ? null : body;
}

function loadInto(F, s) {
  const values = { type: s.type, id: s.id, nodes: nodesValue(s), disable: Boolean(s.disable), vgname: s.vgname, base: s.base };
  for (const f of F.fields) {
    f.loaded = values[f.name];
    f.set(f.loaded);
    f.dirty = false;
  }
}

function startEdit(s) {
  const F = st.form;
  clearErrors(F.fields, F.msg);
  st.editing = s.id;
  loadInto(F, s);
  F.type.input.disabled = true;
  F.id.input.readOnly = true;
  F.vgname.wrap.hidden = s.type !== 'lvm';
  F.base.wrap.hidden = s.type !== 'lvm';
  F.title.textContent = `Edit ${s.id}`;
  F.submit.textContent = 'Save storage';
  F.cancel.hidden = false;
  F.nodes.input.focus();
}

/** Re-read the list after a write. */
async function refresh() {
  const gen = st.gen;
  await load();
  if (!alive(gen)) return;
  render();
  refreshSuggestions();
}

/** After a conflict: re-read; fields the user has not touched take the stored values. */
function reloadHandler(msg) {
  return async () => {
    try {
      const gen = st.gen;
      await load();
      if (!alive(gen)) return;
      render();
      refreshSuggestions();
      const F = st.form;
      if (st.editing) {
        const s = st.list.storages.find((x) => x.id === st.editing);
        if (s) {
          const values = { nodes: nodesValue(s), disable: Boolean(s.disable), vgname: s.vgname, base: s.base };
          for (const f of F.fields) {
            if (!(f.name in values)) continue;
            f.loaded = values[f.name];
            if (!f.dirty) f.set(f.loaded);
          }
        }
      }
      msg.className = 'form-msg banner info';
      replace(msg, 'Reloaded the current storages; your input is kept — review and save again.');
    } catch (e) {
      msg.className = 'form-msg banner error';
      replace(msg, `Cannot reload: ${e.message}`);
    }
  };
}

/** Base suggestions: every multipath storage with every allow-listed WWID. */
function refreshSuggestions() {
  const F = st.form;
  if (!F) return;
  const mps = st.list.storages.filter((s) => s.type === 'multipath').map((s) => s.id);
  const options = [];
  for (const mp of mps) {
    for (const w of st.wwids) {
      if (!w || typeof w.wwid !== 'string') continue;
      options.push(h('option', { value: `${mp}:${w.wwid}`, label: w.alias ? `${str(w.alias)} on ${mp}` : `on ${mp}` }));
    }
  }
  replace(F.datalist, options);
}

// ---------------------------------------------------------------------------------------------
// Remove

function buildDialog() {
  const text = h('p', { id: 'storage-confirm-text' });
  const yes = h('button', { type: 'button', class: 'danger', id: 'storage-confirm-yes' }, 'Remove');
  const no = h('button', { type: 'button', class: 'secondary', id: 'storage-confirm-no' }, 'Cancel');
  const dialog = h('dialog', { id: 'storage-confirm', 'aria-labelledby': 'storage-confirm-title', 'aria-describedby': 'storage-confirm-text' },
    h('h2', { id: 'storage-confirm-title', text: 'Remove the storage?' }), text,
    h('div', { class: 'actions' }, yes, no));
  no.addEventListener('click', () => dialog.close());
  yes.addEventListener('click', async () => {
    const s = st.pendingRemove;
    dialog.close();
    if (!s) return;
    const F = st.form;
    clearErrors(F.fields, F.msg);
    try {
      const r = await api('DELETE', `/storage/${seg(s.id)}?digest=${encodeURIComponent(st.digest)}`);
      st.digest = r.digest;
      if (st.editing === s.id) F.toAdd();
      showOk(F.msg, `Removed ${s.id}.`);
      await refresh();
    } catch (e) {
      // Not the form's fields: a refusal (e.g. an LVM storage sits on it) is listed in the
      // message.
      if (e.status !== 401) showFailure(e, [], F.msg, reloadHandler(F.msg));
    }
  });
  st.dialog = { dialog, text, yes };
  return dialog;
}

function confirmRemove(s) {
  st.pendingRemove = s;
  replace(st.dialog.text, 'Remove the ', str(s.type), ' storage ', h('code', { text: s.id }),
    '? The status stops expecting its LUNs on its nodes.');
  st.dialog.dialog.showModal();
  st.dialog.yes.focus();
}
