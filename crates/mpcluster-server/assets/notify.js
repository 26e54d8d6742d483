// Notifications (#/notify): where the messages about LUN state changes go. The list shows each
// target (a webhook's secret only as "set"; an SMTP password never: only the path of the file
// holding it on the server nodes); a target can be tested (a test message sent now, the answer
// shown) and removed. The form adds a webhook, an SMTP or an exec target; field errors show
// next to their fields (form.js), a lost race (409) as "changed meanwhile — reload".

import { api, seg } from './api.js';
import { clearErrors, messageArea, showFailure, showOk, textField } from './form.js';
import { h, replace, str } from './util.js';

let generation = 0;
let st = null; // page state while mounted

export function unmount() {
  generation += 1;
  st = null;
}

const alive = (gen) => st !== null && st.gen === gen;

export function mount(main) {
  generation += 1;
  const gen = generation;
  st = { gen, targets: [], digest: null };
  const status = h('div', { id: 'notify-status' }, h('p', { class: 'banner info', text: 'Loading the notification targets…' }));
  const table = h('table', { class: 'grid', id: 'notify-table' }, h('thead'), h('tbody'));
  const listMsg = messageArea('notify-list-msg');
  const card = h('section', { class: 'card', id: 'notify-targets', 'aria-labelledby': 'notify-title' },
    h('h2', { id: 'notify-title', text: 'Notification targets' }),
    h('p', { class: 'hint', text: 'One message per LUN state change (changes within 10 s merged, naming every node), a recovery message, a reminder every 4 h while a LUN stays failed, one message when a LUN flaps. Sent once, by the server recording the events.' }),
    listMsg, table);
  const page = h('section', { class: 'page notify' }, h('h1', { text: 'Notifications' }), status);
  main.appendChild(page);
  st.el = { status, table, listMsg, page };
  load().then(() => {
    if (!alive(gen)) return;
    replace(status);
    page.append(card, buildForm());
    render();
  }).catch((e) => {
    if (!alive(gen) || e.status === 401) return;
    replace(status, h('p', { class: 'banner error', role: 'alert', text: `Cannot load the notification targets: ${e.message}` }));
  });
}

async function load() {
  const gen = st.gen;
  const list = await api('GET', '/cluster/multipath/notify');
  if (!alive(gen)) return;
  st.targets = Array.isArray(list.targets) ? list.targets.filter((t) => t && typeof t.id === 'string') : [];
  st.digest = list.digest;
}

function where(t) {
  switch (t.type) {
    case 'webhook': return `${str(t.url)} (secret ${str(t.secret)})`;
    case 'smtp': {
      const to = Array.isArray(t.to) ? t.to.map(str).join(', ') : '';
      const login = t.username ? `, login ${str(t.username)} (password in ${str(t['password-file'])})` : '';
      return `${str(t.server)}:${str(t.port)} (${str(t.security)}) from ${str(t.from)} to ${to}${login}`;
    }
    case 'exec': return Array.isArray(t.command) ? t.command.map(str).join(' ') : '';
    default: return '';
  }
}

function render() {
  const table = st.el.table;
  replace(table.tHead, h('tr', null, ['ID', 'Type', 'Where', 'Actions'].map((t) => h('th', { scope: 'col', text: t }))));
  const tbody = table.tBodies[0];
  if (!st.targets.length) {
    replace(tbody, h('tr', null, h('td', { colspan: '4', class: 'empty', text: 'No notification targets: nobody is told when a LUN changes state.' })));
    return;
  }
  replace(tbody, st.targets.map((t) => h('tr', { dataset: { id: t.id, type: str(t.type) } },
    h('th', { scope: 'row', class: 'mono', text: t.id }),
    h('td', { class: 'type', text: str(t.type) }),
    h('td', { class: 'where', text: where(t) }),
    h('td', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary test', on: { click: () => test(t.id) } }, 'Test'), ' ',
      h('button', { type: 'button', class: 'danger remove', on: { click: () => remove(t.id) } }, 'Remove')))));
}

async function test(id) {
  const gen = st.gen;
  const msg = st.el.listMsg;
  clearErrors([], msg);
  msg.className = 'form-msg banner info';
  replace(msg, h('span', { text: `Sending a test message to ${id}…` }));
  try {
    const r = await api('POST', `/cluster/multipath/notify/${seg(id)}/test`);
    if (!alive(gen)) return;
    if (r && r.sent) {
      showOk(msg, `Test message sent to ${id}.`);
    } else {
      msg.className = 'form-msg banner error';
      replace(msg, h('span', { text: `The test message to ${id} was not accepted: ${str(r && r.error)}` }));
    }
  } catch (e) {
    if (!alive(gen) || e.status === 401) return;
    showFailure(e, [], msg, reload);
  }
}

async function remove(id) {
  const gen = st.gen;
  const msg = st.el.listMsg;
  if (!window.confirm(`Remove the notification target ${id}? Its pending messages are dropped.`)) return;
  clearErrors([], msg);
  try {
    await api('DELETE', `/cluster/multipath/notify/${seg(id)}`, { digest: st.digest });
    if (!alive(gen)) return;
    await load();
    if (!alive(gen)) return;
    render();
    showOk(msg, `Removed ${id}.`);
  } catch (e) {
    if (!alive(gen) || e.status === 401) return;
    showFailure(e, [], msg, reload);
  }
}

