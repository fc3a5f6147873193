// The p2psim web view: the network drawn live from the server's /events stream.
// Plain JavaScript, no build step, no libraries: the page is served by p2psim-server itself.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const state = {
  nodes: new Map(), // id -> {id, name, up}
  conns: new Map(), // label -> {one, other, up, msgs}
  msgs: 0,
  selOne: null,
  selOther: null,
};
let source = null;

function label(a, b) { return a < b ? a + "-" + b : b + "-" + a; }
function short(id) { return id.slice(0, 8); }

function logLine(text) {
  const log = document.getElementById("log");
  const li = document.createElement("li");
  li.textContent = new Date().toLocaleTimeString() + " " + text;
  log.insertBefore(li, log.firstChild);
  while (log.childNodes.length > 200) log.removeChild(log.lastChild);
}

function showError(text) { document.getElementById("error").textContent = text || ""; }

// One network event from the stream (geth's JSON: type, time, control, node/conn/msg).
function apply(ev) {
  if (ev.type === "node" && ev.node && ev.node.config) {
    const c = ev.node.config;
    const n = state.nodes.get(c.id) || { id: c.id, name: c.name || short(c.id), up: false };
    n.name = c.name || n.name;
    if (!ev.control || !ev.node.up) n.up = !!ev.node.up;
    state.nodes.set(c.id, n);
    if (!ev.control) logLine((n.up ? "up   " : "down ") + n.name);
  } else if (ev.type === "conn" && ev.conn) {
    if (ev.control) return; // a request to connect or disconnect: wait for what happens
    const l = label(ev.conn.one, ev.conn.other);
    const c = state.conns.get(l) || { one: ev.conn.one, other: ev.conn.other, up: false, msgs: 0 };
    c.up = !!ev.conn.up;
    state.conns.set(l, c);
    logLine((c.up ? "conn " : "drop ") + nameOf(c.one) + " – " + nameOf(c.other));
  } else if (ev.type === "msg" && ev.msg) {
    if (ev.msg.received) return; // count each message once, when sent
    const l = label(ev.msg.one, ev.msg.other);
    const c = state.conns.get(l);
    if (c) { c.msgs += 1; c.lastMsg = Date.now(); }
    state.msgs += 1;
  }
  scheduleDraw();
}

function nameOf(id) { const n = state.nodes.get(id); return n ? n.name : short(id); }

let drawPending = false;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => { drawPending = false; draw(); });
}

function positions() {
  const ids = Array.from(state.nodes.keys());
  const pos = new Map();
  const r = ids.length > 1 ? 400 : 0;
  ids.forEach((id, i) => {
    const a = (2 * Math.PI * i) / ids.length - Math.PI / 2;
    pos.set(id, [r * Math.cos(a), r * Math.sin(a)]);
  });
  return pos;
}

function draw() {
  const pos = positions();
  const edges = document.getElementById("edges");
  const nodes = document.getElementById("nodes");
  const many = state.nodes.size > 40;
  edges.textContent = "";
  nodes.textContent = "";
  let upConns = 0;
  const now = Date.now();
  for (const [l, c] of state.conns) {
    if (!c.up || !pos.has(c.one) || !pos.has(c.other)) continue;
    upConns += 1;
    const [x1, y1] = pos.get(c.one);
    const [x2, y2] = pos.get(c.other);
    const g = document.createElementNS(SVGNS, "g");
    g.setAttribute("class", "conn" + (c.lastMsg && now - c.lastMsg < 1500 ? " active" : ""));
    g.setAttribute("data-conn", l);
    const line = document.createElementNS(SVGNS, "line");
    line.setAttribute("x1", x1); line.setAttribute("y1", y1);
    line.setAttribute("x2", x2); line.setAttribute("y2", y2);
    g.appendChild(line);
    if (c.msgs && !many) {
      const t = document.createElementNS(SVGNS, "text");
      t.setAttribute("x", (x1 + x2) / 2); t.setAttribute("y", (y1 + y2) / 2 - 6);
      t.textContent = c.msgs;
      g.appendChild(t);
    }
    edges.appendChild(g);
  }
  let up = 0;
  const radius = many ? 12 : 30;
  for (const [id, n] of state.nodes) {
    if (n.up) up += 1;
    const [x, y] = pos.get(id);
    const g = document.createElementNS(SVGNS, "g");
    let cls = "node" + (n.up ? " up" : "");
    if (id === state.selOne) cls += " sel-one";
    if (id === state.selOther) cls += " sel-other";
    g.setAttribute("class", cls);
    g.setAttribute("data-id", id);
    g.setAttribute("data-name", n.name);
    const circle = document.createElementNS(SVGNS, "circle");
    circle.setAttribute("cx", x); circle.setAttribute("cy", y); circle.setAttribute("r", radius);
    g.appendChild(circle);
    const title = document.createElementNS(SVGNS, "title");
    title.textContent = n.name + "\n" + id;
    g.appendChild(title);
    if (!many) {
      const t = document.createElementNS(SVGNS, "text");
      t.setAttribute("x", x); t.setAttribute("y", y + radius + 24);
      t.textContent = n.name.length > 14 ? n.name.slice(0, 12) + "…" : n.name;
      g.appendChild(t);
    }
    g.addEventListener("click", () => select(id));
    nodes.appendChild(g);
  }
  document.getElementById("node-count").textContent = state.nodes.size;
  document.getElementById("up-count").textContent = up;
  document.getElementById("conn-count").textContent = upConns;
  document.getElementById("msg-count").textContent = state.msgs;
  document.getElementById("sel-one").textContent = state.selOne ? nameOf(state.selOne) : "–";
  document.getElementById("sel-other").textContent = state.selOther ? nameOf(state.selOther) : "–";
}

