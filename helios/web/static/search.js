// The search page: a query over the recent index or a history index, a page
// of hits at a time, with what matched highlighted; when the range starts
// before what the recent index keeps, a button asks archie for a history index.
(function () {
  "use strict";
  const H = window.heliosHistory;
  const $ = (id) => document.getElementById(id);
  const form = $("s-form"), results = $("s-results"), more = $("s-more");
  const state = { params: null, next: null, shown: 0, total: null, highlight: null, history: null, busy: false,
                  pending: null, searches: 0 };
  window.heliosSearch = state;   // for tests: state.searches counts finished searches

  // --- highlighting: terms are whole words (ASCII case-insensitive), substrings exact.
  const WORD = "A-Za-z0-9\\u0080-\\uffff";
  const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  function highlighter(needles) {
    const parts = [];
    for (const t of needles.terms) parts.push("(?<![" + WORD + "])" + escapeRe(t) + "(?![" + WORD + "])");
    for (const s of needles.substrings) parts.push(escapeRe(s));
    if (!parts.length) return null;
    const exact = new RegExp(needles.substrings.map(escapeRe).join("|") || "(?!)", "g");
    const words = needles.terms.length ? new RegExp(parts.slice(0, needles.terms.length).join("|"), "gi") : null;
    return { exact, words };
  }
  function ranges(text, re) {
    const out = [];
    if (!re) return out;
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m[0].length === 0) { re.lastIndex++; continue; }
      out.push([m.index, m.index + m[0].length]);
    }
    return out;
  }
  function marked(text, hl) {
    const span = document.createElement("span");
    span.className = "m";
    if (!hl) { span.textContent = text; return span; }
    const rs = ranges(text, hl.exact).concat(ranges(text, hl.words)).sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [s, e] of rs) {
      if (e <= at) continue;
      const from = Math.max(s, at);
      if (from > at) span.appendChild(document.createTextNode(text.slice(at, from)));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(from, e);
      span.appendChild(mark);
      at = e;
    }
    if (at < text.length) span.appendChild(document.createTextNode(text.slice(at)));
    return span;
  }

  function cell(cls, text) {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }
  function row(h) {
    const div = document.createElement("div");
    const sev = h.severity_code === null ? "u" : h.severity_code;
    div.className = "hit s" + sev;
    div.title = (h.source ? h.source + (h.offset !== null ? " @" + h.offset : "") + " \u2013 " : "") + "id " + h.id;
    // The fields, as key:value finds them (a tooltip: plain text, never markup).
    if (h.fields && h.fields.length) div.title += "\n" + h.fields.map((kv) => kv[0] + ":" + kv[1]).join("\n");
    div.append(cell("t", h.time), cell("h", h.host || "-"), cell("a", h.app || "-"), cell("v", h.severity),
               marked(h.message, state.highlight));
    return div;
  }

  function showError(text) {
    $("s-error").textContent = text || "";
    $("s-error").hidden = !text;
  }

  function paramsFromForm() {
    const p = new URLSearchParams();
    const get = (id) => $(id).value.trim();
    p.set("env", get("s-env"));
    if (get("s-start")) p.set("start", get("s-start"));
    if (get("s-end")) p.set("end", get("s-end"));
    let q = get("s-q");
    if (get("s-host")) q += " host:" + get("s-host");
    if (get("s-app")) q += " app:" + get("s-app");
    if ($("s-severity").value) q += " sev:" + $("s-severity").value;
    p.set("q", q.trim());
    if (state.history) p.set("history", state.history);
    return p;
  }

  function summary(data) {
    const s = $("s-summary");
    s.textContent = "";
    const b = (t) => { const e = document.createElement("b"); e.textContent = t; return e; };
    const total = state.total === null ? "" : " of " + state.total.toLocaleString("en");
    s.append(b(state.shown.toLocaleString("en")), document.createTextNode(total + " event(s) of "),
             b(data.environment), document.createTextNode(" from " + data.start + " to " + data.end +
             (data.query ? " matching " : "")));
    if (data.query) s.append(b(data.query));
    const src = $("s-source");
    src.textContent = "";
    if (data.source.kind === "history") {
      src.append(document.createTextNode("history index "), b(data.source.index), document.createTextNode(" \u2013 "));
      const back = document.createElement("a");
      back.href = "#"; back.id = "s-recent"; back.textContent = "back to the recent index";
      back.onclick = (e) => { e.preventDefault(); state.history = null; run(); };
      src.append(back);
    } else {
      src.append(document.createTextNode("recent index "), b(data.source.index));
    }
  }

  function older(data) {
    const box = $("s-older");
    const rec = data.recent;
    if (!rec || rec.covers || data.source.kind === "history") { box.hidden = true; return; }
    $("s-older-text").textContent = "This range starts before what the recent index keeps (" +
      (rec.first_day ? data.environment + " from " + rec.first_day + " on" : "no events of " + data.environment) +
      "): older events are only in the archive.";
    $("s-history").hidden = false;
    $("s-history-progress").hidden = true;
    $("s-history-open").hidden = true;
    box.hidden = false;
    state.older = { environment: data.environment, start: String(data.start_ns / 1e9), end: String(data.end_ns / 1e9) };
  }

  async function fetchPage(params) {
    const data = await H.api("/api/search?" + params.toString());
    state.highlight = highlighter(data.needles);
    for (const h of data.hits) results.appendChild(row(h));
    state.shown += data.hits.length;
    state.next = data.next;
    more.hidden = !data.next;
    return data;
  }

  async function run() {
    if (state.busy) { state.pending = true; return; }
    state.busy = true;
    showError("");
    const params = paramsFromForm();
    state.params = params;
    state.next = null; state.shown = 0;
    results.textContent = "";
    history.replaceState(null, "", "?" + params.toString());
    try {
      const first = new URLSearchParams(params); first.set("count", "1");
      const data = await fetchPage(first);
      state.total = data.total;
      if (!$("s-start").value) $("s-start").value = data.start.replace(".000Z", "Z");
      if (!$("s-end").value) $("s-end").value = data.end.replace(".000Z", "Z");
      summary(data);
      older(data);
      if (!data.hits.length) {
        const p = document.createElement("p");
        p.className = "summary"; p.id = "s-none"; p.textContent = "Nothing found.";
        results.appendChild(p);
      }
    } catch (e) {
      showError(e.message);
      $("s-summary").textContent = "";
    } finally {
      state.busy = false;
      state.searches++;
      if (state.pending) { state.pending = false; run(); }
    }
  }

  more.onclick = async () => {
    if (!state.next || state.busy) return;
    state.busy = true;
    const p = new URLSearchParams(state.params); p.set("after", state.next);
    try {
      const data = await fetchPage(p);
      summary(data);
    } catch (e) { showError(e.message); }
    finally { state.busy = false; state.searches++; }
  };

  // --- asking archie for a history index of the range, and following it to ready.
  async function follow(id) {
    const prog = $("s-history-progress");
    prog.hidden = false;
    for (;;) {
      let r;
      try { r = await H.api("/api/history/" + encodeURIComponent(id)); }
      catch (e) { showError(e.message); return; }
      H.setBar(prog, r);
      prog.querySelector(".label").textContent = H.progressText(r);
      if (r.state === "ready") {
        const a = $("s-history-open");
        a.href = "?history=" + encodeURIComponent(id) + "&q=" + encodeURIComponent($("s-q").value);
        a.onclick = (e) => { e.preventDefault(); state.history = id; run(); };
        a.hidden = false;
        return;
      }
      if (r.state === "failed" || r.state === "expired") return;
      await new Promise((ok) => setTimeout(ok, 500));
    }
  }
  $("s-history").onclick = async () => {
    showError("");
    try {
      const made = await H.api("/api/history", { json: state.older });
      $("s-history").hidden = true;
      follow(made.id);
    } catch (e) { showError(e.message); }
  };

  $("s-preset").onchange = () => {
    const v = $("s-preset").value;
    if (v) { $("s-start").value = v; $("s-end").value = "now"; }
  };
  for (const id of ["s-start", "s-end"]) $(id).addEventListener("input", () => { $("s-preset").value = ""; });
  form.onsubmit = (e) => { e.preventDefault(); run(); };

  // Environments for the picker.
  H.api("/api/environments").then((d) => {
    const list = $("s-envs");
    for (const n of d.environments) { const o = document.createElement("option"); o.value = n; list.appendChild(o); }
    if (!$("s-env").value && d.environments.length === 1) $("s-env").value = d.environments[0];
  }).catch(() => {});

  // The page's address holds the search: open it again, or from a link (archie's "search it").
  const init = new URLSearchParams(location.search);
  $("s-start").value = init.get("start") || "-1h";
  $("s-end").value = init.get("end") || "now";
  $("s-preset").value = init.get("start") ? "" : "-1h";
  for (const [k, id] of [["env", "s-env"], ["q", "s-q"]]) if (init.get(k)) $(id).value = init.get(k);
  if (init.get("history")) {
    state.history = init.get("history");
    if (!init.get("start")) { $("s-start").value = ""; $("s-end").value = ""; $("s-preset").value = ""; }
  }
  if (init.get("env") || init.get("history")) run();
  state.ready = true;
})();
