// hilfarm web UI: a small single-page app without a framework. Every page
// is a function that renders into #main and returns a cleanup function
// (closing its websockets and timers) that the router calls on leaving.
// All data comes from the API in docs/api.md and docs/ui.md; live data
// over websockets that reconnect and resume on their own.
import "./style.css";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { SearchAddon } from "@xterm/addon-search";
import uPlot from "uplot";
import { provenanceBox, trustBox } from "./provenance.js";
import { campaignSection, shardsSection, compareSection, campaignTrend } from "./campaign.js";

const CSRF = "X-Hilfarm-CSRF";
const ROLES = ["viewer", "submitter", "operator", "admin"];
let me = null; // {name, role, token} once logged in

// ------------------------------------------------------------ DOM helpers

// h builds an element: h("a", {href: "/"}, "text", child, ...). Text is
// always inserted as text, never as HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// fill replaces an element's children with nodes (arrays flattened, empty values skipped).
function fill(el, ...nodes) {
  el.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

// boardState is the state a board is shown in: a held board is "held",
// not "leased" like one running a job.
function boardState(b) {
  return b.holder ? "held" : b.state;
}

// boardReason: the board's reason, without what the page shows already
// for a held board (holder and end time: "held by X until T: why" -> "why").
function boardReason(b) {
  const r = b.reason || "";
  return b.holder ? r.replace(/^held by .* until \S+: /, "") : r;
}

function badge(state) {
  return h("span", { class: "badge s-" + String(state || "unknown").replace(/[^a-z-]/g, "") }, state || "?");
}

function link(href, text) {
  return h("a", { href }, text);
}

function short(sha) {
  return sha ? sha.slice(0, 12) : "";
}

// The sha256 of an empty file: the firmware of a job without one (health checks).
const EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

function ago(t) {
  if (!t) return "";
  const d = (Date.now() - new Date(t).getTime()) / 1000;
  if (d < 0) return "in " + dur(-d);
  if (d < 5) return "just now";
  return dur(d) + " ago";
}

// absTimes: show absolute times instead of relative ones (the header's
// toggle; remembered in localStorage).
let absTimes = false;
try { absTimes = localStorage.getItem("hilfarm-abs-times") === "1"; } catch { /* storage off */ }

function pad(n) { return String(n).padStart(2, "0"); }

// absTime formats a time as local "YYYY-MM-DD HH:MM:SS".
function absTime(t) {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// fmtDur formats milliseconds: 850 ms, 12.3 s, 4m 05s, 2h 03m, 3d 4h.
function fmtDur(ms) {
  if (ms == null || isNaN(ms)) return "";
  if (ms < 0) ms = 0;
  if (ms < 1000) return Math.round(ms) + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(Math.floor(s % 60))}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

// took is a duration from start to end, or to now while there is no end
// (kept live by the ticker).
function took(start, end) {
  if (!start) return "";
  const el = h("span", { class: "dur", "data-start": start, "data-end": end || "", title: end ? `${absTime(start)} → ${absTime(end)}` : `since ${absTime(start)}` });
  tickDur(el);
  return el;
}

function tickDur(el) {
  const end = el.dataset.end ? new Date(el.dataset.end).getTime() : Date.now();
  el.textContent = fmtDur(end - new Date(el.dataset.start).getTime());
}

// countdown shows the time left until t, kept live.
function countdown(t) {
  const el = h("span", { class: "countdown", "data-until": t, title: absTime(t) });
  tickCountdown(el);
  return el;
}

function tickCountdown(el) {
  const left = new Date(el.dataset.until).getTime() - Date.now();
  el.textContent = left > 0 ? fmtDur(Math.ceil(left / 1000) * 1000) + " left" : "ending";
}

// One ticker keeps every relative time, running duration and countdown
// on the page current.
function tick() {
  for (const el of document.querySelectorAll("time[data-rel]")) el.textContent = absTimes ? absTime(el.dateTime) : ago(el.dateTime);
  for (const el of document.querySelectorAll("span.dur[data-end='']")) tickDur(el);
  for (const el of document.querySelectorAll("span.countdown")) tickCountdown(el);
}
setInterval(tick, 1000);

function dur(s) {
  if (s < 60) return Math.round(s) + "s";
  if (s < 3600) return Math.round(s / 60) + "m";
  if (s < 86400) return (s / 3600).toFixed(1) + "h";
  return (s / 86400).toFixed(1) + "d";
}

// eta shows an estimate: a time in the past means any moment now.
function eta(t) {
  if (!t) return "";
  if (new Date(t).getTime() <= Date.now()) return h("span", { title: new Date(t).toLocaleString() }, "any moment");
  return when(t);
}

function when(t) {
  if (!t) return "";
  const d = new Date(t);
  return h("time", { datetime: d.toISOString(), title: absTime(t), "data-rel": "1" }, absTimes ? absTime(t) : ago(t));
}

function can(role) {
  return me && ROLES.indexOf(me.role) >= ROLES.indexOf(role);
}

function tagText(tags) {
  return Object.entries(tags || {}).map(([k, v]) => k + "=" + v).join(" ");
}

function notice(text, kind = "error") {
  const box = document.getElementById("notice") || h("div", { id: "notice", role: "status" });
  box.className = "notice " + kind;
  box.textContent = text;
  document.getElementById("main").prepend(box);
  clearTimeout(notice.t);
  notice.t = setTimeout(() => box.remove(), 8000);
}

// ask shows a small form in a <dialog> and resolves with its values, or
// null when cancelled. fields: [{name, label, value, type}].
function ask(title, fields) {
  const dlg = document.getElementById("dialog");
  const form = document.getElementById("dialog-form");
  fill(form,
    h("h3", {}, title),
    ...fields.map((f) => h("label", {}, f.label, h("input", { name: f.name, value: f.value || "", type: f.type || "text", required: f.required }))),
    h("div", { class: "buttons" },
      h("button", { value: "cancel", formnovalidate: true }, "Cancel"),
      h("button", { value: "ok", class: "primary", id: "dialog-ok" }, "OK")),
  );
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      if (dlg.returnValue !== "ok") return resolve(null);
      const out = {};
      for (const f of fields) out[f.name] = form.elements[f.name].value;
      resolve(out);
    }, { once: true });
    dlg.returnValue = "";
    dlg.showModal();
  });
}

// ------------------------------------------------------------ API

class APIError extends Error {
  constructor(status, msg) {
    super(msg);
    this.status = status;
  }
}

// apiList GETs a page of a listing: its items and the next page's cursor.
async function apiList(path) {
  const res = await fetch(path, { credentials: "same-origin" });
  const text = await res.text();
  let data = null;
  try { data = JSON.parse(text); } catch { data = { error: text }; }
  if (!res.ok) {
    if (res.status === 401) go("/login?next=" + encodeURIComponent(location.pathname + location.search));
    throw new APIError(res.status, (data && data.error) || res.statusText);
  }
  return { data, next: res.headers.get("X-Next-Cursor") || "" };
}

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") opts.headers[CSRF] = "1";
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!res.ok) {
    if (res.status === 401 && location.pathname !== "/login") {
      go("/login?next=" + encodeURIComponent(location.pathname + location.search));
    }
    throw new APIError(res.status, (data && data.error) || res.statusText);
  }
  return data;
}

// action runs an API call from a button and reports errors on the page.
async function action(fn) {
  try {
    return await fn();
  } catch (e) {
    notice(e.message);
    return null;
  }
}

