// The status page on a controller's admin port: GET / (and /ui) is static
// HTML, /ui/app.js a script that polls GET /v1/cluster (every service of the
// cluster file, this controller's first) and GET /v1/history?service=NAME for
// each, on the same origin (relative URLs, so plain HTTP and TLS alike), and
// redraws in place: a section per service (instances, lock and breadcrumb,
// journal nodes, failover timeline), the quorum once; /ui/app.css its style.
// No build step, no framework. Everything from a controller or the quorum
// (service names, instance ids, reasons, hosts) reaches the DOM as textContent
// or a data attribute, never as markup (the sections are clones of a static
// <template>); the content security policy allows this origin's script and
// style only (no inline script, no eval, no frames). Readable exactly as
// GET /v1/status is: the admin API asks no token of GETs.

/** Headers of every page asset. */
export const STATUS_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Quorate status</title>
<link rel="stylesheet" href="ui/app.css">
<script src="ui/app.js" defer></script>
</head>
<body>
<header>
  <h1>Quorate <span class="muted">cluster</span> <span id="cluster">…</span></h1>
  <p class="meta">served by <span id="served-by">-</span> of <span id="service">-</span> · <span id="service-count">-</span> · updated <span id="updated">never</span> <span id="conn" class="conn wait">connecting</span></p>
</header>
<ul id="alerts"></ul>
<main>
<div id="services"></div>
<section id="quorum-section">
  <h2>Quorum</h2>
  <p id="quorum-line" class="line"></p>
  <table id="quorum">
    <thead><tr><th>Server</th><th>Mode</th><th>Epoch</th><th>Zxid</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
</main>
<template id="service-template">
<section class="service">
  <h2><span class="muted">service</span> <span class="name"></span> <span class="own muted"></span></h2>
  <p class="config-error alert bad" hidden></p>
  <table class="instances">
    <thead><tr><th>Instance</th><th>Role</th><th>Health</th><th>Lag</th><th>Epoch</th><th>Fencing token</th><th>Priority</th><th>Controller</th><th>Session</th><th>Last transition</th></tr></thead>
    <tbody></tbody>
  </table>
  <p class="line lock"></p>
  <div class="columns">
    <div>
      <h3>Journal</h3>
      <p class="line journal-line"></p>
      <table class="journal">
        <thead><tr><th>Node</th><th>Address</th><th>Promised epoch</th><th>Writer epoch</th><th>Committed txid</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <div>
      <h3>Failover history <span class="history-state muted"></span></h3>
      <ol class="timeline"></ol>
    </div>
  </div>
