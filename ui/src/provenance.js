// Provenance of a candidate (issue 17): the job page's signature and SBOM
// status, and the farm page's trust policy. Self-contained: it builds its
// own elements (text only, never HTML) from the API's JSON.

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const FINAL = ["passed", "failed", "error", "cancelled"];

// signatureText says how the candidate's signature stands.
export function signatureText(job) {
  const fw = job.firmware || {};
  if ((job.reason || "").startsWith("farm fault: firmware store")) return ["failed", "failed: the stored firmware no longer matched what was submitted; not flashed"];
  if (fw.signature_status === "verified" && fw.signer) return ["verified", `verified by ${fw.signer.key_id}${fw.signer.comment ? " (" + fw.signer.comment + ")" : ""}`];
  if (fw.signature_status === "not-checked") return ["not-checked", "not checked (the farm's trust mode is off)"];
  return ["unsigned", "unsigned"];
}

// provenanceBox is the job page's "Provenance" block.
export function provenanceBox(job) {
  const fw = job.firmware || {};
  const [kind, text] = signatureText(job);
  const sbom = fw.sbom
    ? [`CycloneDX ${fw.sbom.spec_version}, ${fw.sbom.components} component${fw.sbom.components === 1 ? "" : "s"}`,
      fw.sbom.subject ? ` (${fw.sbom.subject})` : "", " · ",
      el("a", { href: `/api/v1/jobs/${encodeURIComponent(job.id)}/sbom`, id: "sbom-link" }, "download")]
    : ["none"];
  return el("section", { id: "provenance", class: "provenance" },
    el("h2", {}, "Provenance"),
    el("dl", { class: "info" },
      el("dt", {}, "Digest"), el("dd", { class: "mono" }, `sha256:${fw.sha256 || ""}`, fw.size ? ` · ${fw.size} bytes` : ""),
      el("dt", {}, "Signature"), el("dd", { id: "signature-status", class: "sig-" + kind }, text),
      el("dt", {}, "SBOM"), el("dd", { id: "sbom-status" }, sbom),
      FINAL.includes(job.state)
        ? [el("dt", {}, "Verdict"), el("dd", {}, el("a", { href: `/api/v1/jobs/${encodeURIComponent(job.id)}/verdict`, id: "verdict-link" }, "signed verdict statement"), " (check with hilfarm verify-verdict)")]
        : null));
}

// trustBox is the farm page's "Trust policy" block; it fills itself from
// GET /api/v1/trust.
export function trustBox(api) {
  const box = el("section", { id: "trust", class: "provenance" }, el("h2", {}, "Trust policy"), el("p", { class: "muted" }, "loading…"));
  api("GET", "/api/v1/trust").then((t) => {
    const keys = (list) => (list && list.length
      ? el("ul", {}, list.map((k) => el("li", { class: "mono" }, `${k.key_id} ${k.comment || ""} (${k.type})`)))
      : el("span", { class: "muted" }, "no keys"));
    const types = Object.entries(t.board_types || {}).map(([name, p]) =>
      el("tr", {}, el("td", {}, name), el("td", {}, p.mode), el("td", {}, keys(p.keys))));
    // replaceChildren writes a null as the text "null": leave absent parts out.
    box.replaceChildren(...[el("h2", {}, "Trust policy"),
      el("p", { id: "trust-mode" }, `Signed candidates: ${t.mode}`, t.mode === "off" ? "" : ` (SSH or minisign signatures; SSH namespace ${t.namespace})`),
      t.mode === "off" ? null : el("div", {}, "Trusted keys: ", keys(t.keys)),
      types.length ? el("table", {}, el("thead", {}, el("tr", {}, ["Board type", "Mode", "Keys"].map((c) => el("th", {}, c)))), el("tbody", {}, types)) : null,
      el("p", { class: "small" }, "Verdict key: ", el("span", { class: "mono", id: "verdict-key" }, t.verdict_key))].filter((n) => n !== null));
  }).catch((e) => box.replaceChildren(el("h2", {}, "Trust policy"), el("p", { class: "error" }, e.message)));
  return box;
}
