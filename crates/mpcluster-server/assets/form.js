// Form helpers the editors share (configuration, storages): text fields with an error line
// linked to the input, a form-level message area, and how an API failure is shown: field
// errors next to their fields, a lost digest race (409) as "changed meanwhile — reload" with a
// Reload button that keeps everything typed, anything else as the server's message.

import { h, replace, str } from './util.js';

/** A plain text field (WWID, alias, storage id, ...). */
export function textField(prefix, name, label, errKey, attrs) {
  const id = `${prefix}-${name}`;
  const errId = `${id}-error`;
  const input = h('input', { id, name, type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': errId, ...attrs });
  const err = h('p', { id: errId, class: 'field-error', dataset: { field: errKey }, 'aria-live': 'polite' });
  const wrap = h('div', { class: 'field', dataset: { field: name } }, h('label', { for: id, text: label }), input, err);
  const f = {
    name, key: errKey, wrap, err, input, focusEl: input, dirty: false, loaded: undefined,
    get: () => (input.value.trim() === '' ? undefined : input.value.trim()),
    set: (v) => { input.value = v === undefined || v === null ? '' : String(v); },
  };
  input.addEventListener('input', () => { f.dirty = true; });
  return f;
}

/** A form-level message area. */
export function messageArea(id) {
  return h('div', { id, class: 'form-msg', role: 'alert' });
}

/** Clear the field errors and the message. */
export function clearErrors(fields, msg) {
  for (const f of fields) {
    f.err.textContent = '';
    f.focusEl.removeAttribute('aria-invalid');
    f.wrap.classList.remove('invalid');
  }
  replace(msg);
  msg.className = 'form-msg';
}

/**
 * Put each field error of the API failure `e` next to its field (`byKey`: error key -> field);
 * returns the errors without a field as list items and the first field marked.
 */
export function markFieldErrors(e, byKey) {
  const rest = [];
  let first = null;
  for (const [k, m] of Object.entries(e.errors || {})) {
    const f = byKey.get(k);
    if (f) {
      f.err.textContent = str(m);
      f.focusEl.setAttribute('aria-invalid', 'true');
      f.wrap.classList.add('invalid');
      if (!first) first = f;
    } else {
      rest.push(h('li', null, h('code', { text: k }), `: ${str(m)}`));
    }
  }
  return { rest, first };
}

/** Show an API failure: field errors next to their fields, the rest in `msg`. */
export function showFailure(e, fields, msg, onReload) {
  const { rest, first: firstBad } = markFieldErrors(e, new Map(fields.map((f) => [f.key, f])));
  if (e.status === 409) {
    msg.className = 'form-msg banner warn conflict';
    replace(msg, h('strong', { text: 'Configuration changed meanwhile — reload. ' }),
      h('span', { title: e.message, text: 'Someone saved a change after this page read the configuration; nothing was written and your input is kept. ' }),
      h('button', { type: 'button', class: 'secondary reload', on: { click: onReload } }, 'Reload'));
  } else {
    msg.className = 'form-msg banner error';
    if (firstBad && !rest.length) {
      replace(msg, h('span', { title: e.message, text: 'Not saved: see the marked field(s).' }));
    } else {
      replace(msg, h('span', { text: e.message }), rest.length ? h('ul', null, rest) : null);
    }
  }
  if (firstBad) firstBad.focusEl.focus();
}

/** A success message. */
export function showOk(msg, text) {
  msg.className = 'form-msg banner ok';
  replace(msg, h('span', { text }));
}
