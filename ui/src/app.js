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

function badge(state) {
  return h("span", { class: "badge s-" + String(state || "unknown").replace(/[^a-z-]/g, "") }, state || "?");
}

function link(href, text) {
  return h("a", { href }, text);
}

function short(sha) {
  return sha ? sha.slice(0, 12) : "";
}

function ago(t) {
  if (!t) return "";
  const d = (Date.now() - new Date(t).getTime()) / 1000;
  if (d < 0) return "in " + dur(-d);
  return dur(d) + " ago";
}

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
  return h("time", { datetime: d.toISOString(), title: d.toLocaleString() }, ago(t));
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
function consoleBox(id) {
  const host = h("div", { class: "term" });
  const search = h("input", { type: "search", placeholder: "Search console", class: "term-search", "aria-label": "search the console" });
  const status = h("span", { class: "term-status muted" });
  const box = h("section", { class: "console", id },
    h("div", { class: "term-bar" }, search, status), host);
  const term = new Terminal({
    convertEol: true, scrollback: 20000, fontSize: 13, cursorBlink: false, disableStdin: false,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    theme: { background: "#111417", foreground: "#d8dee4" },
  });
  const fit = new FitAddon();
  const finder = new SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(finder);
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
  const marker = (text, colour = "36") => term.write(`\r\n\x1b[${colour}m── ${text} ──\x1b[0m\r\n`);
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
      h("thead", {}, h("tr", {}, ["Board", "Type", "Tags", "State", "Health", "Job / holder", ""].map((c) => h("th", {}, c)))),
      body)), trustBox(api));
  const live = new Live(() => "/api/v1/live", {
    onmessage: (data) => {
      const snap = JSON.parse(data);
      const counts = {};
      for (const b of snap.boards) counts[b.state] = (counts[b.state] || 0) + 1;
      summary.textContent = `${snap.boards.length} boards: ` + Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ") +
        ` · ${snap.queue.filter((j) => j.state === "queued").length} queued, ${snap.queue.filter((j) => j.state === "running").length} running`;
      fill(body, ...snap.boards.map(boardRow));
    },
  });
  return () => live.stop();
}

function boardRow(b) {
  return h("tr", { "data-board": b.name },
    h("td", { class: "name" }, link("/boards/" + encodeURIComponent(b.name), b.name), b.emulated ? h("span", { class: "muted small" }, " emulated") : null),
    h("td", { "data-label": "type" }, b.type),
    h("td", { class: "small", "data-label": "tags" }, tagText(b.tags)),
    h("td", {}, badge(b.state), b.reason ? h("div", { class: "small muted" }, b.reason) : null,
      (b.flags || []).map((f) => h("div", { class: "small flag" }, "⚠ " + f))),
    h("td", { "data-label": "health" }, health(b.health)),
    h("td", { "data-label": b.job ? "job" : b.holder ? "hold" : "" }, b.job ? link("/jobs/" + b.job, b.job) : b.holder ? h("span", {}, "held by " + b.holder, h("div", { class: "small muted" }, "until ", when(b.held_until))) : ""),
    h("td", { class: "controls" }, h("div", { class: "actions" }, boardControls(b, false))));
}

function health(score) {
  const pct = Math.round((score ?? 1) * 100);
  const cls = pct >= 90 ? "good" : pct >= 60 ? "warn" : "bad";
  return h("span", { class: "health " + cls, title: "share of recent attempts without an infrastructure error" }, pct + "%");
}

