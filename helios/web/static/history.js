// What the search page and archie share: API calls (with the CSRF token),
// and how a request's progress is shown.
(function () {
  "use strict";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ "Accept": "application/json" }, opts.headers);
    if (opts.json !== undefined) {
      opts.method = opts.method || "POST";
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      delete opts.json;
    }
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    let resp, body;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new Error("helios web does not answer (" + e.message + ")");
    }
    try {
      body = await resp.json();
    } catch (e) {
      throw new Error("HTTP " + resp.status + " " + resp.statusText);
    }
    if (!resp.ok) throw new Error(body && body.error ? body.error : "HTTP " + resp.status);
    return body;
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(Math.round(n))) + " " + units[i];
  }

  function seconds(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
  }

  function isoSeconds(ns) {
    return new Date(ns / 1e6).toISOString().replace(".000Z", "Z");
  }

  function progressText(r) {
    const p = r.progress;
    const pct = Math.round(p.fraction * 100);
    let text = r.state + " " + pct + "% \u2013 " + p.windows_done + "/" + p.windows_total + " windows, " +
      p.events_loaded.toLocaleString("en") + " events";
    if (p.eta_s !== null && r.state === "building") text += ", " + seconds(p.eta_s) + " left";
    if (r.state === "failed" && r.reason) text += ": " + r.reason;
    return text;
  }

  function setBar(el, r) {
    el.querySelector(".fill").style.width = Math.round(r.progress.fraction * 100) + "%";
    el.classList.remove("state-queued", "state-building", "state-ready", "state-failed", "state-expired");
    el.classList.add("state-" + r.state);
  }

  window.heliosHistory = { api, bytes, seconds, isoSeconds, progressText, setBar };
})();
