// Campaigns (issue 16): the job page's view of a repeated test (pass rate
// with its 95% interval, histograms, failing iterations with their console
// slices and cut delays, each board's share when spread), the spread job's
// shards, and the campaign parts of Compare and Trends. Self-contained: it
// builds its own elements (text only, never HTML) from the API's JSON
// (runner.Campaign inside the job's result; docs/api.md "Campaigns").

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.setAttribute("class", v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  setAttrs(e, attrs);
  return e;
}

function badge(state) {
  return el("span", { class: "badge s-" + state }, state);
}

function link(href, text) {
  return el("a", { href }, text);
}

// pct writes a share (0..1) as a percentage with up to two decimals.
export function pct(v) {
  if (v == null || Number.isNaN(v)) return "—";
  return (Math.round(v * 10000) / 100) + "%";
}

function num(v) {
  if (v == null) return "—";
  const a = Math.abs(v);
  return String(a >= 100 ? Math.round(v) : a >= 1 ? Math.round(v * 10) / 10 : Math.round(v * 1000) / 1000);
}

function withUnit(v, unit) {
  return num(v) + (unit ? " " + unit : "");
}

// passRateText: "97.5% (195 of 200 passed; 95% interval 94.3–98.9%)".
export function passRateText(c) {
  return `${pct(c.pass_rate)} (${c.passed} of ${c.iterations} passed; 95% interval ${pct(c.pass_rate_low)}–${pct(c.pass_rate_high)})`;
}

// passRateBar draws the pass rate, its interval and the minimum on a 0–100% scale.
function passRateBar(c) {
  const s = svg("svg", { class: "rate-bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" });
  s.append(svg("rect", { class: "rate-track", x: 0, y: 3, width: 100, height: 4 }));
  s.append(svg("rect", { class: "rate-ci", x: 100 * c.pass_rate_low, y: 1, width: Math.max(0.5, 100 * (c.pass_rate_high - c.pass_rate_low)), height: 8 }));
  s.append(svg("rect", { class: "rate-point", x: Math.min(99.2, 100 * c.pass_rate), y: 0, width: 0.8, height: 10 }));
  if (c.min_pass_rate != null) s.append(svg("rect", { class: "rate-min", x: Math.min(99.6, 100 * c.min_pass_rate), y: 0, width: 0.4, height: 10 }));
  return s;
}

// histogram is a distribution (runner.Stats) as bars with its summary in
// text: the figure's caption and the image's label say the same.
export function histogram(title, st, id) {
  const unit = st.unit || "";
  const summary = `${st.n} values: min ${withUnit(st.min, unit)}, median ${withUnit(st.median, unit)}, p95 ${withUnit(st.p95, unit)}, max ${withUnit(st.max, unit)}`;
  const buckets = st.histogram || [];
  const top = Math.max(1, ...buckets.map((b) => b.count));
  const w = 200, hgt = 60;
  const s = svg("svg", { class: "hist", viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: "none", role: "img", "aria-label": `${title}: ${summary}` });
  const bw = buckets.length ? w / buckets.length : w;
  buckets.forEach((b, i) => {
    const bh = b.count ? Math.max(1, (hgt - 2) * b.count / top) : 0;
    const r = svg("rect", { x: i * bw + 0.5, y: hgt - bh, width: Math.max(0.5, bw - 1), height: bh, class: "bar" });
    const t = svg("title", {});
    t.textContent = `${withUnit(b.lo, unit)} – ${withUnit(b.hi, unit)}: ${b.count}`;
    r.append(t);
    s.append(r);
  });
  return el("figure", { class: "hist-fig card", id },
    el("figcaption", {}, el("b", {}, title), " ", el("span", { class: "muted small" }, summary)),
    s,
    el("div", { class: "hist-axis small muted" }, el("span", {}, withUnit(st.min, unit)), el("span", {}, withUnit(st.max, unit))));
}

function cutText(ds) {
  return (ds || []).map((d) => `${Math.round(d)} ms`).join(", ");
}