// boardControls: maintenance and hold for operators; power for the holder.
function boardControls(b, full) {
  if (!can("operator")) return [];
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
    out.push(h("button", { class: "release", onclick: () => action(() => api("DELETE", `/api/v1/boards/${enc}/hold`)) }, "Release"));
    if (full && me && b.holder === me.actor) {
      for (const a of ["on", "off", "cycle"]) {
        out.push(h("button", { class: "power", onclick: () => action(() => api("POST", `/api/v1/boards/${enc}/power`, { action: a })) }, "Power " + a));
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
  render(h("h1", {}, "Queue"),
    h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ["#", "Job", "Spec", "Firmware", "State", "Board", "ETA", "Submitter", "Priority", ""].map((c) => h("th", {}, c)))),
      body)),
    h("h2", {}, "Recent jobs"),
    h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Job", "Spec", "Firmware", "State", "Board", "Ended", "Submitter"].map((c) => h("th", {}, c)))),
      recent)));
  let lastIDs = null;
  const loadRecent = async () => {
    const js = await api("GET", "/api/v1/jobs?state=passed,failed,error,cancelled&limit=30");
    fill(recent, ...js.map((j) => h("tr", {},
      h("td", {}, link("/jobs/" + j.id, j.id)), h("td", {}, j.spec), h("td", { class: "small" }, fwText(j.firmware)),
      h("td", {}, badge(j.state)), h("td", {}, j.board || ""), h("td", {}, when(j.ended)), h("td", { class: "small" }, j.submitter))));
  };
  const live = new Live(() => "/api/v1/live", {
    onmessage: (data) => {
      const snap = JSON.parse(data);
      const q = snap.queue.slice().sort((a, b) => (a.state === b.state ? (a.position || 0) - (b.position || 0) : a.state === "running" ? -1 : 1));
      fill(body, ...(q.length ? q.map(queueRow) : [h("tr", {}, h("td", { colspan: 10, class: "muted" }, "The queue is empty."))]));
      const ids = q.map((j) => j.id).join(",");
      if (ids !== lastIDs) { lastIDs = ids; action(loadRecent); }
    },
  });
  return () => live.stop();
}

function fwText(fw) {
  return (fw.version ? fw.version + " " : "") + short(fw.sha256);
}

function queueRow(j) {
  return h("tr", { "data-job": j.id },
    h("td", {}, j.position || ""),
    h("td", {}, link("/jobs/" + j.id, j.id)),
    h("td", {}, j.spec),
    h("td", { class: "small" }, fwText(j.firmware)),
    h("td", {}, badge(j.state)),
    h("td", {}, j.board ? link("/boards/" + encodeURIComponent(j.board), j.board) : ""),
    h("td", {}, eta(j.eta)),
    h("td", { class: "small" }, j.submitter),
    h("td", {}, j.priority),
    h("td", {}, can("submitter") ? h("button", { class: "cancel", onclick: () => action(() => api("POST", `/api/v1/jobs/${j.id}/cancel`)) }, "Cancel") : ""));
}

