/* Helios live tail: the page.
 *
 * Plain JavaScript, no build step. The server (helios web) does the heavy
 * part: dedup, time-order merge, filters, rate limits. The page only keeps
 * lines and draws the ones in view, in bounded time and memory:
 *
 * - lines that arrive are queued and taken in once per animation frame;
 * - the page keeps at most max_lines lines as data (oldest dropped first)
 *   and draws only the rows in view: a virtual list of fixed-height rows,
 *   made of a small pool of row elements that are reused (row for line
 *   number s is pool[s % pool size]), so a row's DOM is written only when
 *   it shows a new line. 10,000 lines/s costs the same DOM work per frame
 *   as 100 lines/s, and memory does not grow with what went by. (A DOM of
 *   10,000 laid-out lines costs Chromium about 170 to 290 MB; the data of
 *   10,000 lines costs a few.)
 * - a batch is acknowledged to the server only once it is taken in (or held
 *   by pause), and the server sends at most two unacknowledged batches: a
 *   page that cannot keep up gets fewer lines and a "dropped" count, never
 *   an ever-growing backlog;
 * - pause holds new lines (at most max_lines; the count of any more is
 *   shown) and resume takes them in. While paused nothing is redrawn, so
 *   text can be selected and copied.
 *
 * Rows are one line high; a click on a row shows the whole line below.
 */