</section>
</template>
</body>
</html>
`;

// Plain JavaScript for the browser (no backticks or template placeholders in it: it sits in a TypeScript template).
const SCRIPT = String.raw`'use strict';
(function () {
  var POLL_MS = 2000;
  var FETCH_MS = 6000;
  var HISTORY_LIMIT = 50;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function cell(row, text, cls) { var c = el('td', cls, text === undefined || text === null || text === '' ? '-' : text); row.appendChild(c); return c; }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function time(iso) {
    if (!iso) return '-';
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  }
  function message(e) { return e && e.message ? e.message : String(e); }

  async function getJson(path) {
    var ac = new AbortController();
    var timer = setTimeout(function () { ac.abort(); }, FETCH_MS);
    try {
      var r = await fetch(path, { cache: 'no-store', credentials: 'same-origin', signal: ac.signal, headers: { accept: 'application/json' } });
      var j = await r.json().catch(function () { return {}; });
      if (!r.ok) throw new Error(j && typeof j.error === 'string' ? j.error : 'HTTP ' + r.status);
      return j;
    } finally { clearTimeout(timer); }
  }

  // One section per service, by name (a Map, never a selector built from a name).
  var sections = new Map();
  function sectionOf(name) {
    var s = sections.get(name);
    if (s) return s;
    var root = $('service-template').content.firstElementChild.cloneNode(true);
    root.dataset.service = name;
    root.querySelector('.name').textContent = name;
    s = {
      name: name, root: root, historyKey: null,
      error: root.querySelector('.config-error'),
      instances: root.querySelector('table.instances').tBodies[0],
      lock: root.querySelector('.lock'),
      journalLine: root.querySelector('.journal-line'),
      journal: root.querySelector('table.journal').tBodies[0],
      historyState: root.querySelector('.history-state'),
      timeline: root.querySelector('.timeline'),
    };
    sections.set(name, s);
    return s;
  }

  function roleOf(x) {
    if (!x.reachable) return { text: 'unknown', key: 'unknown' };
    if (x.active) return { text: x.failsafe ? 'ACTIVE (failsafe)' : 'ACTIVE', key: 'active' };
    return { text: String(x.phase), key: String(x.phase) };
  }

  function renderInstances(s, v) {
    clear(s.instances);
    (v.instances || []).forEach(function (x) {
      var tr = el('tr');
      var role = roleOf(x);
      tr.dataset.instance = String(x.id);
      tr.dataset.role = role.key;
      if (role.key === 'active') tr.className = 'active';
      cell(tr, x.id, 'id');
      cell(tr, role.text, 'role role-' + role.key);
      var h = cell(tr, x.reachable ? x.health : '-', 'health health-' + (x.reachable ? x.health : 'unknown'));
      if (x.healthReason) h.title = String(x.healthReason);
      cell(tr, x.lag === null || x.lag === undefined ? '' : String(x.lag) + (x.maxLagOnFailover !== null && x.maxLagOnFailover !== undefined ? ' (max ' + x.maxLagOnFailover + ')' : ''));
      cell(tr, x.epoch, 'num epoch');
      cell(tr, x.fencingToken, 'num token');
      cell(tr, x.priority === undefined ? '' : String(x.priority) + (x.noFailover ? ' noFailover' : ''));
      cell(tr, x.reachable ? 'reachable' : 'UNREACHABLE: ' + x.error, x.reachable ? '' : 'bad');
      cell(tr, x.reachable ? String(x.session) + (x.sessionId ? ' ' + x.sessionId : '') : '');
      var lt = x.lastTransition;
      cell(tr, lt ? time(lt.at) + ' ' + lt.to + ': ' + lt.reason : '', 'reason');
      s.instances.appendChild(tr);
    });
    var lock = v.lock;
    var crumb = v.breadcrumb;
    s.lock.textContent = v.error ? '' : 'lock: ' + (lock ? lock.instance + ' (token ' + lock.czxid + ')' : 'free') +
      '   breadcrumb: ' + (crumb ? crumb.instance + ' (epoch ' + (crumb.epoch === undefined || crumb.epoch === null ? '-' : crumb.epoch) + ')' : 'none');
  }

  function alertsOf(v) {
    var out = [];
    if (v.error) { out.push(['bad', 'cannot show this service: ' + v.error]); return out; }
    var actives = (v.instances || []).filter(function (x) { return x.active; }).length;
    if (actives > 1) out.push(['bad', actives + ' instances say active']);
    if (actives === 0) out.push(['warn', 'no instance is active']);
    (v.instances || []).forEach(function (x) {
      if (x.paused) {
        var m = x.maintenance;
        out.push(['warn', x.id + ' is paused' + (m ? ' (maintenance by ' + m.by + ' since ' + time(m.at) + (m.until ? ', until ' + time(m.until) : ', until resumed') + (m.reason ? ': ' + m.reason : '') + ')' : '') + ': no automatic role changes']);
      }
      if (x.failsafe) out.push(['warn', x.id + ': FAILSAFE since ' + time(x.failsafe.since) + ': the quorum does not answer; kept active because the journal shows no newer writer']);
      if (x.lastFailure && !x.active) out.push(['info', x.id + ': last failure: ' + x.lastFailure]);
      if (x.notRacing && !x.active) out.push(['info', x.id + ': not racing for the lock: ' + x.notRacing]);
      if (x.scheduledFailover) out.push(['info', 'switchover scheduled at ' + time(x.scheduledFailover.at) + (x.scheduledFailover.to ? ' to ' + x.scheduledFailover.to : '') + ' by ' + x.scheduledFailover.by]);
    });
    return out;
  }

  function renderAlerts(list) {
    var ul = $('alerts');
    clear(ul);
    list.forEach(function (a) {
      var li = el('li', 'alert ' + a[0]);
      if (a[2] !== undefined) { li.dataset.service = a[2]; li.appendChild(el('span', 'service', a[2])); }
      li.appendChild(document.createTextNode(a[1]));
      ul.appendChild(li);
    });
  }

  function renderQuorum(v) {
    $('quorum-line').textContent = (v.quorumLeader ? 'leader ' + v.quorumLeader : 'no leader seen') + ' · ' + v.quorum;
    var body = $('quorum').tBodies[0];
    clear(body);
    (v.quorumServers || []).forEach(function (s) {
      var tr = el('tr');
      tr.dataset.server = String(s.server);
      tr.dataset.mode = String(s.mode);
      if (s.mode === 'leader' || s.mode === 'standalone') tr.className = 'leader';
      cell(tr, s.server, 'id');
      cell(tr, s.mode, 'mode mode-' + s.mode);
      cell(tr, s.epoch, 'num');
      cell(tr, s.zxid, 'num');
      body.appendChild(tr);
    });
  }

  function renderJournal(s, v) {
    clear(s.journal);
    if (v.error) { s.journalLine.textContent = '-'; return; }
    if (!v.journalNodes) { s.journalLine.textContent = 'this service has no journal'; return; }
    s.journalLine.textContent = '';
    v.journalNodes.forEach(function (n) {
      var tr = el('tr');
      tr.dataset.node = String(n.id);
      cell(tr, n.id, 'id');
      cell(tr, n.address);
      if (!n.reachable) {
        var c = cell(tr, 'UNREACHABLE: ' + n.error, 'bad');
        c.colSpan = 3;
      } else {
        cell(tr, n.promisedEpoch, 'num');
        cell(tr, n.writerEpoch, 'num');
        cell(tr, n.committedTxid, 'num');
      }
      s.journal.appendChild(tr);
    });
  }

  function renderService(s, v, own) {
    s.root.dataset.own = own ? 'true' : 'false';
    s.root.querySelector('.own').textContent = own ? '(this controller\'s)' : '';
    s.error.hidden = !v.error;
    s.error.textContent = v.error ? 'cannot show this service: ' + v.error : '';
    renderInstances(s, v);
    renderJournal(s, v);
  }

  function describe(e) {
    switch (e.type) {
      case 'promoted': return 'became active after ' + e.durationMs + ' ms' + (e.previous ? ' (previous ' + e.previous + ')' : '');
      case 'demoted': return 'stopped being active: ' + e.reason + (e.standbyConfirmed === false ? ' (standby NOT confirmed)' : '');
      case 'promotion-failed': return 'promotion failed: ' + e.reason;
      case 'fenced': return 'fenced ' + e.target + ': ' + e.detail;
      case 'fence-failed': return 'could not fence ' + e.target + ': ' + e.reason;
      case 'ceded': return 'ceded for ' + e.forMs + ' ms: ' + e.reason;
      case 'failover-target': return 'target of a manual failover' + (e.forced ? ' (forced)' : '');
      case 'paused': return 'paused (maintenance)';
      case 'resumed': return 'resumed';
      case 'resumed-after-restart': return 'stayed active across a controller restart: ' + e.reason;
      case 'scheduled-failover': return 'switchover ' + e.action + ' (due ' + time(e.due) + (e.to ? ', to ' + e.to : '') + ', by ' + e.by + ')';
      default: return e.reason || e.detail || '';
    }
  }

  function renderHistory(s, h) {
    var entries = (h.entries || []).slice().reverse();
    var key = entries.map(function (e) { return e.seq; }).join(',');
    if (key === s.historyKey) return;
    s.historyKey = key;
    var ol = s.timeline;
    clear(ol);
    if (entries.length === 0) { ol.appendChild(el('li', 'empty', 'nothing recorded yet')); return; }
    entries.forEach(function (e) {
      var li = el('li', 'event type-' + String(e.type).replace(/[^a-z-]/g, ''));
      li.dataset.type = String(e.type);
      li.dataset.instance = String(e.instance);
      li.dataset.seq = String(e.seq);
      var when = el('time', 'when', time(e.at));
      when.dateTime = String(e.at);
      li.appendChild(when);
      li.appendChild(el('span', 'instance', e.instance));
      li.appendChild(el('span', 'type', e.type));
      var facts = [];
      if (e.epoch !== undefined && e.epoch !== null) facts.push('epoch ' + e.epoch);
      if (e.token) facts.push('token ' + e.token);
      if (facts.length > 0) li.appendChild(el('span', 'facts', facts.join(' · ')));
      li.appendChild(el('span', 'what', describe(e)));
      ol.appendChild(li);
    });
  }

  function setConn(ok, text) {
    var c = $('conn');
    c.className = 'conn ' + (ok ? 'ok' : 'bad');
    c.textContent = text;
  }

  // The services of the last answer, this controller's first.
  var shown = [];

  async function pollCluster() {
    try {
      var v = await getJson('v1/cluster');
      // A controller that knows only its own service answers without services: show that one.
      var list = Array.isArray(v.services) && v.services.length > 0 ? v.services : [v];
      $('service').textContent = String(v.service);
      $('cluster').textContent = String(v.cluster);
      $('served-by').textContent = String(v.servedBy);
      $('service-count').textContent = list.length === 1 ? '1 service' : list.length + ' services';
      document.title = 'Quorate: ' + v.cluster;
      var container = $('services');
      var names = [];
      var alerts = [];
      list.forEach(function (sv, k) {
        var name = String(sv.service);
        if (names.indexOf(name) >= 0) return;
        names.push(name);
        var s = sectionOf(name);
        renderService(s, sv, k === 0);
        // In the answer's order (appending moves a section already there).
        container.appendChild(s.root);
        alertsOf(sv).forEach(function (a) { alerts.push([a[0], a[1], name]); });
      });
      sections.forEach(function (s, name) {
        if (names.indexOf(name) < 0) { s.root.remove(); sections.delete(name); }
      });
      if (typeof v.quorum === 'string' && v.quorum.indexOf('UNREACHABLE') === 0) alerts.unshift(['bad', 'quorum ' + v.quorum]);
      renderAlerts(alerts);
      renderQuorum(v);
      shown = names;
      $('updated').textContent = time(v.gatheredAt);
      setConn(true, 'live');
    } catch (e) {
      setConn(false, 'not updating: ' + message(e));
    }
  }

  async function pollHistory(name) {
    var s = sections.get(name);
    if (!s) return;
    try {
      renderHistory(s, await getJson('v1/history?service=' + encodeURIComponent(name) + '&limit=' + HISTORY_LIMIT));
      s.historyState.textContent = '(newest first, the last ' + HISTORY_LIMIT + ')';
    } catch (e) {
      s.historyState.textContent = '(not updating: ' + message(e) + ')';
    }
  }

  async function loop() {
    await pollCluster();
    await Promise.all(shown.map(pollHistory));
    setTimeout(loop, POLL_MS);
  }
  loop();
})();
`;

const CSS = `:root { --fg: #1d2330; --muted: #6b7385; --line: #dde1e8; --bg: #f6f7f9; --ok: #17803d; --warn: #a15c00; --bad: #b42318; --accent: #2450b8; }
* { box-sizing: border-box; }
body { margin: 0; padding: 1.2rem 1.6rem; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
h3 { font-size: .95rem; margin: .9rem 0 .4rem; }
.muted { color: var(--muted); font-weight: normal; }
.meta { margin: .2rem 0 0; color: var(--muted); }
.conn { display: inline-block; padding: 0 .5em; border-radius: 1em; font-size: .85em; }
.conn.ok { background: #dff3e4; color: var(--ok); }
.conn.bad { background: #fde4e1; color: var(--bad); }
.conn.wait { background: var(--line); }
section.service, #quorum-section { margin: 1.2rem 0 0; padding: .9rem 1rem 1rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .85em; background: #fafbfc; }
td.num { font-variant-numeric: tabular-nums; }
td.id { font-weight: 600; }
tr.active td { background: #eef8f1; }
td.role-active { color: var(--ok); font-weight: 700; }
td.role-unknown, td.bad { color: var(--bad); }
td.health-healthy { color: var(--ok); }
td.health-unhealthy, td.health-not-responding { color: var(--bad); font-weight: 600; }
td.reason { color: var(--muted); }
tr.leader td.mode { font-weight: 700; color: var(--accent); }
td.mode-unreachable { color: var(--bad); }
.line { margin: .4rem 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9em; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 1.6rem; }
@media (max-width: 900px) { .columns { grid-template-columns: 1fr; } }
#alerts { list-style: none; margin: .8rem 0 0; padding: 0; }
.alert { padding: .35rem .7rem; margin: .25rem 0; border-radius: 4px; border-left: 4px solid var(--muted); background: #fff; }
.alert.bad { border-color: var(--bad); color: var(--bad); }
.alert.warn { border-color: var(--warn); color: var(--warn); }
.alert .service { font-weight: 700; margin-right: .5rem; }
.alert .service::after { content: ":"; }
.timeline { list-style: none; margin: 0; padding: 0 0 0 1.2rem; border-left: 2px solid var(--line); max-height: 24rem; overflow-y: auto; }
.timeline li { position: relative; margin: 0 0 .55rem; padding: .1rem 0 .1rem .4rem; }
.timeline li.event::before { content: ""; position: absolute; left: -1.72rem; top: .45rem; width: .7rem; height: .7rem; border-radius: 50%; background: var(--muted); border: 2px solid #fff; }
.timeline li.type-promoted::before { background: var(--ok); }
.timeline li.type-demoted::before, .timeline li.type-promotion-failed::before, .timeline li.type-fence-failed::before { background: var(--bad); }
.timeline li.type-fenced::before { background: var(--warn); }
.timeline li.type-paused::before, .timeline li.type-resumed::before { background: var(--accent); }
.timeline .when { color: var(--muted); margin-right: .6rem; font-variant-numeric: tabular-nums; }
.timeline .instance { font-weight: 700; margin-right: .5rem; }
.timeline .type { display: inline-block; padding: 0 .45em; margin-right: .5rem; border-radius: 3px; background: var(--line); font-size: .85em; }
.timeline .type-promoted .type { background: #dff3e4; color: var(--ok); }
.timeline .type-demoted .type, .timeline .type-promotion-failed .type, .timeline .type-fence-failed .type { background: #fde4e1; color: var(--bad); }
.timeline .facts { color: var(--muted); margin-right: .5rem; font-size: .9em; }
.timeline .empty { color: var(--muted); }
`;

const ASSETS: Readonly<Record<string, { type: string; body: string }>> = {
  '/': { type: 'text/html; charset=utf-8', body: HTML },
  '/ui': { type: 'text/html; charset=utf-8', body: HTML },
  '/ui/app.js': { type: 'text/javascript; charset=utf-8', body: SCRIPT },
  '/ui/app.css': { type: 'text/css; charset=utf-8', body: CSS },
};

/** The page's asset at this path, or null. */
export function statusPageAsset(pathname: string): { type: string; body: string } | null {
  return Object.hasOwn(ASSETS, pathname) ? ASSETS[pathname] : null;
}
