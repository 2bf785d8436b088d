(function () {
  "use strict";
  // evalkit report: sortable leaderboards, family filter, sample browser. Data is only ever put into the
  // page with textContent, never parsed as HTML.

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // ---- leaderboard tables -------------------------------------------------------------------------
  function sortTable(table, th) {
    var headRow = th.parentNode;
    var index = Array.prototype.indexOf.call(headRow.children, th);
    var kind = th.getAttribute("data-sort");
    var current = th.classList.contains("sorted-asc") ? "asc" : th.classList.contains("sorted-desc") ? "desc" : null;
    var dir = current ? (current === "asc" ? "desc" : "asc") : (kind === "desc" ? "desc" : "asc");
    $all("th", headRow).forEach(function (h) {
      h.classList.remove("sorted-asc", "sorted-desc");
      h.removeAttribute("aria-sort");
    });
    th.classList.add("sorted-" + dir);
    th.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, i) {
      var raw = row.cells[index].getAttribute("data-v");
      var empty = raw === null || raw === "";
      var key = kind === "text" ? (raw || "").toLowerCase() : parseFloat(raw);
      return { row: row, empty: empty || (kind !== "text" && isNaN(key)), key: key, i: i };
    });
    keyed.sort(function (a, b) {
      if (a.empty !== b.empty) { return a.empty ? 1 : -1; }  // empty cells always last
      if (a.empty) { return a.i - b.i; }
      var c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      return (dir === "asc" ? c : -c) || a.i - b.i;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }

  function applyColumnFilters() {
    var active = $(".chip.active");
    var family = active ? active.getAttribute("data-family") : "all";
    var groupsBox = $("#show-groups");
    var groups = groupsBox ? groupsBox.checked : true;
    $all("table.board [data-family]").forEach(function (cell) {
      var hide = (family !== "all" && cell.getAttribute("data-family") !== family) ||
        (!groups && cell.classList.contains("group"));
      cell.classList.toggle("hidden", hide);
    });
    $all("table.board th.task-head").forEach(function (th) {
      var span = groups ? th.getAttribute("data-span-all") : th.getAttribute("data-span-base");
      th.colSpan = parseInt(span, 10) || 1;
      if (span === "0") { th.classList.add("hidden"); }
    });
  }

  function initBoards() {
    $all("table.board").forEach(function (table) {
      $all("thead th.sortable", table).forEach(function (th) {
        th.tabIndex = 0;
        th.addEventListener("click", function () { sortTable(table, th); });
        th.addEventListener("keydown", function (e) {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th); }
        });
      });
    });
    $all(".chip").forEach(function (chip) {
      chip.addEventListener("click", function () {
        $all(".chip").forEach(function (c) { c.classList.remove("active"); });
        chip.classList.add("active");
        applyColumnFilters();
      });
    });
    var box = $("#show-groups");
    if (box) { box.addEventListener("change", applyColumnFilters); }
    applyColumnFilters();
  }

  // ---- sample browser ------------------------------------------------------------------------------
  var PAGE = 25;

  function field(name, text, collapsed) {
    if (text === null || text === undefined || text === "") { return null; }
    var wrap;
    if (collapsed) {
      wrap = el("details", "field");
      wrap.appendChild(el("summary", null, name));
    } else {
      wrap = el("div", "field");
      wrap.appendChild(el("div", "name", name));
    }
    wrap.appendChild(el("pre", null, text));
    return wrap;
  }

  function verdictOf(s) {
    if (s.correct === true) { return ["correct", "ok"]; }
    if (s.correct === false) { return ["wrong", "bad"]; }
    if (s.score !== null && s.score !== undefined) { return ["score " + (Math.round(s.score * 100) / 100), "neutral"]; }
    if (s.perplexity !== null && s.perplexity !== undefined) { return ["perplexity " + s.perplexity.toFixed(2), "neutral"]; }
    return null;
  }

  function votesTable(votes) {
    var table = el("table", "votes");
    var head = el("tr");
    ["judge", "verdict", "valid", "reasoning"].forEach(function (h) { head.appendChild(el("th", null, h)); });
    table.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    votes.forEach(function (v) {
      var tr = el("tr", v.valid ? "" : "invalid");
      tr.appendChild(el("td", null, v.judge));
      tr.appendChild(el("td", null, v.verdict));
      tr.appendChild(el("td", null, v.valid ? "yes" : "no"));
      var why = el("td");
      if (v.reasoning) {
        var d = el("details");
        d.appendChild(el("summary", null, v.reasoning.slice(0, 90) + (v.reasoning.length > 90 ? "…" : "")));
        d.appendChild(el("pre", null, v.reasoning));
        why.appendChild(d);
      }
      tr.appendChild(why);
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  }

  function renderSample(s) {
    var card = el("article", "sample");
    var head = el("header");
    head.appendChild(el("span", "sid", s.id));
    if (s.model) { head.appendChild(el("span", "model", s.model)); }
    if (s.subset) { head.appendChild(el("span", "muted", s.subset)); }
    var verdict = verdictOf(s);
    if (verdict) { head.appendChild(el("span", "verdict " + verdict[1], verdict[0])); }
    if (s.invalid) { head.appendChild(el("span", "verdict bad", "invalid judgment")); }
    if (s.unextractable) { head.appendChild(el("span", "verdict bad", "unextractable")); }
    if (s.stage) { card.setAttribute("data-stage", s.stage.split(" ")[0]); }
    card.appendChild(head);
    var parts = [];
    var cut = s.prompt.lastIndexOf("\n\n");
    if (s.prompt.length > 200 && cut > 0) {
      // few-shot prompts: the question itself stays in view, the whole prompt is one click away
      parts.push(field("prompt (end)", s.prompt.slice(cut + 2), false));
      parts.push(field("full prompt, " + s.prompt.length + " characters", s.prompt, true));
    } else {
      parts.push(field("prompt", s.prompt, s.prompt.length > 400));
    }
    parts.push(field("target", s.target, false));
    if (s.stage) {
      // generated multiple-choice answer: the thought stays folded, the answer the cascade read is in view
      parts.push(field("thinking", s.thinking, true));
      parts.push(field("answer", s.answer, false));
      parts.push(field("extracted", (s.prediction || "none (unextractable)") + " · stage " + s.stage, false));
      parts.push(field("raw output", s.raw_output, true));
    }
    s.responses.forEach(function (r, i) {
      parts.push(field(s.responses.length > 1 ? "response " + (i + 1) : "response", r, false));
    });
    if (s.logprobs) {
      parts.push(field("choice log-likelihoods", Object.keys(s.logprobs).map(function (k) {
        var v = s.logprobs[k];
        return k + "  " + (v === null ? "" : v.toFixed(3));
      }).join("\n"), true));
    }
    var extra = Object.keys(s.extra || {});
    if (extra.length) {
      parts.push(field("details", extra.map(function (k) { return k + ": " + s.extra[k]; }).join("\n"), true));
    }
    parts.forEach(function (p) { if (p) { card.appendChild(p); } });
    if (s.votes && s.votes.length) { card.appendChild(votesTable(s.votes)); }
    var judgePrompt = field("judge prompt", s.judge_prompt, true);
    if (judgePrompt) { card.appendChild(judgePrompt); }
    return card;
  }

  function initSamples() {
    var config = JSON.parse($("#evk-data").textContent);
    var chunks = new Array(config.chunks);
    var waiting = {};
    var state = { page: 0, query: "", wrong: false, invalid: false, unextractable: false, subset: "" };
    var list = $("#samples");
    var count = $("#sample-count");
    var subset = $("#sample-subset");
    var unextractable = $("#only-unextractable");

    window.evkChunk = function (index, records) {
      chunks[index] = records;
      (waiting[index] || []).forEach(function (fn) { fn(); });
      delete waiting[index];
    };
    function load(index) {
      return new Promise(function (resolve, reject) {
        if (chunks[index]) { resolve(); return; }
        if (waiting[index]) { waiting[index].push(resolve); return; }
        waiting[index] = [resolve];
        var script = document.createElement("script");
        script.src = config.base + "/" + ("000" + index).slice(-4) + ".js";
        script.onerror = function () { reject(new Error("could not load " + script.src)); };
        document.body.appendChild(script);
      });
    }
    function loadRange(first, last) {
      var jobs = [];
      for (var i = first; i <= last && i < config.chunks; i++) { jobs.push(load(i)); }
      return Promise.all(jobs);
    }
    function filtering() { return state.query || state.wrong || state.invalid || state.unextractable || state.subset; }
    function matches(s) {
      if (state.wrong && !s.wrong) { return false; }
      if (state.invalid && !s.invalid) { return false; }
      if (state.unextractable && !s.unextractable) { return false; }
      if (state.subset && s.subset !== state.subset) { return false; }
      if (!state.query) { return true; }
      var hay = s._hay || (s._hay = [s.id, s.model, s.subset, s.prompt, s.target, s.responses.join("\n"),
        s.thinking || "", s.answer || "",
        s.votes.map(function (v) { return v.judge + " " + v.verdict + " " + v.reasoning; }).join("\n")]
        .join("\n").toLowerCase());
      return hay.indexOf(state.query) !== -1;
    }
    function show(items, total, label) {
      list.textContent = "";
      items.forEach(function (s) { list.appendChild(renderSample(s)); });
      var start = state.page * PAGE;
      count.textContent = total === 0 ? "no samples match" :
        (start + 1) + "–" + (start + items.length) + " of " + total + label;
      $("#prev").disabled = state.page === 0;
      $("#next").disabled = start + items.length >= total;
    }
    function saveHash() {
      var parts = [];
      if (state.query) { parts.push("q=" + encodeURIComponent(state.query)); }
      if (state.subset) { parts.push("subset=" + encodeURIComponent(state.subset)); }
      if (state.wrong) { parts.push("wrong=1"); }
      if (state.invalid) { parts.push("invalid=1"); }
      if (state.unextractable) { parts.push("unextractable=1"); }
      if (state.page) { parts.push("page=" + (state.page + 1)); }
      var hash = parts.length ? "#" + parts.join("&") : "";
      if (hash !== location.hash) {
        try { history.replaceState(null, "", hash || location.pathname); } catch (err) { /* some file:// setups */ }
      }
    }
    function loadHash() {
      location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
        var i = pair.indexOf("=");
        if (i < 0) { return; }
        var key = pair.slice(0, i);
        var value = decodeURIComponent(pair.slice(i + 1));
        if (key === "q") { state.query = value.toLowerCase(); $("#sample-search").value = value; }
        if (key === "subset" && subset) { state.subset = value; subset.value = value; }
        if (key === "wrong") { state.wrong = value === "1"; $("#only-wrong").checked = state.wrong; }
        if (key === "invalid") { state.invalid = value === "1"; $("#only-invalid").checked = state.invalid; }
        if (key === "unextractable" && unextractable) {
          state.unextractable = value === "1";
          unextractable.checked = state.unextractable;
        }
        if (key === "page") { state.page = Math.max(0, (parseInt(value, 10) || 1) - 1); }
      });
    }
    function render() {
      saveHash();
      var start = state.page * PAGE;
      var job;
      if (!filtering()) {
        var first = Math.floor(start / config.chunk_size);
        var last = Math.floor((start + PAGE - 1) / config.chunk_size);
        job = loadRange(first, last).then(function () {
          var all = [];
          for (var i = first; i <= last && i < config.chunks; i++) { all = all.concat(chunks[i]); }
          var offset = start - first * config.chunk_size;
          show(all.slice(offset, offset + PAGE), config.total, "");
        });
      } else {
        count.textContent = "searching…";
        job = loadRange(0, config.chunks - 1).then(function () {
          var hits = [];
          chunks.forEach(function (c) { c.forEach(function (s) { if (matches(s)) { hits.push(s); } }); });
          show(hits.slice(start, start + PAGE), hits.length, " matching");
        });
      }
      job.catch(function (err) { count.textContent = ""; list.textContent = ""; list.appendChild(el("p", "error", err.message)); });
    }
    var timer = null;
    $("#sample-search").addEventListener("input", function (e) {
      clearTimeout(timer);
      timer = setTimeout(function () { state.query = e.target.value.trim().toLowerCase(); state.page = 0; render(); }, 120);
    });
    $("#only-wrong").addEventListener("change", function (e) { state.wrong = e.target.checked; state.page = 0; render(); });
    $("#only-invalid").addEventListener("change", function (e) { state.invalid = e.target.checked; state.page = 0; render(); });
    if (unextractable) {
      unextractable.addEventListener("change", function (e) { state.unextractable = e.target.checked; state.page = 0; render(); });
    }
    if (subset) { subset.addEventListener("change", function (e) { state.subset = e.target.value; state.page = 0; render(); }); }
    $("#prev").addEventListener("click", function () { if (state.page > 0) { state.page -= 1; render(); } });
    $("#next").addEventListener("click", function () { state.page += 1; render(); });
    loadHash();
    render();
  }

  var page = document.body.getAttribute("data-page");
  initBoards();
  if (page === "samples") { initSamples(); }
}());
