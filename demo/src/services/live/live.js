// The live page's script: polls /live.json and updates the page in place.
//
// Hand-kept and dependency-free on purpose: the binary serves it as is
// (no build step), and the page must not fetch anything from elsewhere,
// since the host it runs on may have no other network than the TUN link.
'use strict';

// One snapshot at a time, then this pause: about two requests a second,
// all on the browser's keep-alive connection, which the table then shows.
const POLL_MS = 500;
// The table shows at most this many rows: with thousands of connections
// a full table costs every refresh and nobody reads it; the rest are
// counted in the heading.
const MAX_ROWS = 400;
// A closed connection's row stays this long, fading, with its last state.
const LINGER_MS = 3000;
// The packet log keeps the newest this many packets.
const MAX_PACKETS = 300;

const $ = (id) => document.getElementById(id);

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);

const live = {
  since: 0,
  you: null,
  // Every socket in the last snapshot by key, to see what is new, what
  // changed state and what closed.
  last: new Map(),
  // key -> {socket, until}: closed connections still shown.
  lingering: new Map(),
  // key -> <tr>: the rows in the table now.
  rows: new Map(),
  packets: [],
  packetsDirty: true,
  counters: new Map(),
  first: true,
};

// ---- the socket table -------------------------------------------------

function keyOf(s) {
  return `${s.protocol} ${s.local} ${s.remote ?? '*'}`;
}

function isMine(s) {
  return live.you !== null && s.protocol === 'tcp' &&
    s.local === live.you.local && s.remote === live.you.remote;
}

function port(addr) {
  return Number(addr.slice(addr.lastIndexOf(':') + 1));
}

// Compares peers by their digits as numbers (10.0.0.1:9 before
// 10.0.0.1:10); made once, since a collator is costly to build.
const PEERS = new Intl.Collator('en', { numeric: true });

// The table's order: listeners and bound sockets first by port, then
// the visitor's own connection, then the others by local port and peer.
// The keys are computed once per socket, not once per comparison: with
// thousands of sockets the sort runs every refresh.
function sorted(sockets) {
  const keyed = sockets.map((s) => ({
    s,
    rank: s.remote === null ? 0 : isMine(s) ? 1 : 2,
    port: port(s.local),
  }));
  keyed.sort((a, b) => a.rank - b.rank || a.port - b.port ||
    a.s.protocol.localeCompare(b.s.protocol) ||
    PEERS.compare(a.s.remote ?? '', b.s.remote ?? ''));
  return keyed.map((k) => k.s);
}

function millis(us) {
  return us === null || us === undefined ? '' : `${(us / 1000).toFixed(2)} ms`;
}

function bytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 10 * 1024) return `${n} B`;
  if (n < 10 * 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function cells(s) {
  return [
    s.protocol,
    s.local,
    s.remote ?? '*',
    s.state,
    String(s.recv_queue ?? ''),
    String(s.send_queue ?? ''),
    millis(s.srtt_us),
    bytes(s.cwnd),
  ];
}

const CLASSES = ['proto', 'addr', 'addr', 'state', 'num', 'num', 'num', 'num'];

function newRow(key) {
  const tr = document.createElement('tr');
  tr.dataset.key = key;
  for (const c of CLASSES) {
    tr.appendChild(document.createElement('td')).className = c;
  }
  return tr;
}

// Restarts the row's highlight: switching between two identical
// animations restarts it without forcing a layout per row.
function flash(tr) {
  const next = tr.classList.contains('flash-a') ? 'flash-b' : 'flash-a';
  tr.classList.remove('flash-a', 'flash-b');
  tr.classList.add(next);
}

function fill(tr, s, mine, gone) {
  const texts = cells(s);
  for (let i = 0; i < texts.length; i++) {
    const td = tr.children[i];
    if (td.textContent !== texts[i]) td.textContent = texts[i];
  }
  if (tr.dataset.state !== s.state) tr.dataset.state = s.state;
  tr.classList.toggle('mine', mine);
  tr.classList.toggle('gone', gone);
  const title = mine ? 'your connection: this page polls through it' : '';
  if (tr.children[2].title !== title) tr.children[2].title = title;
}

function updateSockets(sockets, now) {
  const current = new Map();
  for (const s of sockets) current.set(keyOf(s), s);

  const changed = new Set();
  for (const [key, s] of current) {
    if (!live.first && live.last.get(key)?.state !== s.state) changed.add(key);
    live.lingering.delete(key);
  }
  for (const [key, s] of live.last) {
    if (!current.has(key)) live.lingering.set(key, { socket: s, until: now + LINGER_MS });
  }
  live.last = current;
  for (const [key, l] of live.lingering) {
    if (l.until <= now) live.lingering.delete(key);
  }

  const all = sorted([...sockets, ...[...live.lingering.values()].map((l) => l.socket)]);
  const shown = all.slice(0, MAX_ROWS);

  const tbody = $('socket-rows');
  // Rows leaving go first, so that they do not stand between rows that
  // stay (which would then have to move).
  const keep = new Set(shown.map(keyOf));
  for (const [key, tr] of live.rows) {
    if (!keep.has(key)) {
      tr.remove();
      live.rows.delete(key);
    }
  }
  let prev = null;
  for (const s of shown) {
    const key = keyOf(s);
    let tr = live.rows.get(key);
    if (!tr) {
      tr = newRow(key);
      live.rows.set(key, tr);
    }
    fill(tr, s, isMine(s), live.lingering.has(key));
    if (changed.has(key)) flash(tr);
    // Move a row only when it is out of place: moving an element
    // restarts its animation, and most rows stay where they were.
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== tr) tbody.insertBefore(tr, want);
    prev = tr;
  }
  const open = sockets.length;
  $('sockets-count').textContent = shown.length < all.length
    ? `showing ${shown.length} of ${all.length}`
    : `${open} socket${open === 1 ? '' : 's'}`;
}