// job page: tests and steps live, measurements, console, attempts.
async function pageJob(id) {
  let job;
  try {
    job = await api("GET", "/api/v1/jobs/" + encodeURIComponent(id));
  } catch (e) {
    render(h("h1", {}, "Job " + id), h("p", { class: "error" }, e.message));
    return;
  }
  const state = h("span", { id: "job-state" }, badge(job.state));
  const reason = h("p", { class: "muted", id: "job-reason" }, job.reason || "");
  const info = h("dl", { class: "info" });
  const tests = h("div", { id: "tests", class: "tests" });
  const meas = h("tbody", { id: "measurements" });
  const attempts = h("tbody", { id: "attempts" });
  const con = consoleBox("console");
  const cancel = h("button", { class: "cancel", id: "job-cancel", onclick: () => action(() => api("POST", `/api/v1/jobs/${job.id}/cancel`)) }, "Cancel");
  render(
    h("h1", {}, "Job ", h("span", { class: "mono" }, job.id), " ", state),
    reason, info, provenanceBox(job),
    h("p", {}, link(`/api/v1/jobs/${job.id}/junit.xml`, "JUnit XML"), " · ", link(`/api/v1/jobs/${job.id}/console`, "raw console"),
      " · ", link(`/compare?spec=${encodeURIComponent(job.spec)}&candidate=${job.firmware.sha256}`, "compare"),
      " · ", link(`/trends?spec=${encodeURIComponent(job.spec)}`, "trends"),
      can("submitter") ? [" ", cancel] : null),
    h("div", { class: "cols" },
      h("section", {}, h("h2", {}, "Tests"), tests),
      h("section", {}, h("h2", {}, "Measurements"), h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Test", "Name", "Value", "Limits", "Verdict"].map((c) => h("th", {}, c)))), meas)))),
    h("h2", {}, "Console"), con.el,
    h("h2", {}, "Attempts"),
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["#", "Board", "State", "Started", "Ended", "Reason"].map((c) => h("th", {}, c)))), attempts)));

  const showInfo = (j) => {
    fill(info,
      h("dt", {}, "Spec"), h("dd", {}, j.spec),
      h("dt", {}, "Firmware"), h("dd", { class: "mono" }, fwText(j.firmware)),
      h("dt", {}, "Board"), h("dd", {}, j.board ? link("/boards/" + encodeURIComponent(j.board), j.board) : "—"),
      h("dt", {}, "Submitter"), h("dd", {}, j.submitter),
      h("dt", {}, "Priority"), h("dd", {}, j.priority),
      j.position ? [h("dt", {}, "Position"), h("dd", {}, j.position)] : null,
      j.eta ? [h("dt", {}, j.state === "queued" ? "Starts" : "Ends"), h("dd", {}, eta(j.eta))] : null,
      h("dt", {}, "Created"), h("dd", {}, when(j.created)));
    fill(attempts, ...j.attempts.map((a) => h("tr", {},
      h("td", {}, a.n), h("td", {}, a.board), h("td", {}, badge(a.state)), h("td", {}, when(a.started)), h("td", {}, when(a.ended)), h("td", { class: "small" }, a.reason || ""))));
    cancel.hidden = !["queued", "running"].includes(j.state);
  };
  showInfo(job);

  // Tests and steps, keyed by phase/test/attempt.
  const testEls = new Map();
  const testEl = (phase, name, attempt) => {
    const key = `${phase}/${name}`;
    let t = testEls.get(key);
    if (!t) {
      const steps = h("ol", { class: "steps" });
      const st = badge("pending");
      const msg = h("div", { class: "small msg" });
      const el = h("div", { class: "test", "data-test": name }, h("div", { class: "test-head" }, st, " ", h("b", {}, phase === "test" ? name : phase), h("span", { class: "muted small att" })), msg, steps);
      if (phase === "setup") tests.prepend(el); else tests.append(el);
      t = { el, st, steps, msg, stepEls: new Map(), att: el.querySelector(".att") };
      testEls.set(key, t);
    }
    if (attempt > 1) t.att.textContent = ` attempt ${attempt}`;
    return t;
  };
  let lastSeq = 0, final = false;
  const handle = (e) => {
    lastSeq = e.seq;
    const d = e.data;
    switch (e.type) {
      case "state": {
        fill(state, badge(d.state));
        reason.textContent = d.reason || "";
        if (d.state === "running" && d.board) con.marker(`attempt ${d.attempt || 1} on ${d.board}`, "33");
        if (["passed", "failed", "error", "cancelled"].includes(d.state)) {
          final = true;
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
        break;
      }
      case "test_finished": {
        const t = testEl(d.phase, d.test, d.attempt);
        const nb = badge(d.outcome); t.st.replaceWith(nb); t.st = nb;
        t.msg.textContent = d.message || "";
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
          s.li.querySelector(".msg").textContent = d.message ? " — " + d.message : ` (${Math.round(d.duration_ms)} ms)`;
        }
        break;
      }
      case "measurement": {
        const m = d.measurement;
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
        con.term.write(`\x1b[2m[${d.source}] ${d.line}\x1b[0m\r\n`);
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

// board page: live console with typing for the holder, state, controls.
function pageBoard(name) {
  const enc = encodeURIComponent(name);
  const head = h("div", { id: "board-head" });
  const controls = h("div", { class: "actions", id: "board-controls" });
  const recent = h("tbody", { id: "board-jobs" });
  const history = h("tbody", { id: "board-history" });
  const con = consoleBox("console");
  const mode = h("p", { class: "small", id: "term-mode" });
  render(h("h1", {}, "Board ", name), head, controls,
    h("h2", {}, "Console"), mode, con.el,
    h("h2", {}, "Recent attempts"),
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["Job", "Spec", "Firmware", "State", "Ended"].map((c) => h("th", {}, c)))), recent)),
    h("h2", {}, "History"),
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["When", "What", "Who", "Detail"].map((c) => h("th", {}, c)))), history)));

  let board = null, you = "", lastJobs = "";
  const holding = () => board && you && board.holder === you;
  const showMode = () => {
    mode.textContent = holding() ? "You hold this board: your keystrokes go to it." :
      board && board.holder ? `Read-only: held by ${board.holder}.` : "Read-only: hold the board to type.";
    mode.className = "small " + (holding() ? "holding" : "muted");
  };
  const loadJobs = async () => {
    const js = await api("GET", "/api/v1/jobs?limit=300");
    const mine = js.filter((j) => j.board === name || (j.attempts || []).some((a) => a.board === name)).slice(0, 20);
    fill(recent, ...mine.map((j) => h("tr", {},
      h("td", {}, link("/jobs/" + j.id, j.id)), h("td", {}, j.spec), h("td", { class: "small" }, fwText(j.firmware)),
      h("td", {}, badge(j.state)), h("td", {}, when(j.ended || j.started)))));
    const hs = await api("GET", `/api/v1/boards/${enc}/history`);
    fill(history, hs.length ? hs.map((r) => h("tr", {}, h("td", {}, when(r.at)), h("td", {}, r.action), h("td", { class: "small" }, r.actor), h("td", { class: "small" }, r.detail || "")))
      : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No maintenance, holds or power switching yet.")));
  };
  const snap = new Live(() => "/api/v1/live", {
    onmessage: (data) => {
      const s = JSON.parse(data);
      board = s.boards.find((b) => b.name === name);
      if (!board) { fill(head, h("p", { class: "error" }, "No such board.")); return; }
      fill(head, h("dl", { class: "info" },
        h("dt", {}, "Type"), h("dd", {}, board.type, board.emulated ? " (emulated)" : ""),
        h("dt", {}, "Tags"), h("dd", {}, tagText(board.tags) || "—"),
        h("dt", {}, "State"), h("dd", { id: "board-state" }, badge(board.state), " since ", when(board.since), board.reason ? h("div", { class: "small muted" }, board.reason) : null),
        h("dt", {}, "Health"), h("dd", {}, health(board.health)),
        (board.flags || []).length ? [h("dt", {}, "Flags"), h("dd", {}, board.flags.map((f) => h("div", { class: "flag small" }, f)))] : null,
        h("dt", {}, "Job"), h("dd", {}, board.job ? link("/jobs/" + board.job, board.job) : "—"),
        board.holder ? [h("dt", {}, "Held by"), h("dd", {}, board.holder, " until ", when(board.held_until))] : null));
      fill(controls, ...boardControls(board, true));
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
      if (m.type === "marker") con.marker(markerText(m), markerColour[m.kind] || "36");
      else if (m.type === "hello") { you = m.you; if (me) me.actor = m.you; showMode(); fill(controls, ...(board ? boardControls(board, true) : [])); }
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
  const js = await api("GET", "/api/v1/jobs?state=passed,failed&limit=1000");
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
  const fwOpts = fws.map((f) => [f.sha256, `${f.version ? f.version + " " : ""}${short(f.sha256)} (${f.jobs} job${f.jobs > 1 ? "s" : ""})`]);
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
    out.append(h("p", { class: "muted" }, "No finished jobs to compare yet."));
    return;
  }
  if (!q.get("base") || !q.get("candidate")) return;
  let c;
  try {
    c = await api("GET", `/api/v1/compare?spec=${encodeURIComponent(spec)}&base=${base}&candidate=${cand}`);
  } catch (e) {
    out.append(h("p", { class: "error" }, e.message));
    return;
  }
  const count = (v) => c.tests.filter((t) => t.verdict === v).length;
  const side = (s, label) => h("div", { class: "card side" }, h("h3", {}, label, " ", s.version || "", " ", h("span", { class: "mono small" }, short(s.sha256))),
    h("p", {}, `${s.jobs} jobs: `, Object.entries(s.states).map(([k, v]) => [badge(k), ` ${v} `])));
  const nf = count("new-failure");
  out.append(
    h("p", { class: "verdict " + (nf ? "bad" : "good"), id: "compare-verdict" },
      nf ? `Regression: ${nf} new failure${nf > 1 ? "s" : ""}` : "No new failures",
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
        h("td", {}, link(`/trends?spec=${encodeURIComponent(spec)}&measure=${encodeURIComponent(m.name)}`, "trend"))))))));
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
  const measure = q.get("measure") || names[0] || "";
  const chart = h("div", { id: "chart", class: "chart" });
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
  render(h("h1", {}, "Trends"), form, chart,
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["When", "Firmware", "Board", "Value", "Verdict", "Job"].map((c) => h("th", {}, c)))), table)));
  if (!spec || !measure) {
    chart.append(h("p", { class: "muted" }, "No measurements yet."));
    return;
  }
  const pts = await api("GET", `/api/v1/trends?spec=${encodeURIComponent(spec)}&measure=${encodeURIComponent(measure)}`);
  fill(table, ...pts.slice().reverse().map((p) => h("tr", { class: "v-" + p.verdict },
    h("td", {}, when(p.at)), h("td", { class: "small" }, (p.version || "") + " " + short(p.sha256)), h("td", {}, p.board),
    h("td", { class: "num" }, num(p.value, p.unit)), h("td", {}, badge(p.verdict)), h("td", {}, link("/jobs/" + p.job, p.job)))));
  if (!pts.length) {
    chart.append(h("p", { class: "muted" }, "No values."));
    return;
  }
  const unit = pts[0].unit || "";
  const xs = pts.map((p) => new Date(p.at).getTime() / 1000);
  const ys = pts.map((p) => p.value);
  const lim = (k) => pts.map((p) => (p[k] == null ? null : p[k]));
  const series = [{}, { label: `${measure}${unit ? " (" + unit + ")" : ""}`, stroke: "#2f81f7", width: 2, points: { size: 7, fill: "#2f81f7" },
    value: (u, v, s, i) => (v == null ? "—" : `${num(v, unit)} · ${pts[i] ? (pts[i].version || short(pts[i].sha256)) : ""}`) }];
  const data = [xs, ys];
  for (const [k, colour] of [["min", "#d1242f"], ["max", "#d1242f"]]) {
    if (pts.some((p) => p[k] != null)) { series.push({ label: k, stroke: colour, dash: [6, 4], width: 1, points: { show: false } }); data.push(lim(k)); }
  }
  const width = () => Math.max(280, chart.clientWidth || 600);
  const plot = new uPlot({ width: width(), height: 320, series, axes: [{}, { label: unit }], scales: { x: { time: true } } }, data, chart);
  const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: 320 }));
  ro.observe(chart);
  return () => { ro.disconnect(); plot.destroy(); };
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
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === p || (a.getAttribute("href") === "/queue" && p.startsWith("/jobs/"))));
  if (p === "/login") { pageLogin(); document.title = "hilfarm · log in"; return; }
  if (!me) {
    try { setMe(await api("GET", "/api/v1/me")); } catch { return; }
  }
  let m, page;
  if (p === "/") page = () => pageFarm();
  else if (p === "/queue") page = () => pageQueue();
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
  if (!me) { fill(who); return; }
  fill(who, h("span", { class: "small" }, `${me.name} · ${me.role} `),
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
