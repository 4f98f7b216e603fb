// shoal dashboard: renders the snapshots of /api/v1/dashboard/events and
// posts the actions to /api/v1. No framework, no build step; every value
// from the node goes into the page as text, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

// h builds an element: h('td', {class: 'num'}, 'text', child, ...).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, kids);
  return el;
}
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  append(el, kids);
  return el;
}
function append(el, kids) {
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    el.append(k instanceof Node ? k : String(k));
  }
}
function fill(el, ...kids) { el.replaceChildren(); append(el, kids); }

// ---- formatting ----
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
function bytes(n) {
  n = Number(n) || 0;
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
  const digits = i === 0 ? 0 : n < 10 ? 2 : n < 100 ? 1 : 0;
  return n.toFixed(digits) + ' ' + UNITS[i];
}
function rate(bps) { return bytes(bps) + '/s'; }
function duration(sec) {
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return sec + ' s';
  const m = Math.floor(sec / 60);
  if (m < 60) return m + ' min' + (sec % 60 && m < 10 ? ' ' + (sec % 60) + ' s' : '');
  const hr = Math.floor(m / 60);
  if (hr < 48) return hr + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
  return Math.floor(hr / 24) + ' d ' + (hr % 24) + ' h';
}
let serverSkew = 0; // server time minus browser time, ms
function ago(t) {
  if (!t) return 'never';
  const sec = (Date.now() + serverSkew - Date.parse(t)) / 1000;
  if (sec < 5) return 'just now';
  if (sec < 60) return Math.round(sec) + ' s ago';
  if (sec < 3600) return Math.round(sec / 60) + ' min ago';
  if (sec < 172800) return Math.round(sec / 3600) + ' h ago';
  return Math.round(sec / 86400) + ' days ago';
}
function shortID(id) { return id && id.length > 16 ? id.slice(0, 8) + '…' + id.slice(-6) : (id || ''); }
function pct(part, whole) { return whole > 0 ? Math.min(100, (100 * part) / whole) : 0; }