function wsURL(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

// Live is a websocket that reconnects with a backoff. path() is asked for
// the URL on every (re)connect, so a stream can resume where it stopped.
// onclose(code) may return false to stop reconnecting.
class Live {
  constructor(path, { onopen, onmessage, onclose, binary } = {}) {
    Object.assign(this, { path, onopen, onmessage, onclose, binary, stopped: false, delay: 250 });
    this.connect();
  }
  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(wsURL(this.path()));
    if (this.binary) ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => { this.delay = 250; this.onopen && this.onopen(ws); };
    ws.onmessage = (ev) => this.onmessage && this.onmessage(ev.data, ws);
    ws.onclose = (ev) => {
      if (this.stopped || this.ws !== ws) return;
      const again = this.onclose ? this.onclose(ev.code, ev.reason) : true;
      if (again === false) return;
      // 1013 "too slow": reconnect at once and resume from the replay.
      const wait = ev.code === 1013 ? 0 : this.delay;
      this.delay = Math.min(this.delay * 2, 10000);
      this.timer = setTimeout(() => this.connect(), wait);
    };
  }
  send(data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }
}

// ------------------------------------------------------------ terminal

// console box: an xterm.js terminal with fit and search.
// typing() says whether keystrokes go to the board; when they do not,
// Tab and Shift+Tab move the focus on like anywhere else on the page (the
// terminal is no keyboard trap).
function consoleBox(id, typing = () => false) {
  const host = h("div", { class: "term" });
  const search = h("input", { type: "search", placeholder: "Search console", class: "term-search", "aria-label": "search the console" });
  const status = h("span", { class: "term-status muted" });
  const box = h("section", { class: "console", id },
    h("div", { class: "term-bar" }, search, status), host);
  const term = new Terminal({
    convertEol: true, scrollback: 20000, fontSize: 13, cursorBlink: false, disableStdin: false,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    // ANSI colours readable on the dark background (WCAG AA contrast).
    theme: { background: "#111417", foreground: "#d8dee4", black: "#484f58", brightBlack: "#9da7b3", red: "#ff7b72", green: "#56d364",
      yellow: "#e3b341", blue: "#79c0ff", magenta: "#d2a8ff", cyan: "#76e3ea", white: "#d8dee4" },
    minimumContrastRatio: 4.5,
  });
  const fit = new FitAddon();
  const finder = new SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(finder);
  term.attachCustomKeyEventHandler((e) => !(e.key === "Tab" && !typing()));
  let opened = false;
  const ro = new ResizeObserver(() => {
    if (!opened && host.isConnected) { term.open(host); opened = true; }
    if (opened && host.clientWidth > 0) { try { fit.fit(); } catch { /* not laid out yet */ } }
  });
  ro.observe(host);
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      const found = e.shiftKey ? finder.findPrevious(search.value) : finder.findNext(search.value);
      status.textContent = found ? "" : "not found";
    }
  });
  // A marker takes one line of its own (no blank lines around it).
  const marker = (text, colour = "36") => term.write(`${term.buffer.active.cursorX ? "\r\n" : ""}\x1b[${colour}m── ${text}\x1b[0m\r\n`);
  return {
    el: box, term, marker,
    status: (t) => { status.textContent = t; },
    dispose: () => { ro.disconnect(); term.dispose(); },
  };
}

const markerColour = { "power-on": "32", "power-off": "31", "flash-start": "35", "flash-end": "35", "port-lost": "41;97", "port-back": "32" };

function markerText(m) {
  const t = new Date(m.at).toLocaleTimeString();
  return `${m.kind}${m.detail ? ": " + m.detail : ""} @ ${t}`;
}

// ------------------------------------------------------------ pages

function pageLogin() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  const err = h("p", { class: "error", id: "login-error" });
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "current-password", placeholder: "hf_…", required: true });
  const form = h("form", { class: "card login", id: "login-form", onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = "";
    try {
      await api("POST", "/api/v1/login", { token: input.value.trim() });
      setMe(await api("GET", "/api/v1/me"));
      go(next.startsWith("/") && !next.startsWith("//") ? next : "/");
    } catch (ex) {
      err.textContent = ex.message;
    }
  } },
  h("h1", {}, "Log in"),
  h("p", { class: "muted" }, "Use an API token (", h("code", {}, "hilfarm token create"), "). It is kept in an HttpOnly cookie."),
  h("label", {}, "Token ", input),
  h("button", { class: "primary", type: "submit", id: "login-submit" }, "Log in"),
  err);
  render(form);
  input.focus();
}

// farm page: every board, live.
function pageFarm() {
  const body = h("tbody", { id: "boards" });
  const summary = h("p", { class: "muted", id: "farm-summary" }, "connecting…");
  render(h("h1", {}, "Farm"), summary,
    h("div", { class: "scroll" }, h("table", { class: "boards" },
      h("thead", {}, h("tr", {}, ["Board", "Type", "Tags", "State", "Health", "Last result", "Firmware", "Job / holder", ""].map((c) => h("th", {}, c)))),
      body)), trustBox(api));
  // Each board's last finished job and last flashed candidate, from one
  // listing of recent jobs, reloaded when a board's job changes.
  let last = {}, lastKey = null, snap = null;
  const loadLast = async () => {
    const { data } = await apiList("/api/v1/jobs?kind=all&state=passed,failed,error,cancelled&limit=300");
    last = {};
    for (const j of data) {
      const l = last[j.board] || (last[j.board] = {});
      if (!l.result) l.result = j;
      if (!l.fw && j.firmware && j.firmware.sha256 !== EMPTY_SHA) l.fw = j;
    }
    if (snap) fill(body, snap.boards.map((b) => boardRow(b, last[b.name])));
  };
  const live = new Live(() => "/api/v1/live", {
    onmessage: (data) => {
      snap = JSON.parse(data);
      const key = snap.boards.map((b) => b.name + b.state + b.job).join(",");
      if (key !== lastKey) { lastKey = key; action(loadLast); }
      const counts = {};
      for (const b of snap.boards) counts[boardState(b)] = (counts[boardState(b)] || 0) + 1;
      summary.textContent = `${snap.boards.length} boards: ` + Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ") +
        ` · ${snap.queue.filter((j) => j.state === "queued").length} queued, ${snap.queue.filter((j) => j.state === "running").length} running`;
      fill(body, snap.boards.length ? snap.boards.map((b) => boardRow(b, last[b.name])) : emptyRow(9, "No boards: add board blocks to farm.hcl and restart the server (docs/wiring.md)."));
    },
  });
  return () => live.stop();
}

function boardRow(b, last) {
  last = last || {};
  return h("tr", { "data-board": b.name },
    h("td", { class: "name" }, link("/boards/" + encodeURIComponent(b.name), b.name), b.emulated ? h("span", { class: "muted small" }, " emulated") : null),
    h("td", { "data-label": "type" }, b.type),
    h("td", { class: "small", "data-label": "tags" }, tagText(b.tags)),
    h("td", { class: "state" }, badge(boardState(b)), boardReason(b) ? h("div", { class: "small muted" }, boardReason(b)) : null,
      (b.flags || []).map((f) => h("div", { class: "small flag" }, "⚠ " + f))),
    h("td", { "data-label": "health" }, health(b)),
    h("td", { "data-label": "last", class: "last" }, last.result ? [badge(last.result.state), " ", h("a", { href: "/jobs/" + last.result.id, class: "small" }, last.result.spec), " ", h("span", { class: "small muted" }, when(last.result.ended))] : h("span", { class: "small muted" }, "no jobs yet")),
    h("td", { "data-label": "firmware", class: "small" }, last.fw ? fwText(last.fw.firmware) : h("span", { class: "muted" }, "—")),
    h("td", { "data-label": b.job ? "job" : b.holder ? "hold" : "" }, b.job ? link("/jobs/" + b.job, b.job) : b.holder ? heldBy(b) : ""),
    h("td", { class: "controls" }, h("div", { class: "actions" }, boardControls(b, false))));
}