// ---- the visitor ------------------------------------------------------

function showYou(you) {
  const [ip, theirs] = [you.remote.slice(0, you.remote.lastIndexOf(':')), port(you.remote)];
  const [ourIp, ours] = [you.local.slice(0, you.local.lastIndexOf(':')), port(you.local)];
  $('you').innerHTML =
    `You are <b id="you-remote" class="mine-text">${escapeHtml(you.remote)}</b> talking to ` +
    `<b id="you-local">${escapeHtml(you.local)}</b>: the 4-tuple ` +
    `(${escapeHtml(ip)}, <b id="you-ephemeral">${theirs}</b>, ${escapeHtml(ourIp)}, ` +
    `<b id="you-well-known">${ours}</b>). ` +
    `<b>${ours}</b> is our well-known port (HTTP); <b>${theirs}</b> is the ephemeral ` +
    'port your host picked for this connection. It is marked in the table.';
}

// ---- the packet log ---------------------------------------------------

function packetText(p) {
  return p.line.startsWith(p.time) ? p.line : `${p.time} ${p.line}`;
}

function addPackets(log) {
  if (log.packets.length === 0) return;
  live.packets.push(...log.packets);
  if (live.packets.length > MAX_PACKETS) {
    live.packets.splice(0, live.packets.length - MAX_PACKETS);
  }
  live.packetsDirty = true;
}

function matches(p, terms) {
  const hay = `${p.proto} ${p.src} ${p.dst} ${p.line}`;
  return terms.every((t) => hay.includes(t));
}

function renderPackets() {
  if (!live.packetsDirty) return;
  live.packetsDirty = false;
  const terms = $('filter').value.trim().split(/\s+/).filter((t) => t !== '');
  const shown = live.packets.filter((p) => matches(p, terms));
  const box = $('packets');
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 4;
  box.innerHTML = shown.map((p) =>
    `<div class="pkt ${p.dir === 'out' ? 'out' : 'in'}" data-src="${escapeHtml(p.src)}" ` +
    `data-dst="${escapeHtml(p.dst)}" data-flags="${escapeHtml(p.flags ?? '')}">` +
    `${escapeHtml(packetText(p))}</div>`).join('');
  if (atEnd) box.scrollTop = box.scrollHeight;
  $('packets-count').textContent = terms.length === 0
    ? `last ${live.packets.length}`
    : `${shown.length} of the last ${live.packets.length} match`;
}

// ---- counters ---------------------------------------------------------

// The stats object flattened: nested groups ("demo") become prefixes.
function flatten(obj, prefix, out) {
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === 'object') flatten(v, `${prefix}${k}.`, out);
    else out.push([`${prefix}${k}`, v]);
  }
  return out;
}