// sentence makes one readable sentence of a message: one line, a capital
// first letter (unless it starts with an identifier such as a CID), a
// full stop.
function sentence(msg) {
  let text = String(msg === undefined || msg === null ? '' : msg).replace(/\s+/g, ' ').trim();
  if (!text) return 'Something went wrong, and the node did not say what.';
  if (/^[a-z]+\b(?![-_./])/.test(text)) text = text[0].toUpperCase() + text.slice(1);
  return /[.!?…]$/.test(text) ? text : text + '.';
}
// apiMessage finds the message in an error response's body: the API's
// {"error": "..."}, an {"error": {"message": "..."}} or {"message": "..."}
// from elsewhere, or short plain text; never the raw JSON or HTML.
function apiMessage(body, status) {
  let data = null;
  try { data = JSON.parse(body); } catch (e) { /* not JSON */ }
  if (data && typeof data === 'object') {
    const e = data.error !== undefined && data.error !== null ? data.error : data;
    if (typeof e === 'string' && e.trim()) return e.trim();
    if (e && typeof e.message === 'string' && e.message.trim()) return e.message.trim();
  }
  const text = String(body || '').trim();
  if (text && data === null && !/^[<{[]/.test(text) && text.length <= 300) return text;
  return 'the node answered ' + status;
}
// errorText is what went wrong in a thrown value, for a sentence.
function errorText(e) {
  if (e instanceof TypeError) return 'the node did not answer; is the daemon still running?';
  if (e && typeof e.message === 'string' && e.message) return e.message;
  return String(e);
}

// cidLabel shows a name when the node knows one, with the CID shortened
// beside it, else the CID; the full CID is always in the tooltip.
function cidLabel(cid, name) {
  if (!name) return h('span', { class: 'mono cid', title: cid }, cid);
  return h('span', { class: 'named', title: name + '\n' + cid },
    h('span', { class: 'name' }, name), h('span', { class: 'mono cid' }, shortID(cid)));
}

// Each peer's colour comes from its ID (FNV-1a), so it is the same in
// every bar and table, across refreshes and whatever order peers arrive in.
function peerColour(id) {
  let x = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) { x ^= id.charCodeAt(i); x = Math.imul(x, 0x01000193); }
  x >>>= 0;
  return 'hsl(' + (x % 360) + ' ' + (55 + ((x >>> 9) % 25)) + '% ' + (38 + ((x >>> 17) % 14)) + '%)';
}
function swatch(id) { const el = h('i', { class: 'sw' }); el.style.background = peerColour(id); return el; }

// ---- actions ----
function toast(msg, bad) {
  const el = h('div', { class: 'toast' + (bad ? ' bad' : '') }, msg);
  $('toasts').append(el);
  setTimeout(() => el.remove(), bad ? 9000 : 6000);
}
async function post(path, body, headers) {
  const resp = await fetch(path, { method: 'POST', body, headers, credentials: 'same-origin' });
  const text = await resp.text();
  if (!resp.ok) throw new Error(apiMessage(text, (resp.status + ' ' + resp.statusText).trim()));
  try { return JSON.parse(text); } catch (e) { return null; }
}
async function fetchCID(ev) {
  ev.preventDefault();
  const input = $('fetch-cid');
  const cid = input.value.trim();
  if (!cid) { input.focus(); return; }
  try {
    const t = await post('/api/v1/fetch?cid=' + encodeURIComponent(cid));
    toast(h('span', {}, 'Fetching ', t.name ? t.name : h('span', { class: 'mono' }, shortID(t.cid))));
    input.value = '';
  } catch (e) { toast(sentence('Fetch failed: ' + errorText(e)), true); }
}
async function shareFile() {
  const input = $('share-file');
  const file = input.files[0];
  if (!file) return;
  toast('Sharing ' + file.name + ' (' + bytes(file.size) + ')…');
  try {
    const r = await post('/api/v1/add', file, { 'Content-Type': 'application/octet-stream' });
    toast(h('span', {}, 'Shared ' + file.name + ': ', h('span', { class: 'mono' }, r.cid)));
  } catch (e) { toast(sentence('Sharing ' + file.name + ' failed: ' + errorText(e)), true); }
  input.value = '';
}
async function setPin(btn, cid, pin) {
  btn.disabled = true;
  try {
    await post('/api/v1/' + (pin ? 'pin/' : 'unpin/') + encodeURIComponent(cid));
    toast((pin ? 'Pinned ' : 'Unpinned ') + shortID(cid));
  } catch (e) { toast(sentence((pin ? 'Pinning' : 'Unpinning') + ' failed: ' + errorText(e)), true); btn.disabled = false; }
}
function copyButton(text) {
  return h('button', { class: 'ghost small', type: 'button', title: 'Copy', onclick: async () => {
    try { await navigator.clipboard.writeText(text); toast('Copied'); } catch (e) { toast('Copy failed: select and copy by hand.', true); }
  } }, 'copy');
}

// ---- sections ----
// Sections are rebuilt only when their data changed, so hovering and
// clicking stay steady between snapshots.
const last = {};
function changed(key, data) {
  const j = JSON.stringify(data);
  if (last[key] === j) return false;
  last[key] = j;
  return true;
}

function tile(label, value, unit, note, cls) {
  return h('div', { class: 'tile ' + (cls || ''), 'data-tile': label.toLowerCase() },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value' }, value, unit ? h('small', {}, unit) : null),
    h('div', { class: 'note' }, note || '\u00a0'));
}
function splitUnit(str) { const i = str.lastIndexOf(' '); return [str.slice(0, i), str.slice(i + 1)]; }

function renderTiles(d, bw) {
  const info = d.info;
  const peers = (d.peers || []).length;
  const roots = d.roots || [];
  const running = (d.transfers || []).filter((t) => t.state === 'running');
  const cur = bw.length ? bw[bw.length - 1] : { in: 0, out: 0 };
  const [inV, inU] = splitUnit(rate(cur.in));
  const [outV, outU] = splitUnit(rate(cur.out));
  const [stV, stU] = splitUnit(bytes(info.store_bytes));
  const pinned = roots.filter((r) => r.pinned).length;
  fill($('tiles'),
    tile('Peers', peers, '', info.routing_table_size + ' in DHT routing table'),
    tile('Download', inV, inU, running.length ? running.length + ' transfer' + (running.length > 1 ? 's' : '') + ' running' : 'idle', 'in'),
    tile('Upload', outV, outU, 'serving ' + roots.length + ' root' + (roots.length === 1 ? '' : 's'), 'out'),
    tile('Stored', stV, stU, info.capacity_bytes ? pct(info.store_bytes, info.capacity_bytes).toFixed(0) + '% of ' + bytes(info.capacity_bytes) : info.store_blocks + ' blocks, no limit'),
    tile('Content', roots.length, roots.length === 1 ? 'root' : 'roots', pinned + ' pinned'));
}

function renderNode(d) {
  const info = d.info;
  fill($('top-node'), shortID(info.id) + (info.network ? ' · ' + info.network : ''));
  $('top-node').title = info.id;
  const rows = [];
  const row = (k, ...v) => rows.push(h('dt', {}, k), h('dd', {}, ...v));
  row('Peer ID', h('div', { class: 'idline' }, h('span', { class: 'mono', id: 'node-id', title: info.id }, info.id), copyButton(info.id)));
  row('Addresses', (info.addresses || []).length
    ? h('ul', { class: 'addrs' }, (info.addresses || []).map((a) => h('li', { title: a }, a.replace('/p2p/' + info.id, ''))))
    : h('span', { class: 'muted' }, 'not listening'));
  const since = Date.parse(info.started) > 0 ? ' · since ' + new Date(info.started).toLocaleString() : '';
  row('Uptime', d.uptime_s ? duration(d.uptime_s) : '—', h('span', { class: 'muted' }, since));
  row('DHT', (info.dht_mode || '—') + ' mode · ', h('b', {}, info.routing_table_size), ' peers in the routing table',
    info.network ? h('span', { class: 'sub2' }, 'network “' + info.network + '”') : null);
  const cap = info.capacity_bytes;
  row('Storage', h('div', { class: 'meter' },
    h('span', {}, bytes(info.store_bytes), h('span', { class: 'muted' }, cap ? ' of ' + bytes(cap) : ' · no limit'), h('span', { class: 'muted' }, ' · ' + info.store_blocks + ' blocks')),
    cap ? bar(pct(info.store_bytes, cap)) : null));
  row('Announcing', info.provide_queue ? info.provide_queue + ' keys queued' : h('span', { class: 'muted' }, 'queue empty'),
    h('span', { class: 'muted' }, ' · wanting ' + d.want_list + ' blocks'));
  if (d.gateway) row('Gateway', h('span', { class: 'mono' }, d.gateway + '/ipfs/<cid>'));
  fill($('node'), rows);
}
function bar(p, colour) {
  const inner = h('span');
  inner.style.width = p.toFixed(2) + '%';
  if (colour) inner.style.background = colour;
  return h('div', { class: 'bar' }, inner);
}

function renderTransfers(d) {
  const ts = d.transfers || [];
  const running = ts.filter((t) => t.state === 'running').length;
  fill($('transfer-count'), ts.length ? running + ' active · ' + (ts.length - running) + ' recent' : '');
  if (!ts.length) {
    fill($('transfers'), h('div', { class: 'empty' }, 'No transfers yet. Paste a CID above, or read one through the gateway.'));
    return;
  }
  fill($('transfers'), ts.slice(0, 12).map(transferRow));
}
function transferRow(t) {
  const done = t.state === 'done', failed = t.state === 'failed';
  const size = t.size || 0;
  const p = done ? 100 : pct(t.bytes_done, size);
  const state = done ? h('span', { class: 'pill ok' }, '✓ done') : failed ? h('span', { class: 'pill bad' }, 'failed')
    : h('span', { class: 'pill accent' }, size ? p.toFixed(0) + '%' : 'starting');
  const took = t.finished ? (Date.parse(t.finished) - Date.parse(t.started)) / 1000 : 0;
  const over = done || failed;
  // A finished transfer shows what it averaged over its whole run, not
  // the last rate it measured.
  const shownRate = over ? (took > 0 ? rate(t.bytes_done / took) : '—') : rate(t.rate_bps);
  const meta = [
    h('span', {}, h('b', {}, bytes(t.bytes_done)), size ? ' of ' + bytes(size) : ''),
    h('span', { class: 't-rate' }, over ? 'average ' : '', h('b', {}, shownRate)),
    !over && t.eta_s > 0 ? h('span', {}, 'ETA ', h('b', {}, duration(t.eta_s))) : null,
    t.blocks || !failed ? h('span', { class: 't-blocks' }, h('b', {}, t.blocks), t.blocks === 1 ? ' block' : ' blocks') : null,
    t.duplicate_ratio > 1.005 ? h('span', {}, (100 * (t.duplicate_ratio - 1)).toFixed(1) + '% duplicates') : null,
    h('span', {}, 'from ', h('b', {}, t.source || '—')),
  ];
  const peers = t.peers || [];
  const total = peers.reduce((a, x) => a + x.bytes, 0);
  const contrib = peers.length ? h('div', { class: 't-peers' },
    h('span', { class: 'lbl' }, 'By peer'),
    h('div', { class: 'bar', title: 'bytes each peer delivered' }, peers.map((x) => {
      const seg = h('span', { title: x.peer + ': ' + bytes(x.bytes) });
      seg.style.width = pct(x.bytes, total).toFixed(2) + '%';
      seg.style.background = peerColour(x.peer);
      return seg;
    })),
    h('div', { class: 'legend' }, peers.slice(0, 6).map((x) => h('span', {}, swatch(x.peer),
      h('span', { class: 'mono', title: x.peer }, shortID(x.peer)), bytes(x.bytes) + ' · ' + pct(x.bytes, total).toFixed(0) + '%')),
    peers.length > 6 ? h('span', {}, '+ ' + (peers.length - 6) + ' more') : null)) : null;
  return h('div', { class: 'transfer', 'data-cid': t.cid, 'data-state': t.state },
    h('div', { class: 't-head' }, state, cidLabel(t.cid, t.name),
      h('span', { class: 'right' }, done || failed ? 'finished ' + ago(t.finished) + ' · took ' + (took < 10 ? took.toFixed(1) + ' s' : duration(took)) : 'started ' + ago(t.started))),
    h('div', { class: 't-progress' }, bar(p)),
    h('div', { class: 't-meta' }, meta),
    failed && t.error ? h('div', { class: 't-error' }, sentence(t.error)) : null,
    contrib);
}

function renderRoots(d) {
  const roots = (d.roots || []).slice().sort((a, b) => (b.pinned - a.pinned) || a.cid.localeCompare(b.cid));
  fill($('root-count'), roots.length ? roots.length + ' · ' + bytes(roots.reduce((a, r) => a + r.size, 0)) : '');
  if (d.roots_error) { fill($('roots'), h('div', { class: 'empty error' }, sentence(d.roots_error))); return; }
  if (!roots.length) {
    fill($('roots'), h('div', { class: 'empty' }, 'Nothing shared yet. Share a file here, or run ', h('code', {}, 'shoal share <path>'), '.'));
    return;
  }
  const rt = d.info.routing_table_size;
  const cl = d.cluster;
  const pins = new Map(((cl && cl.pins) || []).map((p) => [p.cid, p]));
  const note = cl ? h('div', { class: 'cluster-note' + (cl.error ? ' error' : ''), id: 'cluster-note' }, cl.error
    ? sentence('IPFS Cluster at ' + cl.rest_addr + ' could not be read: ' + cl.error)
    : 'Cluster column: copies pinned on the IPFS Cluster at ' + cl.rest_addr + ' / copies it wants.') : null;
  const clusterCell = (r) => {
    const p = pins.get(r.cid);
    if (!p) return h('td', { class: 'cluster' }, h('span', { class: 'muted' }, cl.error ? '—' : 'not in cluster'));
    const want = p.replication_min < 0 ? Infinity : p.replication_min;
    return h('td', { class: 'cluster', title: (p.peers || []).map((x) => (x.name || shortID(x.peer)) + ': ' + x.status + (x.error ? ' (' + x.error + ')' : '')).join('\n') },
      h('span', { class: 'pill ' + (p.pinned >= want ? 'ok' : 'warn') }, p.pinned + ' / ' + replication(p.replication_min, p.replication_max)),
      h('span', { class: 'sub2' }, 'pinned / wanted'));
  };
  fill($('roots'), note, h('div', { class: 'table-wrap' }, h('table', { id: 'roots-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'CID'), h('th', { class: 'num' }, 'Size'), h('th', {}, 'Pin'), h('th', {}, 'Discoverable?'), cl ? h('th', {}, 'Cluster') : null, h('th', {}))),
    h('tbody', {}, roots.map((r) => {
      let disc;
      if (r.last_provided) disc = [h('span', { class: 'pill ' + (rt ? 'ok' : 'warn') }, rt ? '✓ yes' : 'no DHT peers now'), h('span', { class: 'sub2' }, 'announced ' + ago(r.last_provided))];
      else if (r.providing) disc = [h('span', { class: 'pill warn' }, 'announcing…'), h('span', { class: 'sub2' }, 'not yet in the DHT')];
      else disc = [h('span', { class: 'pill' }, 'no'), h('span', { class: 'sub2' }, 'not announced')];
      const btn = h('button', { class: 'small', type: 'button' }, r.pinned ? 'Unpin' : 'Pin');
      btn.addEventListener('click', () => setPin(btn, r.cid, !r.pinned));
      return h('tr', { 'data-cid': r.cid },
        h('td', { class: 'grow' }, h('div', { class: 'cell-id' }, cidLabel(r.cid, r.name))),
        h('td', { class: 'num' }, bytes(r.size)),
        h('td', {}, r.pinned ? h('span', { class: 'pill accent' }, 'pinned') : h('span', { class: 'pill' }, 'cached')),
        h('td', { class: 'disc' }, disc),
        cl ? clusterCell(r) : null,
        h('td', { class: 'act' }, d.gateway ? h('a', { href: d.gateway + '/ipfs/' + r.cid, target: '_blank', rel: 'noopener', class: 'button small' }, 'Open') : null, ' ', btn));
    })))));
}

function renderPeers(d) {
  const peers = (d.peers || []).slice().sort((a, b) => (b.bytes_in + b.bytes_out) - (a.bytes_in + a.bytes_out) || a.peer.localeCompare(b.peer));
  fill($('peer-count'), String(peers.length));
  if (!peers.length) {
    fill($('peers'), h('div', { class: 'empty' }, 'No peers connected. Run ', h('code', {}, 'shoal connect <multiaddr>'), ' or wait for the DHT.'));
    return;
  }
  fill($('peers'), h('div', { class: 'table-wrap' }, h('table', { id: 'peers-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Peer'), h('th', {}, 'Transport'), h('th', { class: 'num' }, 'Latency'), h('th', { class: 'num' }, 'Received'), h('th', { class: 'num' }, 'Sent'), h('th', { class: 'num' }, 'Score'))),
    h('tbody', {}, peers.map((p) => h('tr', { 'data-peer': p.peer },
      h('td', { class: 'grow' }, h('div', { class: 'cell-id' }, swatch(p.peer), h('span', { class: 'mono', title: p.peer + '\n' + p.address }, shortID(p.peer)))),
      h('td', {}, h('span', { class: 'pill' }, p.transport)),
      h('td', { class: 'num' }, p.latency_ms ? p.latency_ms.toFixed(p.latency_ms < 10 ? 2 : 0) + ' ms' : '—'),
      h('td', { class: 'num' }, bytes(p.bytes_in)),
      h('td', { class: 'num' }, bytes(p.bytes_out)),
      h('td', { class: 'num' }, p.score.toFixed(2))))))));
}

