// Nodes: the node list (#/nodes) and one node's maps -> path groups -> paths (#/node/<name>).
// Both refresh every 2 s and re-render only when the answer changed.

import { api, seg } from './api.js';
import { badge, fmtTime, h, humanSize, naturalCompare, replace, str } from './util.js';

const POLL_MS = 2000;
let generation = 0;
let timer = 0;

export function mount(main, params) {
  generation += 1;
  const gen = generation;
  if (params.node !== undefined) mountNode(main, params.node, gen);
  else mountList(main, gen);
}

export function unmount() {
  generation += 1;
  clearTimeout(timer);
}

function loop(gen, fn) {
  const run = async () => {
    await fn();
    if (gen === generation) timer = setTimeout(run, POLL_MS);
  };
  run();
}

// ---------------------------------------------------------------------------------------------
// Node list

function mountList(main, gen) {
  const status = h('div', { id: 'nodes-status', role: 'status' });
  const body = h('div', { id: 'nodes-body' }, h('p', { class: 'banner info', text: 'Loading…' }));
  main.appendChild(h('section', { class: 'page' }, h('h1', { text: 'Nodes' }), status, body));
  let last = null;
  loop(gen, async () => {
    let list;
    let stale = '';
    try {
      list = await api('GET', '/cluster/nodes');
    } catch (e) {
      if (gen !== generation || e.status === 401) return;
      if (Array.isArray(e.data)) {
        list = e.data;
        stale = e.message;
      } else {
        replace(status, h('p', { class: 'banner error', text: `Cannot load the nodes: ${e.message}` }));
        return;
      }
    }
    if (gen !== generation) return;
    replace(status, stale ? h('p', { class: 'banner error', role: 'alert' }, h('strong', { text: 'Data is stale: ' }), stale) : []);
    const text = JSON.stringify(list);
    if (text === last) return;
    last = text;
    const nodes = (Array.isArray(list) ? list : []).filter((n) => n && typeof n.node === 'string')
      .sort((a, b) => naturalCompare(a.node, b.node));
    if (!nodes.length) {
      replace(body, h('p', { class: 'empty', text: 'No node has joined or reported yet.' }));
      return;
    }
    replace(body, h('table', { class: 'grid', id: 'nodes-table' },
      h('thead', null, h('tr', null, ['Node', 'Status', 'Member', 'Storage expects it', 'Last broadcast', 'Maps', 'Problems']
        .map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', null, nodes.map((n) => {
        const problems = [];
        if (n.agent === 'never-seen') problems.push('agent never seen: no mpcluster agent on this node has ever joined the cluster');
        if (n['broadcast-error']) problems.push(str(n['broadcast-error']));
        if (n['publish-error']) problems.push(`publish failed${n['publish-time'] ? ` since ${fmtTime(n['publish-time'])}` : ''}: ${str(n['publish-error'])}`);
        if (n['apply-error']) problems.push(`apply failed${n['apply-time'] ? ` at ${fmtTime(n['apply-time'])}` : ''}: ${str(n['apply-error'])}`);
        if (n['apply-waiting']) problems.push(str(n['apply-waiting']));
        if (n['plan-error']) problems.push(str(n['plan-error']));
        if (n['collect-error']) problems.push(`collect failed${n['collect-time'] ? ` at ${fmtTime(n['collect-time'])}` : ''}: ${str(n['collect-error'])}`);
        return h('tr', { dataset: { node: n.node }, class: n.online ? '' : 'offline' },
          h('th', { scope: 'row' }, h('a', { href: `#/node/${encodeURIComponent(n.node)}`, text: n.node })),
          h('td', null, onlineBadge(n.online === true),
            n.stale ? ' (stale broadcast)' : ''),
          h('td', { text: n.member === undefined ? '—' : (n.member ? 'yes' : 'no') }),
          h('td', { text: n.expected ? 'yes' : 'no' }),
          h('td', { text: fmtTime(n['last-broadcast']) || 'never' }),
          h('td', { class: 'num', text: typeof n.maps === 'number' ? String(n.maps) : '—' }),
          h('td', { class: problems.length ? 'problem' : '' }, problems.length
            ? h('ul', { class: 'plain' }, problems.map((p) => h('li', { text: p })))
            : '—'));
      }))));
  });
}

function onlineBadge(online) {
  return online
    ? h('span', { class: 'badge st-optimal' }, h('span', { class: 'ic', 'aria-hidden': 'true', text: '●' }), ' online')
    : h('span', { class: 'badge st-unknown' }, h('span', { class: 'ic', 'aria-hidden': 'true', text: '○' }), ' offline');
}

// ---------------------------------------------------------------------------------------------
// One node

