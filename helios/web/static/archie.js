// Archie: ask for history indexes, and watch every request's build live.
(function () {
  "use strict";
  const H = window.heliosHistory;
  const $ = (id) => document.getElementById(id);
  const rows = $("a-rows");
  const state = { polls: 0, requests: [] };
  window.heliosArchie = state;   // for tests: state.polls counts listings shown

  function td(text, cls) {
    const c = document.createElement("td");
    if (cls) c.className = cls;
    if (text instanceof Node) c.appendChild(text); else c.textContent = text;
    return c;
  }

  function progressCell(r) {
    const wrap = document.createElement("div");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.innerHTML = '<span class="fill"></span>';
    H.setBar(bar, r);
    const label = document.createElement("span");
    label.className = "hint";
    label.textContent = " " + Math.round(r.progress.fraction * 100) + "% \u2013 " + r.progress.windows_done + "/" +
      r.progress.windows_total + " windows";
    wrap.append(bar, label);
    if (r.state === "failed" && r.reason) {
      const why = document.createElement("div");
      why.className = "reason"; why.textContent = r.reason;
      wrap.appendChild(why);
    }
    for (const w of (r.warnings || []).slice(0, 3)) {
      const d = document.createElement("div");
      d.className = "warn"; d.textContent = w;
      wrap.appendChild(d);
    }
    return wrap;
  }

  function actions(r) {
    const span = document.createElement("span");
    if (r.state === "ready") {
      const a = document.createElement("a");
      a.href = "/search?history=" + encodeURIComponent(r.id);
      a.textContent = "search";
      a.className = "search-link";
      span.appendChild(a);
    } else if (r.state === "failed" || r.state === "expired") {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = "retry"; b.className = "retry";
      b.onclick = async () => {
        try { await H.api("/api/history/" + encodeURIComponent(r.id) + "/retry", { method: "POST" }); poll(); }
        catch (e) { showError(e.message); }
      };
      span.appendChild(b);
    }
    return span;
  }

  function render(list) {
    rows.textContent = "";
    for (const r of list) {
      const tr = document.createElement("tr");
      tr.id = "req-" + r.id;
      tr.dataset.state = r.state;
      const st = document.createElement("span");
      st.className = "st " + r.state; st.textContent = r.state;
      const p = r.progress;
      tr.append(td(r.id, "id"), td(r.environment), td(H.isoSeconds(r.start), "when"), td(H.isoSeconds(r.end), "when"), td(st),
                td(progressCell(r)), td(p.events_loaded.toLocaleString("en")),
                // The total is the plan's guess (the largest copy of each window among the bucks); once
                // built, what was read is the figure ("21.3 MiB of 21.4 MiB" on a finished request misled).
                td(r.state === "ready" ? H.bytes(p.bytes_read) : H.bytes(p.bytes_read) + " of " + H.bytes(p.bytes_total)),
                td(r.state === "building" ? H.seconds(p.eta_s) : ""),
                td(r.state === "ready" && r.expires ? new Date(r.expires * 1000).toISOString().slice(0, 16).replace("T", " ") + "Z" : "", "when"),
                td(actions(r)));
      rows.appendChild(tr);
    }
    $("a-empty").hidden = list.length > 0;
  }

  function showError(text) {
    $("a-error").textContent = text || "";
    $("a-error").hidden = !text;
  }

  let timer = null;
  async function poll() {
    clearTimeout(timer);
    try {
      const data = await H.api("/api/history");
      state.requests = data.requests;
      render(data.requests);
      state.polls++;
    } catch (e) { showError(e.message); }
    const busy = state.requests.some((r) => r.state === "queued" || r.state === "building");
    timer = setTimeout(poll, busy ? 500 : 2000);
  }

  $("a-form").onsubmit = async (e) => {
    e.preventDefault();
    showError("");
    try {
      await H.api("/api/history", { json: { environment: $("a-env").value.trim(), start: $("a-start").value.trim(),
                                            end: $("a-end").value.trim() } });
      poll();
    } catch (err) { showError(err.message); }
  };
  poll();
})();