// ---- swarm ----
// replication is a cluster pin's wanted copies: "2", "2–3", or "all" (-1).
function replication(min, max) {
  const one = (v) => (v < 0 ? 'all' : v === 0 ? 'default' : String(v));
  return min === max || max === 0 ? one(min) : one(min) + '–' + one(max);
}
// swarmBar draws a root's availability map as BitTorrent clients do: one
// cell per block (or run of blocks) in walk order, shaded by how many
// known peers hold it; below it, the blocks this node holds.
function swarmBar(r) {
  const avail = r.avail || [], local = r.local || [], n = avail.length;
  const peers = Math.max(1, (r.peers || []).length);
  const svg = s('svg', { class: 'swarm-bar', viewBox: `0 0 ${Math.max(1, n)} 10`, preserveAspectRatio: 'none', 'shape-rendering': 'crispEdges',
    role: 'img', 'aria-label': 'availability of ' + r.blocks + ' blocks', 'data-cid': r.cid, 'data-blocks': r.blocks, 'data-cells': n });
  const per = r.blocks_per_cell || 1;
  // A gap of a few pixels between cells while they are wide enough to
  // show one (a bar is about a thousand pixels wide).
  const wd = n > 1 && n <= 128 ? 1 - Math.min(0.08, n / 400) : 1;
  for (let i = 0; i < n; i++) {
    const inCell = Math.min(per, r.blocks - i * per);
    const c = s('rect', { class: 'cell' + (avail[i] ? '' : ' none'), x: i, y: 0, width: wd, height: 6.5, 'data-avail': avail[i] });
    if (avail[i]) c.setAttribute('fill-opacity', (0.3 + 0.7 * Math.min(1, avail[i] / peers)).toFixed(2));
    c.append(s('title', {}, (per > 1 ? 'blocks ' + (i * per + 1) + '–' + (i * per + inCell) : 'block ' + (i + 1)) + ': ' +
      avail[i] + ' peer' + (avail[i] === 1 ? '' : 's') + ' · ' + (local[i] === inCell ? 'held here' : local[i] ? local[i] + ' held here' : 'not held here')));
    svg.append(c);
    svg.append(s('rect', { class: local[i] === inCell ? 'mine' : 'lack', x: i, y: 7.5, width: wd, height: 2.5, 'data-local': local[i] }));
  }
  return svg;
}
function flag(on, yes, no) { return h('span', { class: 'flag ' + (on ? 'off' : 'on') }, on ? yes : no); }
function renderSwarm(d) {
  const sw = d.swarm || { roots: [], peers: [], slots: {} };
  const sl = sw.slots || {};
  fill($('swarm-note'), sw.extension ? 'swarm extension on' : 'swarm extension off: plain Bitswap');
  const head = h('div', { class: 'swarm-slots', id: 'swarm-slots' },
    sw.extension
      ? h('span', {}, 'Upload slots ', h('b', { id: 'slots-used' }, sl.used + ' / ' + sl.total), ' used',
        sl.optimistic ? h('span', {}, ' · optimistic ', h('span', { class: 'mono', title: sl.optimistic }, shortID(sl.optimistic))) : null,
        sl.origin ? ' · origin mode (each block to one peer first)' : null)
      : h('span', { id: 'swarm-off' }, 'The swarm extension is off on this node (network.swarm_extension): peers trade over plain Bitswap, without maps or choking; shown are what Bitswap knows, the bytes each peer sent and received.'));
  const roots = (sw.roots || []).map((r) => h('div', { class: 'swarm-root', 'data-cid': r.cid, 'data-role': r.role },
    h('div', { class: 'sr-head' }, h('span', { class: 'pill ' + (r.role === 'fetching' ? 'accent' : '') }, r.role), cidLabel(r.cid, r.name),
      h('span', { class: 'right' }, h('b', {}, r.held), ' of ', h('b', {}, r.blocks), r.partial ? ' known' : '', ' blocks held here',
        r.blocks_per_cell > 1 ? ' · ' + r.blocks_per_cell + ' per cell' : '')),
    swarmBar(r),
    (r.peers || []).length ? h('div', { class: 'sr-peers' }, r.peers.slice(0, 8).map((p) => h('span', { 'data-peer': p.peer }, swatch(p.peer),
      h('span', { class: 'mono', title: p.peer }, shortID(p.peer)), p.complete ? 'seed' : p.blocks + ' of ' + r.blocks,
      p.interested ? ' · fetching' : '')), r.peers.length > 8 ? h('span', {}, '+ ' + (r.peers.length - 8) + ' more') : null)
      : h('div', { class: 'sr-peers' }, sw.extension ? 'no swarm peer has said what it holds of this' : '')));
  const peers = (sw.peers || []).slice().sort((a, b) => (b.bytes_in + b.bytes_out) - (a.bytes_in + a.bytes_out) || a.peer.localeCompare(b.peer));
  const table = peers.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'swarm-peers-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Peer'), h('th', {}, 'Speaks'), h('th', { class: 'num' }, 'Received'), h('th', { class: 'num' }, 'Sent'),
      h('th', {}, 'We upload'), h('th', {}, 'It uploads'), h('th', {}, 'Interest'))),
    h('tbody', {}, peers.map((p) => h('tr', { 'data-peer': p.peer },
      h('td', { class: 'grow' }, h('div', { class: 'cell-id' }, swatch(p.peer), h('span', { class: 'mono', title: p.peer }, shortID(p.peer)))),
      h('td', {}, h('span', { class: 'pill' + (p.extension ? ' accent' : '') }, p.extension ? 'swarm' : 'bitswap')),
      h('td', { class: 'num' }, bytes(p.bytes_in)),
      h('td', { class: 'num' }, bytes(p.bytes_out)),
      h('td', { class: 'up' }, p.extension ? flag(p.am_choking, 'choked', p.optimistic ? 'unchoked (optimistic)' : 'unchoked') : h('span', { class: 'muted' }, 'never choked')),
      h('td', { class: 'down' }, p.extension ? flag(p.peer_choking, 'choked', 'unchoked') : h('span', { class: 'muted' }, 'never choked')),
      h('td', { class: 'interest' }, [p.peer_interested ? 'it wants ours' : null, p.am_interested ? 'we want its' : null].filter(Boolean).join(' · ') || h('span', { class: 'muted' }, 'none')))))))
    : h('div', { class: 'empty' }, 'No peers connected.');
  fill($('swarm'), head, roots.length ? roots : h('div', { class: 'empty' }, 'Nothing shared or fetching.'), table);
}