async function reload() {
  const gen = st.gen;
  try {
    await load();
    if (!alive(gen)) return;
    render();
    clearErrors([], st.el.listMsg);
  } catch (e) {
    if (!alive(gen) || e.status === 401) return;
    showFailure(e, [], st.el.listMsg, reload);
  }
}

// ---------------------------------------------------------------------------------------------
// The form

/** Which fields each type shows. */
const TYPE_FIELDS = {
  webhook: ['url', 'secret'],
  smtp: ['server', 'port', 'security', 'from', 'to', 'username', 'password-file'],
  exec: ['command'],
};

function buildForm() {
  const type = h('select', { id: 'notify-type', name: 'type' },
    h('option', { value: 'webhook', text: 'webhook (JSON POST, HMAC-SHA256 signed)' }),
    h('option', { value: 'smtp', text: 'mail (SMTP)' }),
    h('option', { value: 'exec', text: 'exec hook (JSON on stdin)' }));
  const typeErr = h('p', { id: 'notify-type-error', class: 'field-error', 'aria-live': 'polite' });
  const typeField = {
    name: 'type', key: 'type', wrap: h('div', { class: 'field' }, h('label', { for: 'notify-type', text: 'Type' }), type, typeErr),
    err: typeErr, input: type, focusEl: type,
  };
  const security = h('select', { id: 'notify-security', name: 'security' },
    ['starttls', 'tls', 'none'].map((v) => h('option', { value: v, text: v })));
  const secErr = h('p', { id: 'notify-security-error', class: 'field-error', 'aria-live': 'polite' });
  const securityField = {
    name: 'security', key: 'security', wrap: h('div', { class: 'field', dataset: { field: 'security' } }, h('label', { for: 'notify-security', text: 'Security' }), security, secErr),
    err: secErr, input: security, focusEl: security,
    get: () => security.value,
  };
  const fields = [
    textField('notify', 'id', 'ID ([a-z0-9-])', 'id'),
    textField('notify', 'url', 'URL', 'url', { placeholder: 'https://hooks.example.org/mpcluster' }),
    textField('notify', 'secret', 'Secret (HMAC key, at least 16 characters; never shown again)', 'secret', { type: 'password', autocomplete: 'new-password' }),
    textField('notify', 'server', 'SMTP server', 'server'),
    textField('notify', 'port', 'Port (default by security)', 'port', { inputmode: 'numeric' }),
    securityField,
    textField('notify', 'from', 'From', 'from'),
    textField('notify', 'to', 'To (comma-separated)', 'to'),
    textField('notify', 'username', 'User (optional)', 'username'),
    textField('notify', 'password-file', 'Password file on the server nodes (with a user)', 'password-file', { placeholder: '/etc/mpcluster/smtp-password' }),
    textField('notify', 'command', 'Command: program (absolute path) and arguments, one per line', 'command'),
  ];
  // The command is an argument vector: one argument per line.
  const cmd = fields.find((f) => f.name === 'command');
  const area = h('textarea', { id: 'notify-command', name: 'command', rows: '3', spellcheck: 'false', 'aria-describedby': cmd.err.id });
  cmd.input.replaceWith(area);
  cmd.input = area;
  cmd.focusEl = area;
  cmd.get = () => {
    const lines = area.value.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    return lines.length ? lines : undefined;
  };
  const all = [typeField, ...fields];
  const msg = messageArea('notify-form-msg');
  const showFor = () => {
    const shown = TYPE_FIELDS[type.value] || [];
    for (const f of fields) {
      if (f.name === 'id') continue;
      f.wrap.hidden = !shown.includes(f.name);
    }
  };
  type.addEventListener('change', showFor);
  const submit = h('button', { type: 'submit', id: 'notify-add' }, 'Add target');
  const form = h('form', { class: 'card', id: 'notify-form', 'aria-labelledby': 'notify-form-title', novalidate: '' },
    h('h2', { id: 'notify-form-title', text: 'Add a notification target' }),
    typeField.wrap, fields.map((f) => f.wrap), msg, h('div', { class: 'buttons' }, submit));
  showFor();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const gen = st.gen;
    clearErrors(all, msg);
    const body = { type: type.value, digest: st.digest };
    const shown = TYPE_FIELDS[type.value] || [];
    for (const f of fields) {
      if (f.name !== 'id' && !shown.includes(f.name)) continue;
      const v = f.get();
      if (v !== undefined) body[f.name] = f.name === 'port' && /^\d+$/.test(v) ? Number(v) : v;
    }
    submit.disabled = true;
    try {
      const added = await api('POST', '/cluster/multipath/notify', body);
      if (!alive(gen)) return;
      await load();
      if (!alive(gen)) return;
      render();
      for (const f of fields) if (f.set) f.set('');
      area.value = '';
      showOk(msg, `Added ${str(added && added.id)}.`);
    } catch (e) {
      if (!alive(gen) || e.status === 401) return;
      showFailure(e, all, msg, async () => {
        await reload();
        clearErrors(all, msg);
      });
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
