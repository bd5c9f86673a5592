// The agent-orchestrator dashboard: one live terminal per session. Plain browser JavaScript, no
// build step. Talks to the console server: JSON over HTTP (/api/console/...) with the cookie set at
// the first page load, and one WebSocket per terminal (see pty-console's README for the protocol).
'use strict';

(function () {
  const grid = document.getElementById('grid');
  const template = document.getElementById('tile-template');
  const summary = document.getElementById('summary');
  const tiles = new Map(); // session id -> tile state
  let wsPort = null;
  let liveCount = null; // live sessions in the last list from the server

  async function api(method, path, body) {
    const init = { method, headers: {}, credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.error || ('HTTP ' + resp.status));
    return data;
  }

  function formatSince(ms) {
    const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  }

  function setMessage(tile, text, isError) {
    tile.message.textContent = text || '';
    tile.message.classList.toggle('error', !!isError);
  }

  function applySession(tile, session, since) {
    tile.session = session;
    if (since !== undefined) tile.since = since;
    const status = session.status;
    tile.badge.textContent = status;
    tile.badge.className = 'badge ' + status;
    tile.name.textContent = session.name;
    tile.agent.textContent = session.agent_type;
    tile.workdir.textContent = session.workdir;
    tile.workdir.title = session.workdir;
    tile.root.classList.toggle('blocked', status === 'blocked');
    const waiting = status === 'blocked';
    tile.prompt.hidden = !waiting;
    if (!waiting) tile.promptInfo = null;
    if (waiting) tile.promptText.textContent = session.prompt || 'A prompt waits for an answer.';
    showPromptInfo(tile);
    const live = !['stopped', 'error', 'stopping'].includes(status);
    tile.stopButton.disabled = !live;
    tile.root.dataset.status = status;
    updateSince(tile);
    if (tiles.get(tile.id) === tile) updateSummary();
  }

  // The approve button says what it would type; both buttons need the prompt the server reported.
  function showPromptInfo(tile) {
    const info = tile.promptInfo;
    const suggested = info && info.suggested_response;
    tile.approveButton.disabled = !suggested;
    tile.approveButton.title = suggested ? 'sends ' + suggested : 'no suggested answer: type it in the terminal';
    tile.denyButton.disabled = !info;
    if (info && info.prompt) tile.promptText.textContent = info.prompt;
  }

  // Approve and deny name the prompt this page shows; the server refuses (409) if another waits.
  function answer(tile, type) {
    const info = tile.promptInfo;
    if (!info) { setMessage(tile, 'no prompt is waiting', true); return; }
    send(tile, { type, prompt: info.prompt, ruleId: info.rule_id || undefined });
  }

  function updateSince(tile) {
    if (tile.since) tile.sinceEl.textContent = 'for ' + formatSince(tile.since);
  }

  function send(tile, message) {
    if (tile.ws && tile.ws.readyState === WebSocket.OPEN) {
      tile.ws.send(JSON.stringify(message));
    } else {
      setMessage(tile, 'not connected', true);
    }
  }

  function onStatus(tile, msg) {
    const ev = msg.event || {};
    if (ev.session) applySession(tile, ev.session, Date.now());
    if (msg.kind === 'blocking_prompt' && ev.info && !ev.auto_responded) {
      tile.promptInfo = ev.info;
      showPromptInfo(tile);
    }
    if (msg.kind === 'human_response' && ev.record) {
      tile.promptInfo = null;
      showPromptInfo(tile);
      setMessage(tile, (ev.decision === 'approve' ? 'approved' : 'declined') + ' by ' + ev.by + ': sent ' + ev.record.sent, false);
    }
    if (msg.kind === 'stopped') setMessage(tile, 'stopped: ' + (ev.reason || ''), false);
    if (msg.kind === 'error') setMessage(tile, ev.error || 'error', true);
  }

  function connect(tile) {
    const url = 'ws://' + location.hostname + ':' + wsPort + '/ws?session=' + encodeURIComponent(tile.id);
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    tile.ws = ws;
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') {
        tile.term.write(new Uint8Array(e.data));
        return;
      }
      const msg = JSON.parse(e.data);
      if (msg.type === 'snapshot') {
        // A fresh start: the next binary frame paints the whole screen at the session's size.
        tile.term.reset();
        tile.term.resize(msg.screen.cols, msg.screen.rows);
        tile.promptInfo = msg.promptInfo || null;
        applySession(tile, msg.session, msg.statusSince);
        tile.snapshots += 1;
      } else if (msg.type === 'status') {
        onStatus(tile, msg);
      } else if (msg.type === 'error') {
        setMessage(tile, msg.error, true);
      }
    };
    ws.onclose = () => {
      tile.ws = null;
      if (tiles.get(tile.id) === tile && tile.session && tile.session.status !== 'stopped') {
        setMessage(tile, 'disconnected; retrying', true);
        setTimeout(() => { if (tiles.get(tile.id) === tile && !tile.ws) connect(tile); }, 1000);
      }
    };
    ws.onopen = () => setMessage(tile, '', false);
  }

  function makeTile(session, since) {
    const root = template.content.firstElementChild.cloneNode(true);
    const q = (sel) => root.querySelector(sel);
    const term = new Terminal({
      cols: 120, rows: 40, fontSize: 12, convertEol: false, scrollback: 2000,
      fontFamily: 'DejaVu Sans Mono, Liberation Mono, monospace',
      theme: { background: '#000000' },
    });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    const tile = {
      id: session.id, root, term, fit, ws: null, session, since, snapshots: 0,
      badge: q('.badge'), name: q('.name'), agent: q('.agent'), workdir: q('.workdir'),
      sinceEl: q('.since'), prompt: q('.prompt'), promptText: q('.prompt-text'),
      message: q('.message'), stopButton: q('.stop'),
      approveButton: q('.approve'), denyButton: q('.deny'), promptInfo: null,
    };
    root.dataset.session = session.id;
    grid.appendChild(root);
    term.open(q('.term'));
    term.onData((data) => send(tile, { type: 'input', data }));
    term.textarea.addEventListener('focus', () => root.classList.add('focused'));
    term.textarea.addEventListener('blur', () => root.classList.remove('focused'));
    root.querySelectorAll('[data-keys]').forEach((b) => {
      b.addEventListener('click', () => {
        send(tile, { type: 'keys', keys: b.dataset.keys.split(',') });
        term.focus();
      });
    });
    q('.fit').addEventListener('click', () => {
      // Grow the terminal to the tile's width (keeping its rows), then tell the session.
      const box = root.getBoundingClientRect();
      q('.term').style.width = Math.max(box.width, 400) + 'px';
      const dims = fit.proposeDimensions();
      if (dims && dims.cols > 0 && dims.rows > 0) {
        send(tile, { type: 'resize', cols: dims.cols, rows: term.rows });
        term.resize(dims.cols, term.rows);
      }
    });
    tile.stopButton.addEventListener('click', () => {
      setMessage(tile, 'stopping…', false);
      send(tile, { type: 'stop' });
    });
    q('.approve').addEventListener('click', () => answer(tile, 'approve'));
    q('.deny').addEventListener('click', () => answer(tile, 'deny'));
    applySession(tile, session, since);
    tiles.set(session.id, tile);
    connect(tile);
    return tile;
  }

  async function refresh() {
    let list;
    try {
      list = await api('GET', '/api/console/sessions');
    } catch (e) {
      summary.textContent = 'cannot reach the server: ' + e.message;
      return;
    }
    const seen = new Set();
    for (const item of list) {
      seen.add(item.session.id);
      const tile = tiles.get(item.session.id);
      if (tile) applySession(tile, item.session, item.statusSince);
      else makeTile(item.session, item.statusSince);
    }
    for (const tile of tiles.values()) {
      if (!seen.has(tile.id) && tile.session.status !== 'stopped') {
        applySession(tile, Object.assign({}, tile.session, { status: 'stopped' }), Date.now());
      }
    }
    liveCount = list.length;
    updateSummary();
  }

  function updateSummary() {
    if (liveCount === null) return;
    const counts = {};
    for (const t of tiles.values()) counts[t.session.status] = (counts[t.session.status] || 0) + 1;
    summary.textContent = liveCount + ' live session' + (liveCount === 1 ? '' : 's') +
      (Object.keys(counts).length ? ' · ' + Object.entries(counts).map(([k, v]) => v + ' ' + k).join(', ') : '');
  }

  async function loadConfig() {
    const config = await api('GET', '/api/console/config');
    wsPort = config.wsPort;
    const wd = document.getElementById('spawn-workdir');
    if (config.defaultWorkdir && !wd.value) wd.value = config.defaultWorkdir;
    const select = document.getElementById('spawn-agent');
    select.textContent = '';
    for (const a of config.agents) {
      const opt = document.createElement('option');
      opt.value = a.agentType;
      opt.textContent = a.label + (a.available ? '' : ' (unavailable: ' + a.detail + ')');
      opt.disabled = !a.available;
      opt.title = a.detail;
      select.appendChild(opt);
    }
  }

  document.getElementById('spawn').addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = document.getElementById('spawn-error');
    err.textContent = '';
    try {
      await api('POST', '/api/console/sessions', {
        agent: document.getElementById('spawn-agent').value,
        workdir: document.getElementById('spawn-workdir').value,
        task: document.getElementById('spawn-task').value,
      });
      document.getElementById('spawn-task').value = '';
      await refresh();
    } catch (ex) {
      err.textContent = ex.message;
    }
  });

  setInterval(() => tiles.forEach(updateSince), 1000);

  // For automation and debugging: what each terminal shows now.
  window.aoConsole = {
    tiles,
    screenText(id) {
      const t = tiles.get(id);
      if (!t) return null;
      const b = t.term.buffer.active;
      const out = [];
      for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
      return out.join('\n');
    },
  };

  loadConfig()
    .then(refresh)
    .then(() => setInterval(refresh, 1000))
    .catch((e) => { summary.textContent = 'failed to load: ' + e.message; });
})();