// ---- charts ----
// The chart spans the samples it has, from one minute up to WINDOW_MS.
const WINDOW_MS = 5 * 60 * 1000;
let bandwidth = [];
// rateAxis picks the y axis for byte rates up to max: the unit the labels
// show (B/s, KiB/s, ...) and a step of 1, 2 or 5 × 10^n in that unit, so
// that two to four steps reach at least max.
function rateAxis(max) {
  max = Math.max(Number(max) || 0, 1024); // an idle chart spans 1 KiB/s
  let i = 0, unit = 1;
  while (max / unit >= 1024 && i < UNITS.length - 1) { unit *= 1024; i++; }
  const m = max / unit, raw = m / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((k) => k * p).find((v) => v >= raw * (1 - 1e-12));
  const steps = Math.ceil(m / step - 1e-9);
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return {
    steps, top: steps * step * unit,
    label: (k) => (k ? Number((k * step).toFixed(digits)) + ' ' + UNITS[i] + '/s' : '0'),
  };
}
function renderBandwidth(serverNow) {
  const box = $('bw-chart');
  const W = Math.max(280, box.clientWidth), H = 190, L = 70, R = W - 2, B = 20, T = 8;
  const span = bandwidth.length ? serverNow - bandwidth[0].t : 0;
  const minutes = Math.min(WINDOW_MS / 60000, Math.max(1, Math.ceil(span / 60000)));
  const win = minutes * 60000, end = serverNow, start = end - win;
  // The points drawn, the newest included, are the ones the axis spans.
  const pts = bandwidth.filter((p) => p.t >= start - 2000);
  const axis = rateAxis(Math.max(0, ...pts.map((p) => Math.max(p.in, p.out))));
  const clampX = (v) => Math.min(R, Math.max(L, v));
  const x = (t) => clampX(L + ((t - start) / win) * (R - L));
  const y = (v) => T + (1 - Math.min(1, Math.max(0, v / axis.top))) * (H - T - B);
  const svg = s('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'bandwidth in and out over the last ' + minutes + ' min' });
  // The plot area: the lines are clipped to it, so nothing crosses an axis.
  svg.append(s('clipPath', { id: 'bw-clip' }, s('rect', { class: 'plot', x: L, y: T, width: R - L, height: H - T - B })));
  for (let k = 0; k <= axis.steps; k++) {
    const yy = T + (1 - k / axis.steps) * (H - T - B);
    svg.append(s('line', { class: 'grid-line', x1: L, x2: R, y1: yy, y2: yy }));
    svg.append(s('text', { class: 'y-tick', x: L - 8, y: yy + 4, 'text-anchor': 'end' }, axis.label(k)));
  }
  const step = minutes === 1 ? 10000 : 60000, ticks = win / step;
  // Every other time label when they would crowd (a narrow chart).
  const every = (R - L) / ticks < 46 ? 2 : 1;
  for (let k = ticks; k >= 0; k--) {
    if (k % every) continue;
    const label = k === 0 ? 'now' : step === 60000 ? '−' + k + ' min' : '−' + (k * step) / 1000 + ' s';
    svg.append(s('text', { x: x(end - k * step), y: H - 4, 'text-anchor': k === ticks ? 'start' : k ? 'middle' : 'end' }, label));
  }
  if (pts.length > 1) {
    const path = (key) => pts.map((p, i) => (i ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p[key]).toFixed(1)).join(' ');
    const first = x(pts[0].t), lastX = x(pts[pts.length - 1].t), base = y(0).toFixed(1);
    const clip = 'url(#bw-clip)';
    svg.append(s('path', { class: 'area-in', 'clip-path': clip, d: path('in') + ` L${lastX.toFixed(1)} ${base} L${first.toFixed(1)} ${base} Z` }));
    svg.append(s('path', { class: 'line-in', 'clip-path': clip, d: path('in') }));
    svg.append(s('path', { class: 'line-out', 'clip-path': clip, d: path('out') }));
  } else {
    svg.append(s('text', { x: (L + R) / 2, y: H / 2, 'text-anchor': 'middle' }, 'collecting samples…'));
  }
  fill(box, svg);
}

function renderBuckets(d) {
  const box = $('buckets');
  if (!d.buckets) {
    fill($('dht-note'), '');
    fill(box, h('div', { class: 'empty' }, 'This node does not report its routing table.'));
    return;
  }
  const byIndex = new Map(d.buckets.map((b) => [b.index, b.peers]));
  const top = Math.max(15, ...d.buckets.map((b) => b.index));
  const K = 20;
  fill($('dht-note'), d.info.routing_table_size + ' peers in ' + d.buckets.length + ' bucket' + (d.buckets.length === 1 ? '' : 's'));
  const W = Math.max(280, box.clientWidth), H = 190, L = 30, B = 20, T = 8;
  const n = top + 1, slot = (W - L) / n, bw = Math.max(2, slot * 0.7);
  const y = (v) => T + (1 - v / K) * (H - T - B);
  const svg = s('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'peers per routing-table bucket' });
  for (const v of [0, 10, 20]) {
    svg.append(s('line', { class: 'grid-line', x1: L, x2: W, y1: y(v), y2: y(v) }));
    svg.append(s('text', { x: L - 8, y: y(v) + 4, 'text-anchor': 'end' }, v));
  }
  const every = n > 32 ? 8 : n > 16 ? 4 : 2;
  for (let i = 0; i < n; i++) {
    const peers = byIndex.get(i) || 0, bx = L + i * slot + (slot - bw) / 2;
    const hgt = Math.max(peers ? 2 : 1.5, y(0) - y(Math.min(K, peers)));
    const r = s('rect', { class: 'bucket' + (peers ? '' : ' empty-b'), x: bx.toFixed(1), y: (y(0) - hgt).toFixed(1), width: bw.toFixed(1), height: hgt.toFixed(1), rx: 2 });
    r.append(s('title', {}, 'bucket ' + i + ' (' + i + ' shared leading bits): ' + peers + ' peer' + (peers === 1 ? '' : 's')));
    svg.append(r);
    if (i % every === 0) svg.append(s('text', { x: (bx + bw / 2).toFixed(1), y: H - 4, 'text-anchor': 'middle' }, i));
  }
  fill(box, svg);
}

// ---- live updates ----
let snap = null;
function render(d) {
  snap = d;
  serverSkew = Date.parse(d.time) - Date.now();
  if (d.bandwidth) {
    for (const p of d.bandwidth) if (!bandwidth.length || p.t > bandwidth[bandwidth.length - 1].t) bandwidth.push(p);
    const cut = Date.parse(d.time) - WINDOW_MS - 5000;
    while (bandwidth.length && bandwidth[0].t < cut) bandwidth.shift();
  }
  renderTiles(d, bandwidth);
  renderNode(d);
  // Times in rows ("3 s ago") change every second, so these rebuild on
  // every snapshot unless nothing at all changed.
  if (changed('transfers', [d.transfers, Math.floor(Date.parse(d.time) / 5000)])) renderTransfers(d);
  if (changed('roots', [d.roots, d.roots_error, d.cluster, d.info.routing_table_size, d.gateway, Math.floor(Date.parse(d.time) / 10000)])) renderRoots(d);
  if (changed('peers', d.peers)) renderPeers(d);
  if (changed('swarm', d.swarm)) renderSwarm(d);
  if (changed('buckets', [d.buckets, d.info.routing_table_size])) renderBuckets(d);
  renderBandwidth(Date.parse(d.time));
}

function connect() {
  const live = $('live'), text = $('live-text');
  const es = new EventSource('/api/v1/dashboard/events');
  es.addEventListener('open', () => { live.dataset.state = 'live'; fill(text, 'live'); });
  es.addEventListener('error', () => { live.dataset.state = 'down'; fill(text, 'reconnecting…'); });
  es.addEventListener('snapshot', (ev) => {
    live.dataset.state = 'live'; fill(text, 'live');
    try { render(JSON.parse(ev.data)); } catch (e) { console.error('rendering a snapshot', e); }
  });
}

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (snap) { renderBandwidth(Date.parse(snap.time)); renderBuckets(snap); } }, 100);
});
$('fetch-form').addEventListener('submit', fetchCID);
$('share-file').addEventListener('change', shareFile);
connect();