// health: the score and what it is made of.
function health(b) {
  const pct = Math.round((b.health ?? 1) * 100);
  const cls = pct >= 90 ? "good" : pct >= 60 ? "warn" : "bad";
  const n = b.health_attempts || 0, bad = b.health_errors || 0;
  const why = n ? `${plural(bad, "infrastructure error")} in the last ${plural(n, "attempt")}` : "no attempts yet";
  return h("span", { class: "health " + cls, title: "share of recent attempts without an infrastructure error: " + why }, pct + "%",
    h("span", { class: "small muted health-why" }, " " + why));
}

// heldBy: the holder and a live countdown to the hold's end.
function heldBy(b) {
  return h("span", { class: "held" }, "held by " + b.holder, h("div", { class: "small muted" }, countdown(b.held_until)));
}

// boardControls: maintenance and hold for operators; power for the holder.
function boardControls(b, full, done) {
  if (!can("operator")) return [];
  const after = async (p) => { const r = await action(() => p); if (done) done(); return r; };
  const enc = encodeURIComponent(b.name);
  const out = [];
  if (b.state === "maintenance") {
    out.push(h("button", { onclick: () => action(() => api("POST", `/api/v1/boards/${enc}/maintenance`, { on: false, reason: "" })) }, "End maintenance"));
  } else {
    out.push(h("button", { onclick: async () => {
      const v = await ask(`Maintenance for ${b.name}`, [{ name: "reason", label: "Reason", required: true }]);
      if (v) action(() => api("POST", `/api/v1/boards/${enc}/maintenance`, { on: true, reason: v.reason }));
    } }, "Maintenance"));
  }
  if (b.holder) {
    out.push(h("button", { class: "release", onclick: () => after(api("DELETE", `/api/v1/boards/${enc}/hold`)) }, "Release"));
    if (full && me && b.holder === me.actor) {
      for (const a of ["on", "off", "cycle"]) {
        out.push(h("button", { class: "power", onclick: () => after(api("POST", `/api/v1/boards/${enc}/power`, { action: a })) }, "Power " + a));
      }
    }
  } else if (!b.job) {
    out.push(h("button", { class: "hold", onclick: async () => {
      const v = await ask(`Hold ${b.name}`, [
        { name: "duration", label: "Duration", value: "30m", required: true },
        { name: "reason", label: "Reason (everyone sees it)", required: true }]);
      if (v) action(() => api("POST", `/api/v1/boards/${enc}/hold`, v));
    } }, "Hold"));
  }
  return out;
}

// queue page: queued and running jobs, live; recent finished jobs below.
function pageQueue() {
  const body = h("tbody", { id: "queue" });
  const recent = h("tbody", { id: "recent" });
  render(h("h1", {}, "Queue ", h("a", { class: "small", href: "/jobs?state=queued,running&kind=all" }, "filter and page the queue →")),
    h("div", { class: "scroll" }, h("table", { class: "queue" },
      h("thead", {}, h("tr", {}, [["#"], ["Job"], ["State"], ["Spec"], ["Firmware", "wide"], ["Board"], ["ETA"], ["Submitter", "wide"], ["Priority", "wide"], [""]].map(([c, cls]) => h("th", { class: cls }, c)))),
      body)),
    h("h2", {}, "Recent jobs ", h("a", { class: "small", href: "/jobs" }, "all jobs and filters →")),
    h("div", { class: "scroll" }, h("table", { class: "jobs" }, jobHead(), recent)));
  let lastIDs = null;
  const loadRecent = async () => {
    const { data } = await apiList("/api/v1/jobs?state=passed,failed,error,cancelled&kind=all&limit=30");
    fill(recent, data.length ? data.map(jobRow) : emptyRow(JOB_COLS.length, "No finished jobs yet. Submit one with ", h("code", {}, "hilfarm submit --server URL SPEC FIRMWARE"), "."));
  };
  const live = new Live(() => "/api/v1/live", {
    onmessage: (data) => {
      const snap = JSON.parse(data);
      const q = snap.queue.slice().sort((a, b) => (a.state === b.state ? (a.position || 0) - (b.position || 0) : a.state === "running" ? -1 : 1));
      fill(body, q.length ? q.map(queueRow) : emptyRow(10, "The queue is empty: every job has run. Submit one with ", h("code", {}, "hilfarm submit"), ", or see ", link("/jobs", "all jobs"), "."));
      const ids = q.map((j) => j.id).join(",");
      if (ids !== lastIDs) { lastIDs = ids; action(loadRecent); }
    },
  });
  return () => live.stop();
}

function Final(state) {
  return ["passed", "failed", "error", "cancelled"].includes(state);
}

function emptyRow(cols, ...text) {
  return h("tr", { class: "empty" }, h("td", { colspan: cols, class: "muted" }, text));
}

// fwText: the firmware's file name, version and short digest (the whole
// digest on hover); a job without firmware (a health check) says so.
function fwText(fw) {
  if (!fw || !fw.sha256 || fw.sha256 === EMPTY_SHA) return h("span", { class: "muted" }, "no firmware");
  return h("span", { class: "fw", title: "sha256:" + fw.sha256 },
    [fw.name, fw.version].filter(Boolean).join(" "), " ", h("span", { class: "mono muted" }, fw.sha256.slice(0, 8)));
}

// labelChips: a job's labels, each a link to the jobs with that label; the
// commit label also links to its commit when farm.hcl sets commit_url.
function labelChips(labels) {
  return Object.entries(labels || {}).sort().map(([k, v]) => [
    h("a", { class: "label", href: "/jobs?label=" + encodeURIComponent(k + "=" + v), title: `jobs labelled ${k}=${v}` }, `${k}=${v}`),
    k === "commit" && me && me.commit_url ? h("a", { class: "label commit-link", href: me.commit_url.replace("{commit}", encodeURIComponent(v)),
      target: "_blank", rel: "noopener noreferrer", title: `commit ${v}`, "aria-label": `commit ${v} (opens the repository)` }, "↗") : null]);
}