// campaignBox is one campaign test of a job's result.
function campaignBox(job, t, k) {
  const c = t.campaign;
  const id = `campaign-${k}`;
  const planned = c.planned ? `${c.iterations} of ${c.planned} iterations` : `${c.iterations} iterations`;
  const rate = el("div", { class: "rate", id: id + "-rate" },
    el("span", { class: "rate-value" }, pct(c.pass_rate)),
    el("span", {}, ` pass rate · ${c.passed} of ${c.iterations} passed · 95% interval `, el("b", {}, `${pct(c.pass_rate_low)}–${pct(c.pass_rate_high)}`),
      ` · minimum ${pct(c.min_pass_rate)}`),
    passRateBar(c));
  const facts = el("p", { class: "small muted" }, planned, ` · stopped by ${c.stopped_by || "—"}`,
    c.failed ? ` · ${c.failed} failed` : null, c.errors ? ` · ${c.errors} errors` : null, c.cancelled ? ` · ${c.cancelled} cancelled` : null,
    ` · seed ${c.seed}`, c.elided ? ` · ${c.elided} passing iterations not listed` : null);
  const hists = [];
  if (c.iteration_ms && c.iteration_ms.n) hists.push(histogram("Iteration time", c.iteration_ms, id + "-hist-iteration"));
  for (const [name, st] of Object.entries(c.measures || {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (st.n) hists.push(histogram(name, st, `${id}-hist-${name}`));
  }
  if (c.cut_delay_ms && c.cut_delay_ms.n) hists.push(histogram("Cut delay", c.cut_delay_ms, id + "-hist-cut"));
  const boards = (c.boards || []).length ? el("div", { class: "scroll" }, el("table", { class: "campaign-boards", id: id + "-boards" },
    el("caption", { class: "small muted" }, "Each board's share"),
    el("thead", {}, el("tr", {}, ["Board", "Iterations", "Passed", "Pass rate"].map((x) => el("th", { scope: "col" }, x)))),
    el("tbody", {}, c.boards.map((b) => el("tr", {}, el("td", {}, link("/boards/" + encodeURIComponent(b.board), b.board)),
      el("td", { class: "num" }, b.iterations), el("td", { class: "num" }, b.passed), el("td", { class: "num" }, pct(b.pass_rate))))))) : null;
  const bad = (c.iteration_list || []).filter((it) => it.outcome !== "passed");
  const spec = job.spec_filename || "SPEC";
  const failing = bad.length ? el("div", { class: "scroll" }, el("table", { class: "campaign-failing", id: id + "-failing" },
    el("caption", { class: "small muted" }, `Iterations that did not pass (${bad.length}${c.failed + c.errors + (c.cancelled || 0) > bad.length ? " listed" : ""})`),
    el("thead", {}, el("tr", {}, ["#", "Outcome", "Board", "Cut delays", "Took", "Why and console"].map((x) => el("th", { scope: "col" }, x)))),
    el("tbody", {}, bad.map((it) => el("tr", { class: "iteration", "data-n": it.n },
      el("td", { class: "num" }, it.n), el("td", {}, badge(it.outcome)), el("td", {}, it.board || job.board || "—"),
      el("td", { class: "small mono" }, cutText(it.cut_delays_ms) || "—"),
      el("td", { class: "num" }, `${Math.round(it.duration_ms)} ms`),
      el("td", { class: "small" },
        el("div", { class: "msg" }, it.message || ""),
        (it.cut_delays_ms || []).length ? el("div", { class: "muted" }, "replay: ", el("code", {}, `hilfarm run --replay-cut ${Math.round(it.cut_delays_ms[0])}ms ${spec}`)) : null,
        it.console ? el("details", { class: "slice" }, el("summary", {}, "console slice"), el("pre", { class: "mono small" }, it.console)) : null)))))) :
    el("p", { class: "muted small", id: id + "-failing" }, "Every listed iteration passed.");
  return el("section", { class: "campaign card", id, "data-test": t.name },
    el("h3", {}, badge(t.outcome), " ", t.name),
    rate, facts,
    hists.length ? el("div", { class: "hists" }, hists) : null,
    boards, failing);
}

// campaignSection is the job page's "Campaigns" block: one box per campaign
// test of the job's result; null when the job has none (yet).
export function campaignSection(job) {
  let res = job.result;
  if (typeof res === "string") { try { res = JSON.parse(res); } catch { res = null; } }
  const tests = ((res && res.tests) || []).filter((t) => t.campaign);
  if (!tests.length) return null;
  return el("div", { id: "campaigns" }, el("h2", {}, "Campaigns"), tests.map((t, k) => campaignBox(job, t, k)));
}

// shardsSection lists a spread job's shards (each a job of its own, with
// its live console), or names the spread job of a shard.
export function shardsSection(job) {
  if (job.shard_of) {
    return el("p", { id: "shard-of", class: "card small" }, `Shard ${job.shard_of.index + 1} of ${job.shard_of.of} of the spread job `,
      link("/jobs/" + encodeURIComponent(job.shard_of.parent), job.shard_of.parent),
      `: it runs iterations ${[0, 1, 2].map((k) => job.shard_of.index + 1 + k * job.shard_of.of).join(", ")}, … of its campaign.`);
  }
  if (!job.spread) return null;
  const sh = job.spread.shards || [];
  return el("div", { id: "shards" }, el("h2", {}, "Shards"),
    el("p", { class: "small muted" }, sh.length ? `Spread over ${sh.length} boards (asked for up to ${job.spread.spread}); each shard is a job with its own console.` :
      `Spread over up to ${job.spread.spread} matching boards once it starts.`),
    sh.length ? el("div", { class: "scroll" }, el("table", { id: "shard-list" },
      el("thead", {}, el("tr", {}, ["Shard", "State", "Board", "Attempts", "Reason"].map((x) => el("th", { scope: "col" }, x)))),
      el("tbody", {}, sh.map((s) => el("tr", {}, el("td", {}, link("/jobs/" + encodeURIComponent(s.id), `${s.index + 1}/${sh.length}`)),
        el("td", {}, badge(s.state)), el("td", {}, s.board ? link("/boards/" + encodeURIComponent(s.board), s.board) : "—"),
        el("td", { class: "num" }, s.attempts), el("td", { class: "small" }, s.reason || "")))))) : null);
}

function delta(v, unit, sign = 1) {
  if (v == null) return "";
  const cls = v * sign > 0 ? "up" : v * sign < 0 ? "down" : "";
  return el("span", { class: cls }, (v > 0 ? "+" : "") + withUnit(v, unit));
}

// compareSection is Compare's "Campaigns" block.
export function compareSection(spec, list) {
  if (!list || !list.length) return null;
  const side = (s) => (s ? [el("div", {}, el("b", {}, pct(s.pass_rate))), el("div", { class: "small muted" }, `${s.passed}/${s.iterations} · ${pct(s.pass_rate_low)}–${pct(s.pass_rate_high)}`)] : "—");
  const rows = list.map((c) => el("tr", { class: "c-" + c.verdict },
    el("td", {}, c.name), el("td", {}, side(c.baseline)), el("td", {}, side(c.candidate)),
    el("td", { class: "num" }, c.pass_rate_delta == null ? "" : delta(100 * c.pass_rate_delta, "pts", -1)),
    el("td", {}, badge(c.verdict)),
    el("td", {}, link(`/trends?spec=${encodeURIComponent(spec)}&campaign=${encodeURIComponent(c.name)}`, "trend"))));
  const dists = list.flatMap((c) => (c.distributions || []).map((d) => el("tr", {},
    el("td", {}, c.name), el("td", {}, d.name),
    el("td", { class: "num" }, d.baseline ? `${withUnit(d.baseline.median, d.unit)} / ${withUnit(d.baseline.p95, d.unit)}` : "—"),
    el("td", { class: "num" }, d.candidate ? `${withUnit(d.candidate.median, d.unit)} / ${withUnit(d.candidate.p95, d.unit)}` : "—"),
    el("td", { class: "num" }, delta(d.median_delta, d.unit)), el("td", { class: "num" }, delta(d.p95_delta, d.unit)))));
  const cuts = list.filter((c) => c.candidate && (c.candidate.failing_cut_delays_ms || []).length);
  return el("div", { id: "compare-campaigns" },
    el("h2", {}, "Campaigns"),
    el("p", { class: "small muted" }, "Pass rates pooled over each candidate's jobs, with 95% Wilson intervals: worse or better only when the intervals do not overlap."),
    el("div", { class: "scroll" }, el("table", { id: "compare-campaign-rates" },
      el("thead", {}, el("tr", {}, ["Campaign", "A pass rate", "B pass rate", "Δ", "Verdict", ""].map((x) => el("th", { scope: "col" }, x)))),
      el("tbody", {}, rows))),
    dists.length ? el("div", { class: "scroll" }, el("table", { id: "compare-campaign-dists" },
      el("caption", { class: "small muted" }, "Distributions: median / p95 on each candidate, and their change"),
      el("thead", {}, el("tr", {}, ["Campaign", "Distribution", "A median / p95", "B median / p95", "Δ median", "Δ p95"].map((x) => el("th", { scope: "col" }, x)))),
      el("tbody", {}, dists))) : null,
    cuts.map((c) => el("p", { class: "small" }, el("b", {}, c.name), ": B failed at cut delays ", el("span", { class: "mono" }, cutText(c.candidate.failing_cut_delays_ms)))));
}

// campaignTrend draws a campaign's pass rate (with its interval) and one
// distribution's median and p95 across candidates, one point per job in
// submission order, grouped by candidate; a click on a point opens its job.
export async function campaignTrend({ spec, test, stat, stats, api, uPlot, go, mount, onStat }) {
  const pts = await api("GET", `/api/v1/trends/campaign?spec=${encodeURIComponent(spec)}&test=${encodeURIComponent(test)}&stat=${encodeURIComponent(stat)}`);
  const chart = el("div", { id: "campaign-chart", class: "chart", role: "img", "aria-label": `pass rate of ${test} with its 95% interval, and the median and p95 of ${stat}, per job across candidates` });
  const picker = el("label", {}, "Distribution ", el("select", { id: "campaign-stat", name: "campaign-stat", onchange: (e) => onStat(e.target.value) },
    stats.map((s) => { const o = el("option", { value: s }, s); if (s === stat) o.selected = true; return o; })));
  const rows = el("tbody", { id: "campaign-points" }, pts.slice().reverse().map((p) => el("tr", {},
    el("td", {}, link("/jobs/" + p.job, p.job)), el("td", { class: "small" }, [p.firmware, p.version].filter(Boolean).join(" "), " ", el("span", { class: "mono" }, p.sha256.slice(0, 12))),
    el("td", { class: "num" }, pct(p.pass_rate)), el("td", { class: "num small" }, `${pct(p.pass_rate_low)}–${pct(p.pass_rate_high)}`),
    el("td", { class: "num" }, p.stat ? withUnit(p.stat.median, p.stat.unit) : "—"), el("td", { class: "num" }, p.stat ? withUnit(p.stat.p95, p.stat.unit) : "—"),
    el("td", {}, badge(p.job_state)))));
  mount.replaceChildren(picker, chart, el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, ["Job", "Firmware", "Pass rate", "95% interval", "Median", "p95", "State"].map((x) => el("th", { scope: "col" }, x)))), rows)));
  if (!pts.length) {
    chart.append(el("p", { class: "muted" }, "No finished runs of this campaign yet."));
    return () => {};
  }
  const first = new Map();
  pts.forEach((p, i) => { if (!first.has(p.sha256)) first.set(p.sha256, i); });
  const order = pts.map((p, i) => [p, i]).sort((a, b) => first.get(a[0].sha256) - first.get(b[0].sha256) || a[1] - b[1]).map((x) => x[0]);
  const xs = order.map((_, i) => i + 1);
  const unit = (order.find((p) => p.stat) || {}).stat?.unit || "";
  const col = (f) => order.map((p) => f(p));
  const data = [xs, col((p) => 100 * p.pass_rate), col((p) => 100 * p.pass_rate_low), col((p) => 100 * p.pass_rate_high),
    col((p) => (p.stat ? p.stat.median : null)), col((p) => (p.stat ? p.stat.p95 : null))];
  const series = [{ label: "job #", value: (u, v) => (v == null ? "—" : order[v - 1] ? order[v - 1].job : "") },
    { label: "pass rate %", stroke: "#1a7f37", width: 2, scale: "%", points: { size: 8, fill: "#1a7f37" } },
    { label: "95% low", stroke: "#1a7f3780", dash: [4, 3], width: 1, scale: "%", points: { show: false } },
    { label: "95% high", stroke: "#1a7f3780", dash: [4, 3], width: 1, scale: "%", points: { show: false } },
    { label: `${stat} median`, stroke: "#2f81f7", width: 2, scale: "v", points: { size: 6, fill: "#2f81f7" } },
    { label: `${stat} p95`, stroke: "#bf3989", width: 2, scale: "v", points: { size: 6, fill: "#bf3989" } }];
  const width = () => Math.max(280, chart.clientWidth || 600);
  const plot = new uPlot({ width: width(), height: 320, series, bands: [{ series: [3, 2], fill: "#1a7f3722" }],
    axes: [{ label: "jobs by candidate, in submission order", values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? v : "")) },
      { scale: "%", label: "pass rate %" }, { scale: "v", side: 1, label: unit, grid: { show: false } }],
    scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] }, "%": { range: [0, 100] } }, cursor: { points: { size: 10 } } }, data, chart);
  plot.over.addEventListener("click", () => {
    const i = plot.cursor.idx;
    if (i != null && order[i]) go("/jobs/" + order[i].job);
  });
  const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: 320 }));
  ro.observe(chart);
  return () => { ro.disconnect(); plot.destroy(); };
}
