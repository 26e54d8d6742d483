// The shell: hash routes (#/health, #/lun/<wwid>, #/config, #/storage, #/notify, #/nodes,
// #/node/<name>, #/login), the session line in the header, and the 401 -> login redirect.

import { clearToken, setUnauthorizedHandler, tokenId } from './api.js';
import { h, replace } from './util.js';
import * as health from './health.js';
import * as config from './config.js';
import * as storage from './storage.js';
import * as notify from './notify.js';
import * as nodes from './nodes.js';
import * as timeline from './timeline.js';
import * as login from './login.js';

const LOGIN_MESSAGE = 'mpcluster.loginMessage';
const RETURN_TO = 'mpcluster.returnTo';

let current = null; // { page, key }

function route() {
  const hash = location.hash || '#/health';
  const parts = hash.replace(/^#\/?/, '').split('/');
  switch (parts[0]) {
    case 'config': return { page: config, key: 'config', nav: 'config' };
    case 'storage': return { page: storage, key: 'storage', nav: 'storage' };
    case 'notify': return { page: notify, key: 'notify', nav: 'notify' };
    case 'nodes': return { page: nodes, key: 'nodes', nav: 'nodes', params: {} };
    case 'node': {
      let name = '';
      try {
        name = decodeURIComponent(parts.slice(1).join('/'));
      } catch {
        name = '';
      }
      return { page: nodes, key: `node/${name}`, nav: 'nodes', params: { node: name } };
    }
    case 'lun': {
      let wwid = '';
      try {
        wwid = decodeURIComponent(parts.slice(1).join('/'));
      } catch {
        wwid = '';
      }
      return { page: timeline, key: `lun/${wwid}`, nav: 'health', params: { wwid } };
    }
    case 'login': return { page: login, key: 'login', nav: '' };
    default: return { page: health, key: 'health', nav: 'health' };
  }
}

function renderSession() {
  const el = document.getElementById('session');
  const id = tokenId();
  if (id) {
    replace(el, h('span', { class: 'who', title: 'API token in use (kept for this browser tab)' },
      'token ', h('code', { text: id })), ' ',
    h('button', { type: 'button', class: 'link', id: 'logout', on: { click: logout } }, 'Log out'));
  } else {
    replace(el, h('a', { href: '#/login', id: 'login-link' }, 'Log in'));
  }
}

function logout() {
  clearToken();
  sessionStorage.setItem(LOGIN_MESSAGE, 'Logged out.');
  location.hash = '#/login';
  renderSession();
}

function show() {
  const r = route();
  if (current && current.key === r.key) return;
  if (current && current.page.unmount) current.page.unmount();
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.dataset.page === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  current = r;
  document.body.dataset.page = r.key.split('/')[0];
  renderSession();
  r.page.mount(main, r.params || {}, {
    loginMessage: () => {
      const m = sessionStorage.getItem(LOGIN_MESSAGE) || '';
      sessionStorage.removeItem(LOGIN_MESSAGE);
      return m;
    },
    loggedIn: () => {
      const back = sessionStorage.getItem(RETURN_TO) || '#/health';
      sessionStorage.removeItem(RETURN_TO);
      renderSession();
      location.hash = back === '#/login' ? '#/health' : back;
    },
  });
}

setUnauthorizedHandler((message) => {
  if (current && current.key === 'login') return;
  clearToken();
  sessionStorage.setItem(LOGIN_MESSAGE, message);
  if (location.hash && !location.hash.startsWith('#/login')) {
    sessionStorage.setItem(RETURN_TO, location.hash);
  }
  location.hash = '#/login';
});

window.addEventListener('hashchange', show);
if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', show);
} else {
  show();
}