function select(id) {
  if (state.selOne === id) { state.selOne = state.selOther; state.selOther = null; }
  else if (state.selOther === id) { state.selOther = null; }
  else if (!state.selOne) { state.selOne = id; }
  else { state.selOther = id; }
  draw();
}

// The stream: every event is replayed from the current state on (re)connect.
function connect() {
  if (source) source.close();
  state.nodes.clear(); state.conns.clear(); state.msgs = 0;
  scheduleDraw();
  source = new EventSource("/events?current=true&filter=*"); // every message, for the edge counts
  const status = document.getElementById("status");
  source.addEventListener("open", () => { status.textContent = "live"; status.className = "status ok"; });
  source.addEventListener("network", (e) => {
    try { apply(JSON.parse(e.data)); } catch (err) { showError("bad event: " + err); }
  });
  source.addEventListener("error", (e) => {
    if (e.data) { showError(e.data); connect(); return; } // the server ended the stream (too slow)
    status.textContent = "reconnecting…"; status.className = "status down";
  });
}

async function api(method, path, body, form) {
  showError("");
  const opts = { method: method, headers: {} };
  if (form) {
    opts.headers["Content-Type"] = "application/x-www-form-urlencoded";
    opts.body = new URLSearchParams(form).toString();
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const text = await res.text();
  if (!res.ok) {
    let msg = text;
    try { msg = JSON.parse(text).error || text; } catch (e) { /* not JSON */ }
    showError(method + " " + path + ": " + res.status + " " + msg);
    throw new Error(msg);
  }
  return text ? JSON.parse(text) : null;
}

function needOne() { if (!state.selOne) { showError("select a node first"); return false; } return true; }
function needPair() { if (!state.selOne || !state.selOther) { showError("select two nodes"); return false; } return true; }
function quiet(p) { p.catch(() => {}); }

function bind(id, fn) { document.getElementById(id).addEventListener("click", fn); }

async function loadMockers() {
  const list = await api("GET", "/mocker");
  const sel = document.getElementById("mocker-type");
  sel.textContent = "";
  for (const m of list || []) {
    const o = document.createElement("option");
    o.value = m; o.textContent = m;
    sel.appendChild(o);
  }
}

window.addEventListener("load", () => {
  bind("btn-start-all", () => quiet(api("POST", "/start")));
  bind("btn-stop-all", () => quiet(api("POST", "/stop")));
  bind("btn-add-node", () => quiet(api("POST", "/nodes", {})));
  bind("btn-reset", () => quiet(api("POST", "/reset").then(() => { state.selOne = state.selOther = null; connect(); })));
  bind("btn-node-start", () => { if (needOne()) quiet(api("POST", "/nodes/" + state.selOne + "/start")); });
  bind("btn-node-stop", () => { if (needOne()) quiet(api("POST", "/nodes/" + state.selOne + "/stop")); });
  bind("btn-connect", () => { if (needPair()) quiet(api("POST", "/nodes/" + state.selOne + "/conn/" + state.selOther)); });
  bind("btn-disconnect", () => { if (needPair()) quiet(api("DELETE", "/nodes/" + state.selOne + "/conn/" + state.selOther)); });
  bind("btn-mocker-start", () => quiet(api("POST", "/mocker/start", undefined, {
    "mocker-type": document.getElementById("mocker-type").value,
    "node-count": document.getElementById("mocker-count").value,
  })));
  bind("btn-mocker-stop", () => quiet(api("POST", "/mocker/stop")));
  quiet(loadMockers());
  connect();
  setInterval(scheduleDraw, 1000); // fades the "active" colour of edges without messages
});