function renderCounters(stats) {
  const all = flatten(stats, '', []);
  const html = (list) => list.map(([name, value]) => {
    const changed = !live.first && live.counters.get(name) !== value;
    const cls = `counter${value ? ' nonzero' : ''}${changed ? ' changed' : ''}`;
    return `<div class="${cls}"><span>${escapeHtml(name)}</span><b>${escapeHtml(value)}</b></div>`;
  }).join('');
  const isDrop = ([name]) => name.startsWith('drop_');
  $('drops').innerHTML = html(all.filter(isDrop));
  $('counters').innerHTML = html(all.filter((c) => !isDrop(c)));
  live.counters = new Map(all);
}

// ---- polling ----------------------------------------------------------

async function poll() {
  try {
    const r = await fetch(`/live.json?since=${live.since}`, { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const snap = await r.json();
    live.you = snap.you;
    live.since = snap.packets.next;
    showYou(snap.you);
    updateSockets(snap.sockets, Date.now());
    addPackets(snap.packets);
    renderPackets();
    renderCounters(snap.stats);
    live.first = false;
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}, every ${POLL_MS} ms`;
    $('status').classList.remove('error');
  } catch (e) {
    $('status').textContent = `cannot reach the demo (${e.message}); retrying`;
    $('status').classList.add('error');
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// ---- the RPC console --------------------------------------------------

let rpcId = 0;

// An example value for a parameter of this OpenRPC schema.
function example(schema) {
  switch (schema && schema.type) {
    case 'number': case 'integer': return 2;
    case 'string': return 'hello';
    case 'boolean': return true;
    case 'array': return [];
    case 'object': return {};
    default: return 'hello';
  }
}

async function call(request) {
  const r = await fetch('/rpc', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(request),
  });
  return r.status === 204 ? null : r.json();
}

// Asks the server what it offers, and shows that first exchange.
async function discover() {
  const request = { jsonrpc: '2.0', method: 'rpc.discover', id: ++rpcId };
  const reply = await call(request);
  show(request, reply);
  const methods = [...reply.result.methods, { name: 'rpc.discover', params: [] }];
  const select = $('method');
  select.innerHTML = methods.map((m, i) =>
    `<option value="${i}">${escapeHtml(m.name)}</option>`).join('');
  const pick = () => {
    const m = methods[Number(select.value)];
    const params = m.params ?? [];
    $('params').value = params.length === 0
      ? '' : JSON.stringify(params.map((p) => example(p.schema)));
    $('params').placeholder = params.length === 0
      ? 'no params'
      : `[${params.map((p) => p.name).join(', ')}]`;
  };
  select.addEventListener('change', pick);
  select.value = String(Math.max(0, methods.findIndex((m) => m.name === 'add')));
  pick();
  $('rpc').addEventListener('submit', (ev) => {
    ev.preventDefault();
    send(methods[Number(select.value)].name);
  });
}

async function send(method) {
  const request = { jsonrpc: '2.0', method, id: ++rpcId };
  const text = $('params').value.trim();
  if (text !== '') {
    try {
      request.params = JSON.parse(text);
    } catch (e) {
      $('rpc-request-title').textContent = 'request: not sent';
      $('rpc-request').textContent = `params are not JSON: ${e.message}`;
      return;
    }
  }
  show(request, undefined);
  try {
    show(request, await call(request));
  } catch (e) {
    $('rpc-response').textContent = `failed: ${e.message}`;
  }
}

// Shows a request and its reply (undefined: still waiting; null: none,
// the request was a notification).
function show(request, reply) {
  $('rpc-request-title').textContent = `request, id ${request.id}`;
  $('rpc-request').textContent = JSON.stringify(request, null, 2);
  $('rpc-response-title').textContent = reply === undefined ? 'response'
    : reply === null ? 'no response (a notification)' : `response, id ${reply.id}`;
  $('rpc-response').textContent = reply === undefined ? '…'
    : reply === null ? '' : JSON.stringify(reply, null, 2);
}

// ---- wiring -----------------------------------------------------------

// One listener for the whole table (rows come and go every refresh).
$('socket-rows').addEventListener('click', (ev) => {
  const tr = ev.target.closest('tr');
  if (!tr) return;
  const [, local, remote] = tr.dataset.key.split(' ');
  $('filter').value = remote === '*' ? local : `${local} ${remote}`;
  live.packetsDirty = true;
  renderPackets();
});
$('filter').addEventListener('input', () => {
  live.packetsDirty = true;
  renderPackets();
});

poll();
discover().catch((e) => {
  $('rpc-response').textContent = `rpc.discover failed: ${e.message}`;
});