(function () {
  "use strict";

  var SEV = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
  var MARKER = -2;      // severity of a row that is our own note, not a line
  var OVERSCAN = 10;    // rows drawn above and below the view
  var ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  var ESC_ALL = /[&<>"']/g;
  function esc(s) { return String(s).replace(ESC_ALL, function (c) { return ESC[c]; }); }
  function $(id) { return document.getElementById(id); }
  function fmt(n) { return n.toLocaleString("en-US"); }
  function lines(n) { return fmt(n) + (n === 1 ? " line" : " lines"); }

  var ui = {
    scroller: $("scroller"), spacer: $("spacer"), lines: $("lines"), bucks: $("bucks"), conn: $("conn"),
    rate: $("rate"), shown: $("shown"), dropped: $("dropped"), paused: $("paused"), error: $("filter-error"),
    pause: $("pause"), clear: $("clear"), highlight: $("highlight"), detail: $("detail"),
    detailText: $("detail-text")
  };

  var st = {
    maxLines: 10000,
    rows: [],           // the lines kept, oldest first: [time_ms, env, host, app, severity, message]
    base: 0,            // line number of rows[0] (numbers only grow)
    pending: [],        // rows waiting for the next frame
    acks: [],           // acknowledgements to send once those rows are taken in
    frame: 0,           // requestAnimationFrame id, 0 when none is scheduled
    dirty: false,       // redraw needed (scroll, resize, highlight, clear)
    pool: [],           // row elements
    rowPx: 18,          // measured at start
    stamp: 0,           // bumped when every drawn row must be written again
    paused: false,
    held: [],           // rows held while paused
    heldDropped: 0,     // rows not kept while paused (over max_lines)
    droppedServer: 0,   // rows the server dropped so that this page keeps up
    received: 0,
    rateWindow: [],     // [time, received] samples for the rate counter
    follow: true,       // keep the newest line in view
    highlight: "",
    filterSent: null,   // the last filter the server took
    filterAnswers: 0,   // answers to filters sent (taken or refused)
    missedBase: {}      // per buck: the feed's missed count when this page first heard of it
  };

  // --- drawing -----------------------------------------------------------

  var lastSecond = -1, lastSecondText = "";
  function timeText(ms) {
    var sec = Math.floor(ms / 1000);
    if (sec !== lastSecond) {
      var d = new Date(sec * 1000);
      lastSecond = sec;
      lastSecondText = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0") +
        ":" + String(d.getSeconds()).padStart(2, "0") + ".";
    }
    var frac = Math.floor(ms - sec * 1000);
    return lastSecondText + (frac < 10 ? "00" : frac < 100 ? "0" : "") + frac;
  }

  function markedHtml(text, term) {
    var lower = text.toLowerCase(), at = lower.indexOf(term), out = "", from = 0;
    while (at >= 0) {
      out += esc(text.slice(from, at)) + "<mark>" + esc(text.slice(at, at + term.length)) + "</mark>";
      from = at + term.length;
      at = lower.indexOf(term, from);
    }
    return out + esc(text.slice(from));
  }

  function newRowElement() {
    var el = document.createElement("div");
    el.className = "l";
    el.innerHTML = '<span class="t"></span><span class="e"></span><span class="h"></span>' +
      '<span class="a"></span><span class="v"></span><span class="m"></span>';
    el.style.display = "none";
    el._seq = -1;
    el._y = -1;
    el._stamp = -1;
    ui.lines.appendChild(el);
    return el;
  }

  // Set a cell's text, reusing its text node: at 10,000 lines/s the rows in
  // view change every frame, and new nodes per cell are garbage the renderer
  // holds on to until its next full collection.
  function setText(cell, value) {
    var t = cell.firstChild;
    if (t && t.nodeType === 3 && !t.nextSibling) {
      if (t.data !== value) t.data = value;
    } else {
      cell.textContent = value;
    }
  }

  // Write row r (line number seq) into element el: only text, never markup
  // from a line (the highlight's <mark> is ours; the text around it is escaped).
  function fill(el, r, seq) {
    var c = el.children, sev = r[4], msg = r[5];
    var hit = st.highlight !== "" && sev !== MARKER && msg.toLowerCase().indexOf(st.highlight) >= 0;
    var cls = sev === MARKER ? "l marker" : (sev >= 0 ? "l s" + sev : "l sx") + (hit ? " hl" : "");
    if (el.className !== cls) el.className = cls;
    setText(c[0], sev === MARKER ? "" : timeText(r[0]));
    setText(c[1], r[1]);
    setText(c[2], r[2]);
    setText(c[3], sev === MARKER ? "" : r[3] || "-");
    setText(c[4], sev >= 0 ? SEV[sev] : sev === MARKER ? "" : "-");
    if (hit) c[5].innerHTML = markedHtml(msg, st.highlight);
    else setText(c[5], msg);
    el._seq = seq;
    el._stamp = st.stamp;
  }

  function draw() {
    var s = ui.scroller, rows = st.rows, px = st.rowPx;
    var want = Math.ceil(s.clientHeight / px) + 2 * OVERSCAN + 1;
    while (st.pool.length < want) st.pool.push(newRowElement());
    var size = st.pool.length;
    var first = Math.max(0, Math.floor(s.scrollTop / px) - OVERSCAN);
    var last = Math.min(rows.length, first + size);
    var used = {};
    for (var i = first; i < last; i++) {
      var seq = st.base + i, el = st.pool[seq % size], y = i * px;
      used[seq % size] = true;
      if (el._seq !== seq || el._stamp !== st.stamp) fill(el, rows[i], seq);
      if (el._y !== y) {
        el.style.transform = "translateY(" + y + "px)";
        el._y = y;
      }
      if (el.style.display) el.style.display = "";
    }
    for (var k = 0; k < size; k++) {
      if (!used[k] && st.pool[k].style.display !== "none") {
        st.pool[k].style.display = "none";
        st.pool[k]._seq = -1;
      }
    }
  }

  function frame() {
    st.frame = 0;
    var fresh = st.pending, acks = st.acks;
    st.pending = [];
    st.acks = [];
    if (fresh.length) take(fresh);
    if (fresh.length || st.dirty) {
      st.dirty = false;
      ui.spacer.style.height = st.rows.length * st.rowPx + slack() + "px";
      if (st.follow) scrollToNewest();
      draw();
      ui.shown.textContent = fmt(st.rows.length);
    }
    for (var j = 0; j < acks.length; j++) acks[j]();
    if (fresh.length && window.heliosOnRender) window.heliosOnRender(fresh);  // benchmark hook
  }

  // Keep the newest max_lines rows. A user reading older lines keeps them in
  // view while the oldest go, as long as they are kept at all.
  function take(fresh) {
    var rows = st.rows;
    for (var i = 0; i < fresh.length; i++) rows.push(fresh[i]);
    var over = rows.length - st.maxLines;
    if (over > 0) {
      rows.splice(0, over);
      st.base += over;
      if (!st.follow) {
        st.selfScroll = true;
        ui.scroller.scrollTop = Math.max(0, ui.scroller.scrollTop - over * st.rowPx);
      }
    }
  }

  function schedule() {
    if (!st.frame) st.frame = requestAnimationFrame(frame);
  }

  function redraw() {
    st.dirty = true;
    schedule();
  }

  // Following: the newest line stays in view until the user scrolls up, and
  // again once they scroll back to the bottom. Our own scrolling is not theirs.
  // The list ends in less than a row of empty space, so that following
  // scrolls by whole rows: the top row in view is whole, never cut in half
  // under the column headers.
  function slack() {
    return ui.scroller.clientHeight % st.rowPx;
  }

  function scrollToNewest() {
    var s = ui.scroller, top = Math.max(0, st.rows.length * st.rowPx + slack() - s.clientHeight);
    if (s.scrollTop !== top) {
      st.selfScroll = true;
      s.scrollTop = top;
    }
  }

  function marker(text) {
    st.pending.push([Date.now(), "", "", "", MARKER, text]);
    schedule();
  }

  // --- what the server sends -----------------------------------------------

  var socket = io({ transports: ["websocket", "polling"] });

  socket.on("connect", function () {
    ui.conn.textContent = "connected";
    ui.conn.className = "up";
    sendFilter(true);
  });
  socket.on("disconnect", function () {
    ui.conn.textContent = "reconnecting";
    ui.conn.className = "down";
  });
  // The server refuses a socket without a login (it ended, or it was logged out): log in again.
  socket.on("connect_error", function (err) {
    if (err && err.message === "login required") {
      window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
    }
  });
  socket.on("hello", function (h) {
    st.maxLines = h.max_lines;
    showStatus(h.status);
  });
  socket.on("status", showStatus);

  socket.on("lines", function (data, ack) {
    var rows = data.rows, i;
    st.received += rows.length;
    if (data.dropped) {
      st.droppedServer += data.dropped;
      showDropped();
    }
    if (st.paused) {
      for (i = 0; i < rows.length; i++) st.held.push(rows[i]);
      var over = st.held.length - st.maxLines;
      if (over > 0) {
        st.held.splice(0, over);
        st.heldDropped += over;
        showDropped();
      }
      showPaused();
      if (ack) ack();
      return;
    }
    for (i = 0; i < rows.length; i++) st.pending.push(rows[i]);
    if (ack) st.acks.push(ack);
    schedule();
  });

  function showDropped() {
    var parts = [];
    if (st.droppedServer) parts.push(lines(st.droppedServer) + " dropped to keep up");
    if (st.heldDropped) parts.push(lines(st.heldDropped) + " not held while paused (over " + fmt(st.maxLines) + ")");
    ui.dropped.textContent = parts.join("; ");
    ui.dropped.hidden = parts.length === 0;
  }

  function showPaused() {
    ui.paused.textContent = "Paused: " + lines(st.held.length) + " held; Resume shows them.";
  }

  function showStatus(s) {
    if (!s || !s.bucks) return;
    var html = "";
    for (var i = 0; i < s.bucks.length; i++) {
      var b = s.bucks[i];
      // This page's own misses: what the feed missed before it opened is not.
      var base = st.missedBase[b.endpoint];
      if (base === undefined || b.missed < base) base = st.missedBase[b.endpoint] = b.missed;
      var missed = b.missed - base;
      html += '<span class="buck" data-endpoint="' + esc(b.endpoint) + '" data-state="' + esc(b.state) +
        '" title="' + esc(b.state) + " since " + esc(new Date(b.since * 1000).toLocaleTimeString()) +
        (missed ? "; " + fmt(missed) + " events missed on this feed since this page opened" : "") + '">' +
        esc(b.endpoint.replace(/^tcp:\/\//, "")) + " <b>" + esc(b.state) + "</b> " + fmt(b.events) + " events" +
        (missed ? ' <i class="missed">' + fmt(missed) + " missed</i>" : "") + "</span>";
    }
    ui.bucks.innerHTML = html;
  }

  // --- rate counter ----------------------------------------------------------

  setInterval(function () {
    var now = performance.now();
    st.rateWindow.push([now, st.received]);
    while (st.rateWindow.length > 1 && now - st.rateWindow[0][0] > 2000) st.rateWindow.shift();
    var a = st.rateWindow[0], span = (now - a[0]) / 1000;
    ui.rate.textContent = fmt(span > 0 ? Math.round((st.received - a[1]) / span) : 0);
  }, 500);

  // --- filters ---------------------------------------------------------------

  function filterSpec() {
    return {
      environment: $("f-environment").value, host: $("f-host").value, app: $("f-app").value,
      severity: $("f-severity").value, text: $("f-text").value,
      regex: $("f-regex").checked, ignore_case: $("f-ignore-case").checked
    };
  }

  function describe(f) {
    var parts = [];
    ["environment", "host", "app", "severity"].forEach(function (k) { if (f[k]) parts.push(k + "=" + f[k]); });
    if (f.text) parts.push((f.regex ? "regex" : "text") + "=" + JSON.stringify(f.text) + (f.ignore_case ? "" : " (case)"));
    return parts.length ? parts.join(" ") : "everything";
  }

  function sendFilter(always) {
    var spec = filterSpec(), key = JSON.stringify(spec);
    if (!always && key === st.filterSent) return;
    socket.emit("filter", spec, function (res) {
      st.filterAnswers++;
      if (res && res.error) {
        ui.error.textContent = "Filter not applied: " + res.error;
        ui.error.hidden = false;
        return;
      }
      ui.error.hidden = true;
      if (st.filterSent !== null && key !== st.filterSent) marker("Showing " + describe(res.filter) + " from here on.");
      st.filterSent = key;
    });
  }

  // Enter in a field applies the filter; the form itself never submits (no
  // inline onsubmit: the Content-Security-Policy allows no inline script).
  $("filters").addEventListener("submit", function (ev) { ev.preventDefault(); });

  var debounce = 0;
  function filterChanged() {
    clearTimeout(debounce);
    debounce = setTimeout(function () { sendFilter(false); }, 250);
  }
  Array.prototype.forEach.call(document.querySelectorAll("#filters [name]"), function (el) {
    el.addEventListener("input", filterChanged);
    el.addEventListener("change", filterChanged);
    el.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { clearTimeout(debounce); sendFilter(false); } });
  });

  // --- pause, clear, highlight, scrolling, details ------------------------------

  ui.pause.addEventListener("click", function () {
    st.paused = !st.paused;
    ui.pause.textContent = st.paused ? "Resume" : "Pause";
    ui.pause.classList.toggle("on", st.paused);
    ui.paused.hidden = !st.paused;
    if (st.paused) {
      showPaused();
      return;
    }
    var held = st.held;
    st.held = [];
    for (var i = 0; i < held.length; i++) st.pending.push(held[i]);
    schedule();
  });

  ui.clear.addEventListener("click", function () {
    st.base += st.rows.length;
    st.rows = [];
    st.held = [];
    st.pending = [];
    st.droppedServer = 0;
    st.heldDropped = 0;
    showDropped();
    if (st.paused) showPaused();
    ui.detail.hidden = true;
    redraw();
  });

  ui.highlight.addEventListener("input", function () {
    st.highlight = ui.highlight.value.toLowerCase();
    st.stamp++;
    redraw();
  });

  ui.scroller.addEventListener("scroll", function () {
    var s = ui.scroller;
    if (st.selfScroll) {
      st.selfScroll = false;
    } else {
      st.follow = s.scrollTop + s.clientHeight >= s.scrollHeight - st.rowPx;
    }
    redraw();
  });
  window.addEventListener("resize", redraw);

  ui.lines.addEventListener("click", function (ev) {
    var el = ev.target.closest(".l");
    if (!el || el._seq < st.base) return;
    var r = st.rows[el._seq - st.base];
    if (!r || r[4] === MARKER) return;
    ui.detailText.textContent = new Date(r[0]).toISOString() + "  " + r[1] + "  " + r[2] + "  " + (r[3] || "-") +
      "  " + (r[4] >= 0 ? SEV[r[4]] : "-") + "\n" + r[5];
    ui.detail.hidden = false;
  });
  $("detail-close").addEventListener("click", function () { ui.detail.hidden = true; });

  // One row's height, from the stylesheet (rows must all be this high).
  var probe = newRowElement();
  probe.style.display = "";
  probe.style.visibility = "hidden";
  st.rowPx = probe.getBoundingClientRect().height || 18;
  probe.remove();

  // For tests and the benchmark: read-only use. lines() is what the page holds, oldest first.
  st.lines = function () {
    return st.rows.filter(function (r) { return r[4] !== MARKER; }).map(function (r) { return r[5]; });
  };
  st.visible = function () {
    return st.pool.filter(function (el) { return el.style.display !== "none" && el.className.indexOf("marker") < 0; })
      .sort(function (a, b) { return a._seq - b._seq; })
      .map(function (el) { return el.lastChild.textContent; });
  };
  window.heliosLive = st;
})();
