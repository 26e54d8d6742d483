// Login: paste an API token (`<id>:<secret>`); it is kept in sessionStorage (this tab only)
// and checked against the server before use.

import { api, clearToken, getToken, setToken } from './api.js';
import { h } from './util.js';

export function mount(main, _params, ctx) {
  const message = ctx.loginMessage();
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, 'aria-describedby': 'token-help login-error', size: 60,
    placeholder: 'token-id:secret',
  });
  const error = h('p', { id: 'login-error', class: 'field-error', role: 'alert' });
  const note = h('p', { id: 'login-message', class: 'banner warn', role: 'status', hidden: !message, text: message });
  const submit = h('button', { type: 'submit', id: 'login-submit', class: 'primary' }, 'Log in');
  const form = h('form', { class: 'login card', id: 'login-form', novalidate: true },
    h('h1', { text: 'Log in' }),
    note,
    h('label', { for: 'token', text: 'API token' }),
    input,
    h('p', { id: 'token-help', class: 'help' },
      'Paste a token as ', h('code', { text: 'ID:SECRET' }),
      ' (from ', h('code', { text: 'mpcluster token add' }),
      ', or the admin token the first ', h('code', { text: 'mpcluster serve' }),
      ' wrote next to its store). It is kept in this browser tab only.'),
    error,
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    let t = input.value.trim();
    if (/^bearer\s+/i.test(t)) t = t.replace(/^bearer\s+/i, '');
    const pve = /^PVEAPIToken=([^=]+)=(.+)$/.exec(t);
    if (pve) t = `${pve[1]}:${pve[2]}`;
    if (!/^[^\s:]+:\S+$/.test(t)) {
      error.textContent = 'A token looks like ID:SECRET (no spaces).';
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    submit.disabled = true;
    const previous = getToken();
    setToken(t);
    try {
      await api('GET', '/cluster/nodes');
      ctx.loggedIn();
    } catch (e) {
      if (e.status === 401) {
        clearToken();
        error.textContent = `The server rejected this token: ${e.message}`;
      } else if (e.status === 403) {
        clearToken();
        error.textContent = `This token may not read the cluster status (Sys.Audit): ${e.message}`;
      } else if (e.status === 503) {
        // The token was accepted; the store is down: the pages show that.
        ctx.loggedIn();
        return;
      } else {
        if (previous) setToken(previous); else clearToken();
        error.textContent = `Cannot check the token: ${e.message}`;
      }
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  main.appendChild(form);
  input.focus();
}

export function unmount() {}