// testCounts: "3 passed, 1 failed" from a summary's tests.
function testCounts(tests) {
  const e = Object.entries(tests || {});
  if (!e.length) return null;
  return h("div", { class: "small muted" }, e.map(([k, n]) => `${n} ${k}`).join(", "));
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many || one + "s"}`;
}

const JOB_COLS = ["Job", "State", "Spec", "Firmware", "Labels", "Board", "Submitter", "Created", "Took"];

function jobHead() {
  return h("thead", {}, h("tr", {}, JOB_COLS.map((c) => h("th", { class: ["Firmware", "Labels", "Submitter"].includes(c) ? "wide" : null }, c))));
}

// jobRow is a job summary in a list.
function jobRow(j) {
  const atts = (j.attempts || []).length;
  return h("tr", { "data-job": j.id },
    h("td", {}, link("/jobs/" + j.id, j.id), j.kind === "health_check" ? h("div", { class: "small muted" }, "health check") : null),
    h("td", {}, badge(j.state), atts > 1 ? h("span", { class: "small muted" }, " " + plural(atts, "attempt")) : null, testCounts(j.tests)),
    h("td", {}, link("/jobs?spec=" + encodeURIComponent(j.spec), j.spec)),
    h("td", { class: "small wide" }, fwText(j.firmware)),
    h("td", { class: "small wide labels" }, labelChips(j.labels)),
    h("td", {}, j.board ? link("/boards/" + encodeURIComponent(j.board), j.board) : "—"),
    h("td", { class: "small wide" }, j.submitter),
    h("td", {}, when(j.created)),
    h("td", { class: "num" }, took(j.started, j.ended)));
}

function queueRow(j) {
  return h("tr", { "data-job": j.id },
    h("td", {}, j.position || ""),
    h("td", {}, link("/jobs/" + j.id, j.id), j.kind === "health_check" ? h("div", { class: "small muted" }, "health check") : null),
    h("td", {}, badge(j.state), j.state === "running" ? h("div", { class: "small muted" }, took(j.started)) : null),
    h("td", {}, j.spec, h("div", { class: "small labels" }, labelChips(j.labels))),
    h("td", { class: "small wide" }, fwText(j.firmware)),
    h("td", {}, j.board ? link("/boards/" + encodeURIComponent(j.board), j.board) : ""),
    h("td", {}, eta(j.eta)),
    h("td", { class: "small wide" }, j.submitter),
    h("td", { class: "wide" }, j.priority),
    h("td", {}, can("submitter") ? h("button", { class: "cancel", "aria-label": "cancel job " + j.id, onclick: () => action(() => api("POST", `/api/v1/jobs/${j.id}/cancel`)) }, "Cancel") : ""));
}

// The jobs page's filters: the API's own parameters, so the page's query
// string is the API's and a filtered list can be shared as a link.
const JOB_FILTERS = [
  ["state", "State", [["", "any"], ["queued,running", "queued or running"], ["passed,failed,error,cancelled", "finished"],
    ["queued", "queued"], ["running", "running"], ["passed", "passed"], ["failed", "failed"], ["error", "error"], ["cancelled", "cancelled"]]],
  ["spec", "Spec"], ["board", "Board"], ["board_type", "Board type"], ["submitter", "Submitter"],
  ["label", "Labels (key=value …)"], ["firmware", "Firmware (digest, version or file)"],
  ["kind", "Kind", [["", "candidates"], ["health_check", "health checks"], ["all", "all"]]],
];

// jobs page: every job, filtered and paged by the server.
async function pageJobs() {
  const q = new URLSearchParams(location.search);
  const fields = JOB_FILTERS.map(([name, label, opts]) => {
    const value = name === "label" ? q.getAll("label").join(" ") : q.get(name) || "";
    const ctl = opts ? select("f-" + name, opts, value) : h("input", { id: "f-" + name, name: "f-" + name, value, type: "search", size: name === "firmware" || name === "label" ? 18 : 12 });
    return h("label", { for: "f-" + name }, label, ctl);
  });
  const form = h("form", { class: "card filters", id: "job-filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [name] of JOB_FILTERS) {
      const v = form.elements["f-" + name].value.trim();
      if (!v) continue;
      if (name === "label") v.split(/\s+/).forEach((l) => p.append("label", l));
      else p.set(name, v);
    }
    go("/jobs" + (p.toString() ? "?" + p : ""));
  } }, fields,
  h("button", { class: "primary", type: "submit", id: "filter-apply" }, "Filter"),
  h("a", { href: "/jobs", class: "small" }, "clear"));
  const body = h("tbody", { id: "jobs" });
  const pager = h("nav", { class: "pager", "aria-label": "pages" });
  // On a phone the filters fold away unless some are set.
  const filtered0 = [...q.keys()].some((k) => k !== "cursor" && k !== "limit");
  const box = h("details", { class: "filters-box", open: filtered0 || window.innerWidth > 640 }, h("summary", {}, "Filters"), form);
  render(h("h1", {}, "Jobs"), box, h("div", { class: "scroll" }, h("table", { class: "jobs" }, jobHead(), body)), pager);
  const params = new URLSearchParams(q);
  if (!params.get("limit")) params.set("limit", "50");
  let res;
  try {
    res = await apiList("/api/v1/jobs?" + params);
  } catch (e) {
    fill(body, emptyRow(JOB_COLS.length, h("span", { class: "error" }, e.message)));
    return;
  }
  const filtered = [...q.keys()].some((k) => k !== "cursor" && k !== "limit");
  fill(body, res.data.length ? res.data.map(jobRow) : emptyRow(JOB_COLS.length, filtered
    ? ["No jobs match these filters. ", link("/jobs", "Clear them"), " or loosen one."]
    : ["No jobs yet. Submit one with ", h("code", {}, "hilfarm submit --server URL SPEC FIRMWARE"), "."]));
  const links = [];
  if (q.get("cursor")) {
    const first = new URLSearchParams(q);
    first.delete("cursor");
    links.push(link("/jobs" + (first.toString() ? "?" + first : ""), "← first page"));
  }
  if (res.next) {
    const next = new URLSearchParams(q);
    next.set("cursor", res.next);
    links.push(h("a", { href: "/jobs?" + next, id: "next-page" }, "next page →"));
  }
  fill(pager, h("span", { class: "muted small" }, plural(res.data.length, "job"), " on this page"), links);
}

// job page: the job's context, each attempt as its own section with its
// tests and steps live, measurements, console.
async function pageJob(id) {
  let job;
  try {
    job = await api("GET", "/api/v1/jobs/" + encodeURIComponent(id));
  } catch (e) {
    render(h("h1", {}, "Job " + id), h("p", { class: "error" }, e.message), h("p", {}, link("/jobs", "All jobs")));
    return;
  }
  const state = h("span", { id: "job-state" }, badge(job.state));
  const reason = h("pre", { class: "reason", id: "job-reason" }, job.reason || "");
  const info = h("dl", { class: "info", id: "job-info" });
  const attemptsEl = h("div", { id: "attempts", class: "attempts" });
  const meas = h("tbody", { id: "measurements" });
  const con = consoleBox("console");
  const shardsEl = h("div", { id: "job-shards" });
  const campEl = h("div", { id: "job-campaigns" });
  const cancel = h("button", { class: "cancel", id: "job-cancel", onclick: () => action(() => api("POST", `/api/v1/jobs/${job.id}/cancel`)) }, "Cancel");
  render(
    h("h1", {}, "Job ", h("span", { class: "mono" }, job.id), " ", state),
    reason, info, provenanceBox(job),
    h("p", {}, link(`/api/v1/jobs/${job.id}/junit.xml`, "JUnit XML"), " · ", link(`/api/v1/jobs/${job.id}/console`, "raw console"),
      " · ", link(`/compare?spec=${encodeURIComponent(job.spec)}&candidate=${job.firmware.sha256}`, "compare"),
      " · ", link(`/trends?spec=${encodeURIComponent(job.spec)}`, "trends"),
      can("submitter") ? [" ", cancel] : null),
    shardsEl, campEl,
    h("h2", {}, "Attempts and tests"),
    h("div", { id: "tests" }, attemptsEl),
    h("h2", {}, "Measurements"),
    h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Test", "Name", "Value", "Limits", "Verdict"].map((c) => h("th", {}, c)))), meas)),
    h("h2", {}, "Console"), con.el);

  // Attempts: one collapsible section each, made when the attempt starts
  // (from the event stream) or from the job (for its board, outcome, reason).
  const atts = new Map();
  const attemptBox = (n) => {
    let a = atts.get(n);
    if (!a) {
      const head = h("span", { class: "att-head" }, `Attempt ${n}`);
      const detail = h("div", { class: "att-detail" });
      const tests = h("div", { class: "tests" });
      const el = h("details", { class: "attempt", open: true, "data-attempt": n }, h("summary", {}, head), detail, tests);
      a = { el, head, detail, tests, testEls: new Map() };
      atts.set(n, a);
      const after = [...atts.keys()].filter((k) => k > n).sort((x, y) => x - y)[0];
      if (after !== undefined) attemptsEl.insertBefore(el, atts.get(after).el); else attemptsEl.append(el);
      // An earlier attempt closes when a later one starts.
      for (const [k, o] of atts) if (k < n) o.el.open = false;
    }
    return a;
  };
  const showAttempt = (at) => {
    const a = attemptBox(at.n);
    fill(a.head, `Attempt ${at.n} on `, at.board, " ", badge(at.state), " ", took(at.started, at.ended));
    // The tail box is made once per attempt and kept across refreshes.
    if (!a.tailBox) {
      const tail = h("pre", { class: "tail mono small" });
      a.tailBox = h("details", { class: "tail-box" }, h("summary", {}, "Console tail"), tail);
      a.tailBox.addEventListener("toggle", () => {
        if (!a.tailBox.open) return;
        action(async () => {
          const res = await fetch(`/api/v1/jobs/${encodeURIComponent(job.id)}/attempts/${at.n}/console?tail=4096`, { credentials: "same-origin" });
          const text = await res.text();
          tail.textContent = res.ok ? (text || "(no console output)") : text;
        });
      });
    }
    const tailBox = a.tailBox;
    fill(a.detail, h("div", { class: "small muted" }, "started ", when(at.started), at.ended ? [" · ended ", when(at.ended)] : null),
      at.reason && at.reason !== job.reason ? h("pre", { class: "reason" }, at.reason) : null,
      at.state !== "running" ? tailBox : null);
  };
  const showInfo = (j) => {
    job = j;
    fill(info,
      h("dt", {}, "Spec"), h("dd", {}, link("/jobs?spec=" + encodeURIComponent(j.spec), j.spec), h("span", { class: "muted small" }, " ", j.spec_filename)),
      h("dt", {}, "Firmware"), h("dd", {}, fwText(j.firmware), j.firmware.sha256 !== EMPTY_SHA ? h("div", { class: "mono small muted digest" }, "sha256:" + j.firmware.sha256) : null),
      h("dt", {}, "Labels"), h("dd", { class: "labels", id: "job-labels" }, Object.keys(j.labels || {}).length ? labelChips(j.labels) : h("span", { class: "muted" }, "none")),
      h("dt", {}, "Submitter"), h("dd", {}, link("/jobs?submitter=" + encodeURIComponent(j.submitter), j.submitter)),
      h("dt", {}, "Board"), h("dd", {}, j.board ? link("/boards/" + encodeURIComponent(j.board), j.board) : "—"),
      h("dt", {}, "Priority"), h("dd", {}, j.priority),
      j.position ? [h("dt", {}, "Position"), h("dd", {}, j.position)] : null,
      j.eta ? [h("dt", {}, j.state === "queued" ? "Starts" : "Ends"), h("dd", {}, eta(j.eta))] : null,
      h("dt", {}, "Created"), h("dd", {}, when(j.created)),
      j.started ? [h("dt", {}, "Started"), h("dd", {}, when(j.started))] : null,
      j.ended ? [h("dt", {}, "Ended"), h("dd", {}, when(j.ended))] : null,
      j.started ? [h("dt", {}, "Took"), h("dd", { id: "job-took" }, took(j.started, j.ended))] : null);
    reason.textContent = j.reason || "";
    reason.hidden = !j.reason;
    fill(shardsEl, shardsSection(j));
    fill(campEl, campaignSection(j));
    for (const at of j.attempts || []) showAttempt(at);
    if (!meas.children.length) fill(meas, emptyRow(5, Final(j.state) ? "No measurements: this spec has no measure steps, or none ran." : "None yet: measurements show as the tests run."));
    if (!(j.attempts || []).length && !atts.size) fill(attemptsEl, h("p", { class: "muted", id: "no-attempts" }, j.spread && (j.spread.shards || []).length ? "This job runs as its shards (above): each has its attempts and console." : "Not started yet: waiting for a board that matches the spec."));
    cancel.hidden = !["queued", "running"].includes(j.state);
  };
  showInfo(job);

  // Tests and steps, keyed by attempt, phase and test.
  let cur = 0;
  const testEl = (phase, name, attempt) => {
    if (!cur) cur = 1;
    document.getElementById("no-attempts")?.remove();
    const a = attemptBox(cur);
    const key = `${phase}/${name}`;
    let t = a.testEls.get(key);
    if (!t) {
      const steps = h("ol", { class: "steps" });
      const st = badge("pending");
      const msg = h("pre", { class: "small msg" });
      const dur = h("span", { class: "muted small tdur" });
      const el = h("div", { class: "test", "data-test": name }, h("div", { class: "test-head" }, st, " ", h("b", {}, phase === "test" ? name : phase), h("span", { class: "muted small att" }), " ", dur), msg, steps);
      if (phase === "setup") a.tests.prepend(el); else a.tests.append(el);
      t = { el, st, steps, msg, dur, stepEls: new Map(), att: el.querySelector(".att") };
      a.testEls.set(key, t);
    }
    if (attempt > 1) t.att.textContent = ` try ${attempt}`;
    return t;
  };
  let lastSeq = 0, final = false;
  const handle = (e) => {
    lastSeq = e.seq;
    const d = e.data;
    switch (e.type) {
      case "state": {
        fill(state, badge(d.state));
        if (d.state === "running" && d.board) {
          cur = d.attempt || cur + 1;
          document.getElementById("no-attempts")?.remove();
          const a = attemptBox(cur);
          a.board = d.board;
          a.started = e.at || d.time;
          if (!(job.attempts || []).some((x) => x.n === cur)) fill(a.head, `Attempt ${cur} on ${d.board} `, badge("running"), " ", took(a.started));
          con.marker(`attempt ${cur} on ${d.board}`, "33");
        }
        if (["passed", "failed", "error", "cancelled", "queued"].includes(d.state) && e.seq > 0) {
          final = d.state !== "queued";
          // The attempt's outcome at once; showInfo below brings its times and reason.
          const a = cur && atts.get(cur);
          if (a && a.board && final) fill(a.head, `Attempt ${cur} on ${a.board} `, badge(d.state), " ", took(a.started, e.at || d.time));
          action(async () => showInfo(await api("GET", "/api/v1/jobs/" + job.id)));
        }
        break;
      }
      case "job_started":
        for (const n of d.tests || []) testEl("test", n, 1);
        break;
      case "test_started": {
        const t = testEl(d.phase, d.test, d.attempt);
        if (d.attempt > 1) { fill(t.steps); t.stepEls.clear(); }
        const nb = badge("running"); t.st.replaceWith(nb); t.st = nb;
        fill(t.dur, took(d.time || e.at));
        break;
      }
      case "test_finished": {
        const t = testEl(d.phase, d.test, d.attempt);
        const nb = badge(d.outcome); t.st.replaceWith(nb); t.st = nb;
        t.msg.textContent = d.message || "";
        if (d.duration_ms != null) t.dur.textContent = fmtDur(d.duration_ms);
        break;
      }
      case "step_started": {
        const t = testEl(d.phase, d.test, d.attempt);
        const st = badge("running");
        const li = h("li", {}, st, " ", h("span", { class: "mono small" }, d.summary), h("span", { class: "small msg" }));
        t.steps.append(li);
        t.stepEls.set(d.index, { li, st });
        if (d.kind === "power" || d.kind === "flash") con.marker(d.summary, d.kind === "flash" ? "35" : "32");
        break;
      }
      case "step_finished": {
        const s = testEl(d.phase, d.test, d.attempt).stepEls.get(d.index);
        if (s) {
          const nb = badge(d.outcome); s.st.replaceWith(nb); s.st = nb;
          s.li.querySelector(".msg").textContent = (d.message ? " — " + d.message : "") + ` (${fmtDur(d.duration_ms)})`;
        }
        break;
      }
      case "measurement": {
        const m = d.measurement;
        meas.querySelector("tr.empty")?.remove();
        meas.append(h("tr", { class: "v-" + m.verdict },
          h("td", {}, d.test), h("td", {}, m.name), h("td", { class: "num" }, `${m.value} ${m.unit || ""}`),
          h("td", { class: "small" }, limits(m)), h("td", {}, badge(m.verdict))));
        break;
      }
      case "console":
        con.term.write(d.data);
        break;
      case "console_gap":
        con.marker(d.lost ? `console lost: ${d.error || ""}` : "console back", d.lost ? "41;97" : "32");
        break;
      case "log":
        con.term.write(`\x1b[90m[${d.source}] ${d.line}\x1b[0m\r\n`);
        break;
    }
  };
  const live = new Live(() => `/api/v1/jobs/${encodeURIComponent(job.id)}/events?after=${lastSeq}`, {
    onopen: () => con.status("live"),
    onmessage: (data) => handle(JSON.parse(data)),
    onclose: (code) => {
      con.status(code === 1000 || final ? "" : "reconnecting…");
      return !(code === 1000 || final);
    },
  });
  return () => { live.stop(); con.dispose(); };
}

function limits(m) {
  const parts = [];
  if (m.min != null) parts.push(`min ${m.min}`);
  if (m.marginal_min != null) parts.push(`marginal below ${m.marginal_min}`);
  if (m.marginal_max != null) parts.push(`marginal above ${m.marginal_max}`);
  if (m.max != null) parts.push(`max ${m.max}`);
  return parts.join(", ") || "—";
}

// board page: live console with typing for the holder, state, power,
// firmware, last result, health and controls; history kept live.
function pageBoard(name) {
  const enc = encodeURIComponent(name);
  const head = h("div", { id: "board-head" });
  const controls = h("div", { class: "actions", id: "board-controls" });
  const recent = h("tbody", { id: "board-jobs" });
  const history = h("tbody", { id: "board-history" });
  const con = consoleBox("console", () => holding());
  const mode = h("p", { class: "small", id: "term-mode" });
  render(h("h1", {}, "Board ", name), head, controls,
    h("h2", {}, "Console"), mode, con.el,
    h("h2", {}, "Recent jobs ", h("a", { class: "small", href: "/jobs?kind=all&board=" + enc }, "all →")),
    h("div", { class: "scroll" }, h("table", { class: "jobs" }, jobHead(), recent)),
    h("h2", {}, "History"),
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["When", "What", "Who", "Detail"].map((c) => h("th", {}, c)))), history)));

  let board = null, you = "", lastJobs = "", power = null, jobs = [];
  const holding = () => board && you && board.holder === you;
  const showMode = () => {
    mode.textContent = holding() ? "You hold this board: your keystrokes go to it." :
      board && board.holder ? `Read-only: held by ${board.holder}.` : "Read-only: hold the board to type.";
    mode.className = "small " + (holding() ? "holding" : "muted");
  };
  const showHead = () => {
    if (!board) return;
    const fin = jobs.find((j) => ["passed", "failed", "error", "cancelled"].includes(j.state));
    const flashed = jobs.find((j) => j.firmware && j.firmware.sha256 !== EMPTY_SHA && j.state !== "queued");
    fill(head, h("dl", { class: "info" },
      h("dt", {}, "Type"), h("dd", {}, board.type, board.emulated ? " (emulated)" : ""),
      h("dt", {}, "Tags"), h("dd", {}, tagText(board.tags) || "—"),
      h("dt", {}, "State"), h("dd", { id: "board-state" }, badge(boardState(board)), " since ", when(board.since), boardReason(board) ? h("div", { class: "small muted" }, boardReason(board)) : null),
      h("dt", {}, "Held by"), h("dd", { id: "board-holder" }, board.holder ? [board.holder, " · ", countdown(board.held_until), h("span", { class: "small muted" }, " (until ", absTime(board.held_until), ")")] : "—"),
      h("dt", {}, "Power"), h("dd", { id: "board-power" }, power ? [badge(power.kind === "power-on" ? "on" : "off"), " since ", when(power.at)] : h("span", { class: "muted" }, "not switched since the server started")),
      h("dt", {}, "Firmware"), h("dd", { id: "board-firmware" }, flashed ? [fwText(flashed.firmware), h("span", { class: "small muted" }, " from "), link("/jobs/" + flashed.id, flashed.id)] : h("span", { class: "muted" }, "none flashed yet")),
      h("dt", {}, "Last result"), h("dd", { id: "board-last" }, fin ? [badge(fin.state), " ", link("/jobs/" + fin.id, fin.id), " ", fin.spec, " · ", when(fin.ended)] : h("span", { class: "muted" }, "no finished job yet")),
      h("dt", {}, "Health"), h("dd", { id: "board-health" }, health(board)),
      (board.flags || []).length ? [h("dt", {}, "Flags"), h("dd", {}, board.flags.map((f) => h("div", { class: "flag small" }, f)))] : null,
      h("dt", {}, "Job"), h("dd", {}, board.job ? link("/jobs/" + board.job, board.job) : "—")));
  };
  const loadHistory = async () => {
    const hs = await api("GET", `/api/v1/boards/${enc}/history`);
    fill(history, hs.length ? hs.map((r) => h("tr", {}, h("td", {}, when(r.at)), h("td", {}, r.action), h("td", { class: "small" }, r.actor), h("td", { class: "small" }, r.detail || "")))
      : emptyRow(4, "Nothing yet: maintenance, holds and power switched by a holder show here."));
  };
  const loadJobs = async () => {
    jobs = (await apiList(`/api/v1/jobs?kind=all&board=${enc}&limit=20`)).data;
    fill(recent, jobs.length ? jobs.map(jobRow) : emptyRow(JOB_COLS.length, "No jobs have run on this board yet."));
    showHead();
    await loadHistory();
  };
  const controlsFor = (b) => boardControls(b, true, () => action(loadHistory));
  const snap = new Live(() => "/api/v1/live", {
    onmessage: (data) => {
      const s = JSON.parse(data);
      board = s.boards.find((b) => b.name === name);
      if (!board) { fill(head, h("p", { class: "error" }, "No such board. ", link("/", "See the farm's boards."))); return; }
      showHead();
      fill(controls, ...controlsFor(board));
      showMode();
      const key = board.state + board.job + board.holder + board.reason;
      if (key !== lastJobs) { lastJobs = key; action(loadJobs); }
    },
  });
  const term = new Live(() => `/api/v1/boards/${enc}/terminal`, {
    binary: true,
    onopen: () => { con.term.reset(); con.status("live"); },
    onmessage: (data) => {
      if (typeof data !== "string") { con.term.write(new Uint8Array(data)); return; }
      const m = JSON.parse(data);
      if (m.type === "marker") {
        con.marker(markerText(m), markerColour[m.kind] || "36");
        if (m.kind === "power-on" || m.kind === "power-off") { power = m; showHead(); }
      } else if (m.type === "hello") { you = m.you; if (me) me.actor = m.you; showMode(); fill(controls, ...(board ? controlsFor(board) : [])); }
      else if (m.type === "error") notice(m.error);
    },
    onclose: (code) => { con.status(code === 1013 ? "too slow: replaying…" : "reconnecting…"); },
  });
  const input = con.term.onData((d) => {
    if (holding()) term.send(d);
    else notice(board && board.holder ? `Read-only: ${name} is held by ${board.holder}.` : `Read-only: hold ${name} to type.`, "info");
  });
  return () => { snap.stop(); term.stop(); input.dispose(); con.dispose(); };
}

// Lists of specs and their firmware from recent jobs, for the pickers.
async function catalogue() {
  const { data: js } = await apiList("/api/v1/jobs?state=passed,failed&limit=1000");
  const specs = new Map();
  for (const j of js) {
    if (!specs.has(j.spec)) specs.set(j.spec, new Map());
    const fws = specs.get(j.spec);
    const f = fws.get(j.firmware.sha256) || { sha256: j.firmware.sha256, version: j.firmware.version, jobs: 0, last: j.created };
    f.jobs++;
    fws.set(f.sha256, f);
  }
  return specs;
}

function select(id, options, value) {
  return h("select", { id, name: id }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

// compare page: candidate B against baseline A on one spec.
async function pageCompare() {
  const q = new URLSearchParams(location.search);
  const cat = await catalogue();
  const specNames = [...cat.keys()].sort();
  const spec = q.get("spec") || specNames[0] || "";
  const fws = [...(cat.get(spec) || new Map()).values()].sort((a, b) => (a.last < b.last ? 1 : -1));
  const fwOpts = fws.map((f) => [f.sha256, `${f.version ? f.version + " " : ""}${short(f.sha256)} (${plural(f.jobs, "job")})`]);
  const base = q.get("base") || (fws[1] || fws[0] || {}).sha256 || "";
  const cand = q.get("candidate") || (fws[0] || {}).sha256 || "";
  const out = h("div", { id: "comparison" });
  const form = h("form", { class: "card filters", id: "compare-form", onsubmit: (e) => {
    e.preventDefault();
    const f = e.target.elements;
    go(`/compare?spec=${encodeURIComponent(f.spec.value)}&base=${f.base.value}&candidate=${f.candidate.value}`);
  } },
  h("label", {}, "Spec ", select("spec", specNames.map((s) => [s, s]), spec)),
  h("label", {}, "Baseline A ", select("base", fwOpts, base)),
  h("label", {}, "Candidate B ", select("candidate", fwOpts, cand)),
  h("button", { class: "primary", type: "submit" }, "Compare"));
  form.elements.spec.addEventListener("change", () => go(`/compare?spec=${encodeURIComponent(form.elements.spec.value)}`));
  render(h("h1", {}, "Compare"), form, out);
  if (!spec || !base || !cand) {
    out.append(h("p", { class: "muted" }, "No finished jobs to compare yet: submit a baseline and a candidate on the same spec (",
      h("code", {}, "hilfarm submit"), "), then come back."));
    return;
  }
  if (base === cand) {
    out.append(h("p", { class: "muted" }, `Only one firmware has finished jobs on ${spec}: submit another candidate to compare it with.`));
    return;
  }
  // Without a choice in the URL: the most recent candidate against the one before it.
  if (!q.get("base") || !q.get("candidate")) out.append(h("p", { class: "muted small", id: "compare-default" }, "The most recent candidate against the one before it; pick others above."));
  let c;
  try {
    c = await api("GET", `/api/v1/compare?spec=${encodeURIComponent(spec)}&base=${base}&candidate=${cand}`);
  } catch (e) {
    out.append(h("p", { class: "error" }, e.message));
    return;
  }
  const count = (v) => c.tests.filter((t) => t.verdict === v).length;
  const jobsOf = (s, state) => `/jobs?spec=${encodeURIComponent(spec)}&firmware=${s.sha256}` + (state ? "&state=" + state : "");
  const side = (s, label) => h("div", { class: "card side" }, h("h3", {}, label, " ", s.version || "", " ", h("span", { class: "mono small" }, short(s.sha256))),
    h("p", {}, link(jobsOf(s), plural(s.jobs, "job")), ": ", Object.entries(s.states).map(([k, v]) => [badge(k), " ", link(jobsOf(s, k), String(v)), " "])));
  const nf = count("new-failure");
  out.append(
    h("p", { class: "verdict " + (nf ? "bad" : "good"), id: "compare-verdict" },
      nf ? `Regression: ${plural(nf, "new failure")}` : "No new failures",
      ` · ${count("fixed")} fixed · ${count("flaky")} flaky`),
    h("div", { class: "cols" }, side(c.baseline, "A"), side(c.candidate, "B")),
    h("h2", {}, "Tests"),
    h("div", { class: "scroll" }, h("table", { id: "compare-tests" },
      h("thead", {}, h("tr", {}, ["Test", "A", "B", "Verdict"].map((x) => h("th", {}, x)))),
      h("tbody", {}, c.tests.map((t) => h("tr", { class: "c-" + t.verdict },
        h("td", {}, t.name), h("td", { class: "small" }, outcomes(t.baseline)), h("td", { class: "small" }, outcomes(t.candidate)), h("td", {}, badge(t.verdict))))))),
    h("h2", {}, "Measurements"),
    h("div", { class: "scroll" }, h("table", { id: "compare-measurements" },
      h("thead", {}, h("tr", {}, ["Measurement", "A (mean)", "B (mean)", "Δ", "B verdicts", ""].map((x) => h("th", {}, x)))),
      h("tbody", {}, (c.measurements || []).map((m) => h("tr", {},
        h("td", {}, m.name), h("td", { class: "num" }, num(m.baseline, m.unit)), h("td", { class: "num" }, num(m.candidate, m.unit)),
        h("td", { class: "num " + (m.delta > 0 ? "up" : m.delta < 0 ? "down" : "") }, m.delta == null ? "" : (m.delta > 0 ? "+" : "") + num(m.delta, m.unit)),
        h("td", {}, Object.entries(m.candidate_verdicts || {}).map(([k, v]) => [badge(k), ` ${v} `])),
        h("td", {}, link(`/trends?spec=${encodeURIComponent(spec)}&measure=${encodeURIComponent(m.name)}`, "trend"))))))),
    compareSection(spec, c.campaigns));
}

function outcomes(o) {
  const e = Object.entries(o || {});
  return e.length ? e.map(([k, v]) => `${k} ×${v}`).join(", ") : "—";
}

function num(v, unit) {
  if (v == null) return "";
  return (Math.round(v * 1000) / 1000) + (unit ? " " + unit : "");
}

// trends page: a measurement across firmware candidates over time.
async function pageTrends() {
  const q = new URLSearchParams(location.search);
  const cat = await catalogue();
  const specNames = [...cat.keys()].sort();
  const spec = q.get("spec") || specNames[0] || "";
  const names = spec ? await api("GET", `/api/v1/specs/${encodeURIComponent(spec)}/measurements`) : [];
  const camps = spec ? await api("GET", `/api/v1/specs/${encodeURIComponent(spec)}/campaigns`) : [];
  const measure = q.get("measure") || names[0] || "";
  const chart = h("div", { id: "chart", class: "chart", role: "img", "aria-label": "trend chart: one line per firmware candidate" });
  const legend = h("div", { id: "trend-candidates", class: "small cands" });
  const table = h("tbody", { id: "trend-points" });
  const form = h("form", { class: "card filters", id: "trends-form", onsubmit: (e) => {
    e.preventDefault();
    const f = e.target.elements;
    go(`/trends?spec=${encodeURIComponent(f.spec.value)}&measure=${encodeURIComponent(f.measure.value)}`);
  } },
  h("label", {}, "Spec ", select("spec", specNames.map((s) => [s, s]), spec)),
  h("label", {}, "Measurement ", select("measure", names.map((s) => [s, s]), measure)),
  h("button", { class: "primary", type: "submit" }, "Show"));
  form.elements.spec.addEventListener("change", () => go(`/trends?spec=${encodeURIComponent(form.elements.spec.value)}`));
  // A campaign's pass rate and percentiles across candidates (campaign.js).
  const campBox = h("div", { id: "campaign-trend" });
  let campCleanup = () => {};
  const camp = camps.find((c) => c.test === q.get("campaign")) || camps[0];
  const showCampaign = async (test, stat) => {
    campCleanup();
    const info = camps.find((c) => c.test === test);
    campCleanup = await campaignTrend({ spec, test, stat, stats: info.stats, api, uPlot, go, mount: campBox,
      onStat: (s) => action(() => showCampaign(test, s)) });
  };
  const campSection = camps.length ? h("section", { id: "trend-campaigns" }, h("h2", {}, "Campaigns"),
    h("label", {}, "Campaign ", h("select", { id: "campaign-test", name: "campaign-test", onchange: (e) => action(() => showCampaign(e.target.value, "iteration_ms")) },
      camps.map((c) => h("option", { value: c.test, selected: c === camp }, c.test)))), campBox) : null;
  render(h("h1", {}, "Trends"), form, legend, chart,
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["When", "Firmware", "Board", "Value", "Verdict", "Job"].map((c) => h("th", {}, c)))), table)),
    campSection);
  if (camp) await showCampaign(camp.test, q.get("stat") || "iteration_ms");
  if (!spec || !measure) {
    chart.append(h("p", { class: "muted" }, camps.length ? "No measurements outside campaigns: see the campaigns below." : "No measurements yet: a spec's measure steps record them; run one, then come back."));
    return () => campCleanup();
  }
  const all = await api("GET", `/api/v1/trends?spec=${encodeURIComponent(spec)}&measure=${encodeURIComponent(measure)}`);
  fill(table, ...all.slice().reverse().map((p) => h("tr", { class: "v-" + p.verdict },
    h("td", {}, when(p.at)), h("td", { class: "small" }, fwText({ sha256: p.sha256, name: p.firmware, version: p.version })), h("td", {}, p.board),
    h("td", { class: "num" }, num(p.value, p.unit)), h("td", {}, badge(p.verdict)), h("td", {}, link("/jobs/" + p.job, p.job)))));
  if (!all.length) {
    chart.append(h("p", { class: "muted" }, "No values of this measurement yet."));
    return () => campCleanup();
  }
  // One series per candidate (firmware), in submission order along the x
  // axis: no line joins two candidates. Limits dashed, the marginal band
  // shaded, a click on a point opens its job.
  const unit = all[0].unit || "";
  // Group the points by candidate, candidates in the order of their first
  // submission, each one's points in submission order.
  const first = new Map();
  all.forEach((p, i) => { if (!first.has(p.sha256)) first.set(p.sha256, i); });
  const pts = all.map((p, i) => [p, i]).sort((a, b) => first.get(a[0].sha256) - first.get(b[0].sha256) || a[1] - b[1]).map((x) => x[0]);
  const xs = pts.map((_, i) => i + 1);
  const cands = [];
  const byKey = new Map();
  pts.forEach((p, i) => {
    let c = byKey.get(p.sha256);
    if (!c) {
      c = { label: [p.firmware, p.version].filter(Boolean).join(" ") + " " + short(p.sha256).slice(0, 8), ys: xs.map(() => null) };
      byKey.set(p.sha256, c);
      cands.push(c);
    }
    c.ys[i] = p.value;
    c.from = c.from || i + 1;
    c.to = i + 1;
  });
  const palette = ["#2f81f7", "#bf3989", "#1a7f37", "#d4a72c", "#8250df", "#0598bc", "#e16f24", "#57606a"];
  const series = [{ label: "job #", value: (u, v) => (v == null ? "—" : pts[v - 1] ? pts[v - 1].job : "") }];
  const data = [xs];
  cands.forEach((c, k) => {
    const colour = palette[k % palette.length];
    series.push({ label: c.label, stroke: colour, width: 2, spanGaps: false, points: { size: 8, fill: colour } });
    data.push(c.ys);
  });
  const lim = (k) => pts.map((p) => (p[k] == null ? null : p[k]));
  const idx = {};
  for (const [k, colour, dash] of [["min", "#d1242f", [6, 4]], ["max", "#d1242f", [6, 4]], ["marginal_min", "#9a6700", [2, 3]], ["marginal_max", "#9a6700", [2, 3]]]) {
    if (pts.some((p) => p[k] != null)) {
      idx[k] = series.length;
      series.push({ label: k.replace("_", " "), stroke: colour, dash, width: 1, points: { show: false } });
      data.push(lim(k));
    }
  }
  const bands = [];
  if (idx.max && idx.marginal_max) bands.push({ series: [idx.max, idx.marginal_max], fill: "#9a670026" });
  if (idx.marginal_min && idx.min) bands.push({ series: [idx.marginal_min, idx.min], fill: "#9a670026" });
  fill(legend, cands.map((c, k) => h("span", { class: "cand", "data-from": c.from, "data-to": c.to }, h("span", { class: "swatch", style: `background:${palette[k % palette.length]}` }), c.label)));
  const width = () => Math.max(280, chart.clientWidth || 600);
  const plot = new uPlot({ width: width(), height: 320, series, bands, axes: [{ label: "jobs by candidate, in submission order", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? v : "")) }, { label: unit }],
    scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } }, cursor: { points: { size: 10 } } }, data, chart);
  plot.over.addEventListener("click", () => {
    const i = plot.cursor.idx;
    if (i != null && pts[i]) go("/jobs/" + pts[i].job);
  });
  const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: 320 }));
  ro.observe(chart);
  return () => { ro.disconnect(); plot.destroy(); campCleanup(); };
}

// ------------------------------------------------------------ router

let cleanup = null;
let seq = 0;

function render(...nodes) {
  fill(document.getElementById("main"), ...nodes);
}

async function route() {
  const my = ++seq;
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const p = location.pathname;
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === p || (a.getAttribute("href") === "/jobs" && p.startsWith("/jobs/"))));
  if (p === "/login") { pageLogin(); document.title = "hilfarm · log in"; return; }
  if (!me) {
    try { setMe(await api("GET", "/api/v1/me")); } catch { return; }
  }
  let m, page;
  if (p === "/") page = () => pageFarm();
  else if (p === "/queue") page = () => pageQueue();
  else if (p === "/jobs") page = () => pageJobs();
  else if ((m = p.match(/^\/jobs\/([^/]+)$/))) page = () => pageJob(decodeURIComponent(m[1]));
  else if ((m = p.match(/^\/boards\/([^/]+)$/))) page = () => pageBoard(decodeURIComponent(m[1]));
  else if (p === "/compare") page = () => pageCompare();
  else if (p === "/trends") page = () => pageTrends();
  else page = () => render(h("h1", {}, "Not found"), h("p", {}, "No page at ", p, "."));
  document.title = "hilfarm · " + (p === "/" ? "farm" : p.split("/")[1]);
  try {
    const c = await page();
    if (my !== seq) { if (c) c(); return; }
    cleanup = c || null;
  } catch (e) {
    if (my === seq && !(e instanceof APIError && e.status === 401)) render(h("p", { class: "error" }, e.message));
  }
}

function go(path) {
  if (path !== location.pathname + location.search) history.pushState(null, "", path);
  route();
}

// setMe records who is logged in; actor is how the server names them in
// holds and the audit log ("name (token id)").
function setMe(m) {
  me = m;
  if (me) me.actor = me.token ? `${me.name} (${me.token})` : me.name;
  showWho();
}

function showWho() {
  const who = document.getElementById("who");
  const toggle = h("button", { id: "time-toggle", "aria-pressed": absTimes ? "true" : "false", title: "show times as absolute or relative",
    onclick: () => {
      absTimes = !absTimes;
      try { localStorage.setItem("hilfarm-abs-times", absTimes ? "1" : "0"); } catch { /* storage off */ }
      toggle.setAttribute("aria-pressed", absTimes ? "true" : "false");
      toggle.textContent = absTimes ? "Absolute times" : "Relative times";
      tick();
    } }, absTimes ? "Absolute times" : "Relative times");
  if (!me) { fill(who, toggle); return; }
  if (!me.token) {
    // Anonymous read access: offer the login, not a logout.
    fill(who, toggle, h("span", { class: "small" }, "anonymous (read-only) "),
      h("a", { id: "login-link", class: "button", href: "/login?next=" + encodeURIComponent(location.pathname + location.search) }, "Log in"));
    return;
  }
  fill(who, toggle, h("span", { class: "small" }, `${me.name} · ${me.role} `),
    h("button", { id: "logout", onclick: async () => {
      await action(() => api("POST", "/api/v1/logout"));
      me = null;
      showWho();
      go("/login");
    } }, "Log out"));
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  e.preventDefault();
  go(url.pathname + url.search);
});
window.addEventListener("popstate", route);
// A blocked resource means the page and its Content-Security-Policy
// disagree: say so in the console, where developers and tests look.
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
route();