function mountNode(main, node, gen) {
  const picker = h('select', { id: 'node-picker', 'aria-label': 'Node' });
  const head = h('div', { class: 'toolbar' },
    h('h1', null, 'Node ', h('span', { id: 'node-name', text: node })),
    h('label', { for: 'node-picker', class: 'inline' }, 'Show node'), picker,
    h('a', { href: '#/nodes' }, 'All nodes'));
  const status = h('div', { id: 'node-status', role: 'status' });
  const body = h('div', { id: 'node-body' }, h('p', { class: 'banner info', text: 'Loading…' }));
  main.appendChild(h('section', { class: 'page node-view' }, head, status, body));
  picker.addEventListener('change', () => {
    location.hash = `#/node/${encodeURIComponent(picker.value)}`;
  });
  let pickerKey = null;
  let last = null;
  loop(gen, async () => {
    const [d, l] = await Promise.allSettled([
      api('GET', `/nodes/${seg(node)}/disks/multipath`),
      api('GET', '/cluster/nodes'),
    ]);
    if (gen !== generation) return;
    if (l.status === 'fulfilled' || (l.reason && Array.isArray(l.reason.data))) {
      const list = (l.status === 'fulfilled' ? l.value : l.reason.data) || [];
      const names = list.filter((n) => n && typeof n.node === 'string').map((n) => n.node);
      if (!names.includes(node)) names.push(node);
      names.sort(naturalCompare);
      const key = names.join('\u0001');
      if (key !== pickerKey) {
        pickerKey = key;
        replace(picker, names.map((n) => h('option', { value: n, text: n, selected: n === node })));
      }
    }
    if (d.status === 'rejected') {
      const e = d.reason;
      if (e.status === 401) return;
      replace(status, h('p', { class: e.status === 404 ? 'banner warn' : 'banner error', text: e.message }));
      if (e.status === 404) {
        replace(body);
        last = null;
      }
      return;
    }
    replace(status);
    const text = JSON.stringify(d.value);
    if (text === last) return;
    last = text;
    renderDetail(body, d.value || {});
  });
}

function renderDetail(body, detail) {
  const maps = Array.isArray(detail.maps) ? detail.maps : [];
  const parts = [h('p', { class: 'meta' }, `Reported ${fmtTime(detail.time) || 'at an unknown time'} · ${maps.length} map${maps.length === 1 ? '' : 's'}`,
    typeof detail.truncated === 'number' && detail.truncated > 0 ? ` · ${detail.truncated} maps left out (broadcast size limit)` : '')];
  const errors = Array.isArray(detail.errors) ? detail.errors : [];
  if (errors.length) {
    parts.push(h('div', { class: 'banner error' }, h('strong', { text: 'Collection problems:' }),
      h('ul', null, errors.map((e) => h('li', { text: str(e) })))));
  }
  if (!maps.length) parts.push(h('p', { class: 'empty', text: 'This node reports no multipath map.' }));
  for (const m of maps) parts.push(renderMap(m));
  replace(body, parts);
}

function dash(v) {
  const s = str(v);
  return s === '' ? '—' : s;
}

function renderMap(m) {
  const groups = Array.isArray(m['path-groups']) ? m['path-groups'] : [];
  const facts = [
    m.sysfs && `${str(m.sysfs)}`,
    typeof m.size === 'number' && humanSize(m.size),
    `${dash(m['paths-active'])}/${dash(m['paths-total'])} paths active`,
    m.transport && str(m.transport),
    m.queueing && 'I/O queueing with no usable path',
  ].filter(Boolean).join(' · ');
  const rows = [];
  for (const g of groups) {
    const paths = Array.isArray(g.paths) ? g.paths : [];
    rows.push(h('tr', { class: 'group' }, h('th', { scope: 'rowgroup', colspan: '9' },
      `Path group ${dash(g.group)}`, ` · ${dash(g.state)}`, ` · priority ${dash(g.pri)}`,
      g.selector ? ` · ${str(g.selector)}` : '', g.marginal ? ' · marginal' : '')));
    for (const p of paths) {
      const failed = p.usable === false;
      rows.push(h('tr', { class: failed ? 'path failed' : (p.marginal ? 'path marginal' : 'path'), dataset: { dev: str(p.dev) } },
        h('td', null, failed
          ? h('span', { class: 'badge st-failed' }, h('span', { class: 'ic', 'aria-hidden': 'true', text: '✕' }), ' failed')
          : (p.marginal
            ? h('span', { class: 'badge st-degraded' }, h('span', { class: 'ic', 'aria-hidden': 'true', text: '▲' }), ' marginal')
            : h('span', { class: 'badge st-optimal' }, h('span', { class: 'ic', 'aria-hidden': 'true', text: '✓' }), ' usable'))),
        h('td', { class: 'mono' }, dash(p.dev), p['dev-t'] ? h('span', { class: 'sub', text: ` ${str(p['dev-t'])}` }) : ''),
        h('td', { text: dash(p['dm-st']) }),
        h('td', { text: `${dash(p['chk-st'])}${p.checker ? ` (${str(p.checker)})` : ''}` }),
        h('td', { text: dash(p['dev-st']) }),
        h('td', { class: 'mono', text: dash(p['host-adapter'] || p['host-wwpn'] || (p.hcil ? `host${str(p.hcil).split(':')[0]}` : '')), title: p.hcil ? `H:C:T:L ${str(p.hcil)}` : null }),
        h('td', { class: 'mono', text: dash(p['iscsi-target'] || p['target-wwpn'] || p['target-wwnn']) }),
        h('td', { class: 'num', text: dash(p.pri) }),
        h('td', { text: dash(p.transport || p.protocol) })));
    }
  }
  return h('section', { class: 'map card', dataset: { wwid: str(m.wwid) } },
    h('h2', null, badge(m.state), ' ', h('span', { class: 'map-name', text: str(m.name) || str(m.wwid) }),
      str(m.name) && str(m.name) !== str(m.wwid) ? h('span', { class: 'mono sub', text: str(m.wwid) }) : null),
    h('p', { class: 'meta', text: facts }),
    m['paths-omitted']
      ? h('p', { class: 'banner info', text: 'The path list was left out of this node\'s report to fit the broadcast size limit.' })
      : h('table', { class: 'grid paths' },
        h('thead', null, h('tr', null, ['State', 'Device', 'DM state', 'Checker', 'Device state', 'Host adapter', 'Target', 'Priority', 'Transport']
          .map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', null, rows)));
}
