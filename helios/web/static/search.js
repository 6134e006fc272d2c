// The search page: a query over the recent index or a history index, a page
// of hits at a time, with what matched highlighted; when the range starts
// before what the recent index keeps, a button asks archie for a history index.
// Around the hits: a histogram of the range stacked by severity (a drag zooms),
// a sidebar of the top values of fields (a click filters), each hit's context
// (the lines around it in its source), times in UTC or local time. The page's
// address holds the whole search (env, range, query, history, tz), so a copied
// link or a reload shows the same.
(function () {
  "use strict";
  const H = window.heliosHistory;
  const $ = (id) => document.getElementById(id);
  const form = $("s-form"), results = $("s-results"), more = $("s-more");
  const state = { params: null, next: null, shown: 0, total: null, highlight: null, history: null, busy: false,
                  pending: null, seq: 0, searches: 0, histograms: 0, facets: 0, contexts: 0, utc: true, hist: null };
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
  // --- times: UTC (as the server writes them) or this browser's time zone.
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  function timeText(ns) {
    const ms = Math.floor(ns / 1e6);
    const d = new Date(ms);
    if (state.utc) return d.toISOString();
    const off = -d.getTimezoneOffset();
    const sign = off >= 0 ? "+" : "-";
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" +
      pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3) +
      sign + pad(Math.floor(Math.abs(off) / 60)) + ":" + pad(Math.abs(off) % 60);
  }
  function shortTime(ns, step) {
    const full = timeText(ns).replace("T", " ");
    return step >= 86400e9 ? full.slice(0, 10) : step >= 60e9 ? full.slice(0, 16) : full.slice(0, 19);
  }
  function retime() {
    for (const el of document.querySelectorAll("[data-ns]")) el.textContent = timeText(Number(el.dataset.ns));
    drawHistogram();
  }

  function row(h) {
    const div = document.createElement("div");
    const sev = h.severity_code === null ? "u" : h.severity_code;
    div.className = "hit s" + sev;
    div.title = (h.source ? h.source + (h.offset !== null ? " @" + h.offset : "") + " \u2013 " : "") + "id " + h.id;
    // The fields, as key:value finds them (a tooltip: plain text, never markup).
    if (h.fields && h.fields.length) div.title += "\n" + h.fields.map((kv) => kv[0] + ":" + kv[1]).join("\n");
    const t = cell("t", timeText(h.time_ns));
    t.dataset.ns = h.time_ns;
    const ctx = document.createElement("button");
    ctx.type = "button"; ctx.className = "ctx-btn"; ctx.textContent = "\u2195";
    ctx.title = "the lines before and after this one in its source";
    ctx.onclick = () => toggleContext(div, h);
    div.append(ctx, t, cell("h", h.host || "-"), cell("a", h.app || "-"), cell("v", h.severity),
               marked(h.message, state.highlight));
    return div;
  }

  // --- context: the lines around a hit in its source, under the hit.
  async function toggleContext(div, h) {
    const open = div.nextSibling && div.nextSibling.classList && div.nextSibling.classList.contains("ctx");
    if (open) { div.nextSibling.remove(); div.classList.remove("ctx-open"); return; }
    const box = document.createElement("div");
    box.className = "ctx";
    box.textContent = "reading the context\u2026";
    div.after(box);
    div.classList.add("ctx-open");
    const p = new URLSearchParams();
    p.set("env", state.params.get("env"));
    if (state.params.get("history")) p.set("history", state.params.get("history"));
    p.set("t", String(h.time_ns)); p.set("id", h.id); p.set("before", "10"); p.set("after", "10");
    try {
      const data = await H.api("/api/context?" + p.toString());
      box.textContent = "";
      const head = document.createElement("div");
      head.className = "ctx-head";
      head.textContent = (data.source ? data.source : "no source file: this host and app by time") + " \u2013 " +
        data.before.length + " line(s) before, " + data.after.length + " after";
      box.appendChild(head);
      const line = (x, cls) => {
        const r = document.createElement("div");
        const sev = x.severity_code === null ? "u" : x.severity_code;
        r.className = "ctx-line s" + sev + (cls ? " " + cls : "");
        const t = cell("t", timeText(x.time_ns)); t.dataset.ns = x.time_ns;
        r.append(t, cell("o", x.offset === null ? "" : "@" + x.offset), cell("v", x.severity), cell("m", x.message));
        return r;
      };
      for (const x of data.before) box.appendChild(line(x));
      box.appendChild(line(data.event, "this"));
      for (const x of data.after) box.appendChild(line(x));
    } catch (e) {
      box.textContent = e.message;
      box.classList.add("error");
    } finally {
      state.contexts++;
    }
  }

  function showError(text) {
    $("s-error").textContent = text || "";
    $("s-error").hidden = !text;
    document.body.style.setProperty("--head", document.querySelector("header").offsetHeight + "px");
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
  function address(params) {
    const p = new URLSearchParams(params);
    if (!state.utc) p.set("tz", "local");
    return "?" + p.toString();
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

  async function run(opts) {
    if (state.busy) { state.pending = opts || true; return; }
    state.busy = true;
    showError("");
    const params = paramsFromForm();
    state.params = params;
    state.next = null; state.shown = 0;
    results.textContent = "";
    const here = address(params);
    if (opts && opts.push && here !== location.search) history.pushState(null, "", here);
    else history.replaceState(null, "", here);
    const seq = ++state.seq;
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
      // The histogram and the sidebar after the hits: the index answers one
      // request at a time, and the hits are what the user waits for.
      histogram(params, seq);
      facets(params, seq);
      state.busy = false;
      state.searches++;
      if (state.pending) { const o = state.pending; state.pending = null; run(o === true ? undefined : o); }
    }
  }

  // --- the histogram: counts per time bucket, stacked by severity; a drag zooms.
  const SEV_ORDER = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "-"];
  const SEV_VAR = { emerg: "--emerg", alert: "--emerg", crit: "--emerg", err: "--err", warning: "--warn",
                    notice: "--notice", info: "--ok", debug: "--debug", "-": "--dim" };
  const colour = (name) => getComputedStyle(document.body).getPropertyValue(SEV_VAR[name]).trim() || "#888";
  async function histogram(params, seq) {
    const p = new URLSearchParams(params);
    const width = $("s-canvas").parentElement.clientWidth || 800;
    p.set("buckets", String(Math.max(10, Math.min(240, Math.floor(width / 8)))));
    let h = null;
    $("s-hist").classList.add("counting");
    try {
      h = await H.api("/api/histogram?" + p.toString());
    } catch (e) {
      h = null;
    }
    if (seq !== state.seq) return;          // a newer search has begun: its own histogram follows
    $("s-hist").classList.remove("counting");
    state.hist = h;
    drawHistogram();
    state.histograms++;
  }
  function drawHistogram() {
    const canvas = $("s-canvas"), h = state.hist;
    const w = canvas.parentElement.clientWidth || 800, ht = canvas.height;
    canvas.width = w;
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, w, ht);
    $("s-legend").textContent = "";
    if (!h) { $("s-axis-from").textContent = $("s-axis-to").textContent = $("s-axis-max").textContent = ""; return; }
    const span = Math.max(1, h.end_ns - h.start_ns);
    let max = 0;
    const seen = new Set();
    for (const [, counts] of h.buckets) {
      let sum = 0;
      for (const [k, c] of Object.entries(counts)) { sum += c; seen.add(k); }
      max = Math.max(max, sum);
    }
    const x = (ns) => (ns - h.start_ns) / span * w;
    for (const [t, counts] of h.buckets) {
      const x0 = Math.max(0, x(t)), x1 = Math.min(w, x(t + h.step_ns));
      let y = ht;
      for (const name of SEV_ORDER) {
        const c = counts[name];
        if (!c) continue;
        const bh = c / max * (ht - 4);
        g.fillStyle = colour(name);
        g.fillRect(x0, y - bh, Math.max(1, x1 - x0 - 1), bh);
        y -= bh;
      }
    }
    for (const name of SEV_ORDER) {
      if (!seen.has(name)) continue;
      const item = document.createElement("span");
      const sw = document.createElement("i"); sw.style.background = colour(name);
      item.append(sw, document.createTextNode(name));
      $("s-legend").appendChild(item);
    }
    $("s-axis-from").textContent = shortTime(h.start_ns, 1e9);
    $("s-axis-to").textContent = shortTime(h.end_ns, 1e9);
    $("s-axis-max").textContent = "max " + max.toLocaleString("en") + " per " + stepText(h.step_ns);
  }
  function stepText(ns) {
    const s = ns / 1e9;
    return s % 86400 === 0 ? s / 86400 + " d" : s % 3600 === 0 ? s / 3600 + " h" : s % 60 === 0 ? s / 60 + " min" : s + " s";
  }
  function nsAt(clientX) {
    const h = state.hist, r = $("s-canvas").getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    return h.start_ns + f * (h.end_ns - h.start_ns);
  }
  const isoOf = (ns) => new Date(Math.round(ns / 1e6)).toISOString();
  function zoomTo(a, b) {
    $("s-start").value = isoOf(Math.min(a, b));
    $("s-end").value = isoOf(Math.max(a, b));
    $("s-preset").value = "";
    run({ push: true });
  }
  (function dragToZoom() {
    const canvas = $("s-canvas"), sel = $("s-sel");
    let from = null;
    canvas.addEventListener("mousedown", (e) => {
      if (!state.hist || e.button !== 0) return;
      e.preventDefault();
      from = e.clientX;
      sel.hidden = true;
    });
    window.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect();
      if (from === null) {
        if (!state.hist || e.clientY < r.top || e.clientY > r.bottom || e.clientX < r.left || e.clientX > r.right) return;
        const h = state.hist, t = nsAt(e.clientX);
        const b = h.buckets.find(([bt]) => bt <= t && t < bt + h.step_ns);
        const counts = b ? Object.entries(b[1]).map(([k, c]) => k + " " + c.toLocaleString("en")).join(", ") : "none";
        $("s-hist-read").textContent = shortTime(Math.floor(t / h.step_ns) * h.step_ns, h.step_ns) + ": " + counts;
        return;
      }
      const a = Math.max(r.left, Math.min(from, e.clientX)), b = Math.min(r.right, Math.max(from, e.clientX));
      sel.style.left = (a - r.left) + "px";
      sel.style.width = (b - a) + "px";
      sel.hidden = false;
    });
    window.addEventListener("mouseup", (e) => {
      if (from === null) return;
      const start = from;
      from = null;
      sel.hidden = true;
      if (Math.abs(e.clientX - start) < 4) return;       // a click, not a drag
      zoomTo(nsAt(start), nsAt(e.clientX));
    });
    canvas.addEventListener("mouseleave", () => {
      if (from === null) $("s-hist-read").textContent = "drag across the chart to zoom into that time";
    });
  })();
  $("s-zoom-out").onclick = () => {
    const h = state.hist;
    if (!h) return;
    const span = h.end_ns - h.start_ns, mid = h.start_ns + span / 2;
    zoomTo(mid - span, Math.min(Date.now() * 1e6, mid + span));
  };
  // What sticks under the sticky header (column headers, the sidebar) starts where it ends.
  const headHeight = () => document.body.style.setProperty("--head", document.querySelector("header").offsetHeight + "px");
  headHeight();
  window.addEventListener("resize", () => { headHeight(); drawHistogram(); });

  // --- the field sidebar: top values with counts; a click adds field:value and searches.
  function quoteValue(v) {
    return /^[^\s",]+$/.test(v) && !v.startsWith("//") ? v : '"' + v.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }
  function addFilter(field, value) {
    if (field === "environment") { $("s-env").value = value; state.history = null; run({ push: true }); return; }
    const key = field === "severity" ? "sev" : field;
    const term = key + ":" + quoteValue(value);
    const q = $("s-q").value.trim();
    if (!(" " + q + " ").includes(" " + term + " ")) $("s-q").value = (q ? q + " " : "") + term;
    run({ push: true });
  }
  async function facets(params, seq) {
    const box = $("s-fields");
    let data;
    box.classList.add("counting");
    try {
      data = await H.api("/api/facets?" + params.toString());
    } catch (e) {
      data = null;
    }
    if (seq !== state.seq) return;
    box.classList.remove("counting");
    if (!data) {
      box.textContent = "";
      state.facets++;
      return;
    }
    box.textContent = "";
    const section = (field, values, title) => {
      if (!values.length) return;
      const sec = document.createElement("section");
      sec.className = "facet"; sec.dataset.field = field;
      const h = document.createElement("h3"); h.textContent = field;
      if (title) h.title = title;
      sec.appendChild(h);
      const top = values[0][1] || 1;
      for (const [v, c] of values) {
        const a = document.createElement("button");
        a.type = "button"; a.className = "fv"; a.dataset.value = v;
        a.title = field === "severity" ? "sev:" + v + " (this severe or worse)" :
          field === "environment" ? "search environment " + v : (field + ":" + quoteValue(v));
        const name = document.createElement("span"); name.className = "fv-v"; name.textContent = v === "" ? "(empty)" : v;
        const n = document.createElement("span"); n.className = "fv-n"; n.textContent = c.toLocaleString("en");
        const bar = document.createElement("span"); bar.className = "fv-bar"; bar.style.width = (c / top * 100) + "%";
        a.append(bar, name, n);
        a.onclick = () => addFilter(field, v);
        sec.appendChild(a);
      }
      box.appendChild(sec);
    };
    for (const f of ["environment", "host", "app", "severity"]) section(f, data.facets[f] || []);
    for (const [k, c] of data.keys) section(k, data.fields[k] || [], c.toLocaleString("en") + " event(s) have it");
    if (!box.children.length) box.textContent = "";
    state.facets++;
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
  form.onsubmit = (e) => { e.preventDefault(); run({ push: true }); };
  $("s-utc").onchange = () => {
    state.utc = $("s-utc").checked;
    if (state.params) history.replaceState(null, "", address(state.params));
    retime();
  };

  // Environments for the picker.
  H.api("/api/environments").then((d) => {
    const list = $("s-envs");
    for (const n of d.environments) { const o = document.createElement("option"); o.value = n; list.appendChild(o); }
    if (!$("s-env").value && d.environments.length === 1) {
      $("s-env").value = d.environments[0];
      // Opened with no search in its address (from the live page's link): with one environment
      // there is nothing to choose, so show its last hour at once rather than an empty page.
      if (!state.params && !state.history && !state.busy) run();
    } else if (!$("s-env").value && !state.params && d.environments.length > 1) {
      $("s-summary").textContent = "Pick an environment (" + d.environments.join(", ") + ") and Search.";
    }
  }).catch(() => {});

  // The page's address holds the search: open it again, or from a link (archie's "search it").
  function fromAddress() {
    const init = new URLSearchParams(location.search);
    $("s-start").value = init.get("start") || "-1h";
    $("s-end").value = init.get("end") || "now";
    const preset = [...$("s-preset").options].find((o) => o.value && o.value === init.get("start"));
    $("s-preset").value = !init.get("start") ? "-1h" : preset && (init.get("end") || "now") === "now" ? preset.value : "";
    $("s-env").value = init.get("env") || $("s-env").value;
    $("s-q").value = init.get("q") || "";
    for (const id of ["s-host", "s-app"]) $(id).value = "";
    $("s-severity").value = "";
    state.utc = init.get("tz") !== "local";
    $("s-utc").checked = state.utc;
    state.history = init.get("history") || null;
    if (state.history && !init.get("start")) { $("s-start").value = ""; $("s-end").value = ""; $("s-preset").value = ""; }
    return Boolean(init.get("env") || init.get("history"));
  }
  window.addEventListener("popstate", () => { if (fromAddress()) run(); });
  if (fromAddress()) run();
  state.ready = true;
})();
