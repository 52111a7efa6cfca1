// moat's recording player. It reads the recording's events as the portal
// streams them (NDJSON, one event per line, bodies left out) and builds a
// timeline of the exchanges and WebSocket messages as the lines arrive;
// an exchange's heads and bodies are fetched when it is opened, so a long
// recording is never held whole by the browser.
//
// Like portal.js it writes no HTML from strings (the page requires
// Trusted Types and allows none): DOM nodes and textContent only. The
// page view of a recorded HTML page is an iframe sandboxed with no
// permissions, whose document moat serves with its own policy.
"use strict";

(() => {
  const root = document.getElementById("player");
  if (!root) {
    return;
  }
  const eventsUrl = root.dataset.events;
  const viewUrl = root.dataset.view;
  // Recorded time (µs) between two entries above which "skip idle gaps"
  // jumps, and how much of the gap it still plays.
  const IDLE_US = 2_000_000;
  const LEAD_US = 300_000;
  const TICK_MS = 50;

  // --- small DOM helpers -------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // m:ss.mmm: exchanges of one page load are milliseconds apart.
  function clock(us) {
    const total = Math.max(0, us) / 1e6;
    const m = Math.floor(total / 60);
    const s = (total - m * 60).toFixed(3).padStart(6, "0");
    return `${m}:${s}`;
  }

  function bytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function header(headers, name) {
    const h = (headers || []).find(([n]) => n.toLowerCase() === name);
    return h ? h[1] : "";
  }

  // Reads an NDJSON stream of the portal, line by line.
  async function stream(url, onSession, onEvent, signal) {
    const resp = await fetch(url, { credentials: "same-origin", signal });
    if (!resp.ok) {
      let why = `${resp.status} ${resp.statusText}`;
      try {
        why = (await resp.json()).error || why;
      } catch (_) {
        // Not JSON: the status says it.
      }
      throw new Error(why);
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    let first = true;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let end;
      while ((end = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        if (!line) continue;
        const v = JSON.parse(line);
        if (first) {
          first = false;
          onSession(v.session);
        } else {
          onEvent(v);
        }
      }
    }
    if (pending.trim()) {
      throw new Error("the recording ended in the middle of an event");
    }
  }

  // --- the player's parts ------------------------------------------------
  const playButton = el("button", { type: "button", id: "play", disabled: true }, "Play");
  const speed = el("select", { id: "speed" });
  for (const s of [1, 2, 4, 8, 16]) {
    speed.append(el("option", { value: s, selected: s === 1 }, `${s}×`));
  }
  const skipIdle = el("input", { type: "checkbox", id: "skip-idle", checked: true });
  const time = el("span", { id: "clock", class: "clock" }, "0:00.000");
  const scrub = el("input", {
    type: "range",
    id: "scrub",
    min: 0,
    max: 0,
    value: 0,
    step: "any",
    "aria-label": "Position in the session (milliseconds)",
  });
  const track = el("div", { class: "track", "aria-hidden": "true" });
  const status = el("p", { id: "player-status", role: "status" }, "Loading the recording…");
  const list = el("ol", { id: "timeline", "aria-label": "Exchanges and messages in recorded order" });
  const detail = el("section", { id: "detail", "aria-labelledby": "detail-h", tabindex: "-1" },
    el("h3", { id: "detail-h" }, "Exchange"),
    el("p", { class: "hint" }, "Choose an exchange or a message in the timeline to see it whole."));

  document.getElementById("player-fallback")?.remove();
  root.append(
    el("div", { class: "player-controls", role: "group", "aria-label": "Playback" },
      playButton,
      el("label", { for: "speed" }, "Speed "), speed,
      el("span", { class: "check" }, skipIdle, el("label", { for: "skip-idle" }, "Skip idle gaps")),
      time),
    scrub,
    track,
    status,
    el("div", { class: "player-body" }, list, detail));

  // --- the timeline, built as the stream arrives ----------------------
  const entries = [];
  const exchanges = new Map();
  let duration = 0;

  function describe(x) {
    if (x.kind === "ws") {
      const arrow = x.dir === "client" ? "→ app" : "← browser";
      const times = x.repeated ? ` (×${x.repeated + 1})` : "";
      return `WebSocket ${arrow} ${x.opcode} ${bytes(x.len)}${times}`;
    }
    if (x.kind === "error") {
      return `Error: ${x.message}`;
    }
    const st = x.status === null ? "…" : x.status;
    return `${x.method} ${x.uri} → ${st}`;
  }

  function add(x) {
    x.index = entries.length;
    entries.push(x);
    x.button = el("button", { type: "button", class: "entry" },
      el("span", { class: "at" }, clock(x.t)), " ", el("span", { class: "what" }, describe(x)));
    x.button.addEventListener("click", () => jump(x));
    x.item = el("li", { class: `future ${x.kind}` }, x.button);
    list.append(x.item);
    x.mark = el("span", { class: `mark ${x.kind}` });
    track.append(x.mark);
  }

  function relabel(x) {
    x.button.lastChild.textContent = describe(x);
  }

  function onEvent(e) {
    duration = Math.max(duration, e.t_us);
    switch (e.type) {
      case "request_head": {
        const x = { kind: "http", t: e.t_us, req: e.req, method: e.method, uri: e.uri, status: null, sent: 0, received: 0 };
        exchanges.set(e.req, x);
        add(x);
        break;
      }
      case "response_head": {
        const x = exchanges.get(e.req);
        if (x) {
          x.status = e.status;
          x.contentType = header(e.headers, "content-type");
          relabel(x);
        }
        break;
      }
      case "ws_message":
        add({ kind: "ws", t: e.t_us, req: e.req, dir: e.dir, opcode: e.opcode, len: e.len, repeated: e.repeated || 0 });
        break;
      case "error":
        add({ kind: "error", t: e.t_us, req: e.req, message: e.message });
        break;
      default:
        break;
    }
  }

  function placeMarks() {
    for (const x of entries) {
      x.mark.style.left = `${duration ? (x.t / duration) * 100 : 0}%`;
    }
  }

  // --- playing -----------------------------------------------------------
  let cursor = 0; // recorded µs
  let played = 0; // entries at or before the cursor
  let timer = null;
  let last = 0;
  let current = null;

  function show() {
    while (played < entries.length && entries[played].t <= cursor) {
      entries[played].item.classList.replace("future", "played");
      played += 1;
    }
    while (played > 0 && entries[played - 1].t > cursor) {
      played -= 1;
      entries[played].item.classList.replace("played", "future");
    }
    const now = played ? entries[played - 1] : null;
    if (now !== current) {
      current?.item.removeAttribute("aria-current");
      now?.item.setAttribute("aria-current", "step");
      current = now;
    }
    time.textContent = `${clock(cursor)} / ${clock(duration)}`;
    scrub.value = String(cursor / 1000);
  }

  function tick() {
    const now = performance.now();
    cursor += (now - last) * 1000 * Number(speed.value);
    last = now;
    // Skipping idle gaps skips the quiet tail after the last entry too
    // (connections idle out long after the last exchange).
    const next = entries[played];
    const nextT = next ? next.t : duration;
    if (skipIdle.checked && nextT - cursor > IDLE_US) {
      cursor = next ? nextT - LEAD_US : duration;
    }
    if (cursor >= duration) {
      cursor = duration;
      show();
      pause();
      status.textContent = "Played to the end.";
      return;
    }
    show();
  }

  function play() {
    if (cursor >= duration) {
      cursor = 0;
    }
    last = performance.now();
    timer = window.setInterval(tick, TICK_MS);
    playButton.textContent = "Pause";
    status.textContent = "Playing.";
  }

  function pause() {
    window.clearInterval(timer);
    timer = null;
    playButton.textContent = "Play";
    if (current) {
      open(current);
    }
  }

  function jump(x) {
    cursor = x.t;
    show();
    open(x);
  }

  playButton.addEventListener("click", () => (timer ? pause() : play()));
  scrub.addEventListener("input", () => {
    cursor = Number(scrub.value) * 1000;
    show();
  });

  // --- one exchange, whole -------------------------------------------------
  function decode(data) {
    const raw = atob(data || "");
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
    return out;
  }

  function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  // Text with every "[redacted]" marked, so a reader sees what moat removed.
  function withRedactions(text) {
    const pre = el("pre", { class: "body" });
    const parts = text.split("[redacted]");
    parts.forEach((part, i) => {
      if (i > 0) pre.append(el("mark", { class: "redacted", title: "removed by the recording's redaction" }, "[redacted]"));
      pre.append(document.createTextNode(part));
    });
    return pre;
  }

  function hexdump(b) {
    const shown = b.subarray(0, 64 * 1024);
    const lines = [];
    for (let off = 0; off < shown.length; off += 16) {
      const row = shown.subarray(off, off + 16);
      const hex = Array.from(row, (v) => v.toString(16).padStart(2, "0")).join(" ");
      const ascii = Array.from(row, (v) => (v >= 32 && v < 127 ? String.fromCharCode(v) : ".")).join("");
      lines.push(`${off.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
    }
    if (b.length > shown.length) lines.push(`… ${bytes(b.length - shown.length)} more`);
    return el("pre", { class: "body hex" }, lines.join("\n"));
  }

  // A body as what it is: pretty JSON, text, or hex for binary.
  function body(pieces, contentType) {
    const sent = pieces.reduce((n, p) => n + p.len, 0);
    if (sent === 0) return el("p", { class: "hint" }, "No body.");
    const kept = concat(pieces.map((p) => decode(p.data)));
    const wrap = el("div", {});
    if (kept.length === 0) {
      wrap.append(el("p", { class: "hint" },
        `Not kept (${bytes(sent)} sent): the recording keeps no body it cannot search for credentials (compressed, cut off) or past its limit.`));
      return wrap;
    }
    if (kept.length < sent || pieces.some((p) => p.truncated)) {
      wrap.append(el("p", { class: "hint" }, `${bytes(kept.length)} of ${bytes(sent)} kept (the recording's limit).`));
    }
    let text = null;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(kept);
    } catch (_) {
      text = null;
    }
    if (text === null || /[\u0000-\u0008\u000e-\u001f]/.test(text)) {
      wrap.append(hexdump(kept));
      return wrap;
    }
    const looksJson = /json/i.test(contentType || "") || /^\s*[[{]/.test(text);
    if (looksJson) {
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch (_) {
        // Not JSON after all: shown as text.
      }
    }
    wrap.append(withRedactions(text));
    return wrap;
  }

  function headerTable(caption, headers) {
    const rows = (headers || []).map(([n, v]) =>
      el("tr", {}, el("th", { scope: "row" }, n), el("td", {}, v === "[redacted]" ? el("mark", { class: "redacted" }, v) : v)));
    return el("table", { class: "headers" }, el("caption", {}, caption), el("tbody", {}, ...rows));
  }

  // One exchange is read at a time: opening another stops the reading of
  // the last (on the server too).
  let opening = 0;
  let reading = null;
  async function open(x) {
    const ticket = ++opening;
    reading?.abort();
    reading = new AbortController();
    const heading = el("h3", { id: "detail-h" }, x.kind === "http" ? `${x.method} ${x.uri}` : "Exchange");
    detail.replaceChildren(heading, el("p", { class: "hint" }, "Loading…"));
    const parts = { requestBody: [], responseBody: [], ws: [] };
    try {
      await stream(`${eventsUrl}?req=${encodeURIComponent(x.req)}`, () => {}, (e) => {
        switch (e.type) {
          case "request_head": parts.request = e; break;
          case "response_head": parts.response = e; break;
          case "request_body": parts.requestBody.push(e); break;
          case "response_body": parts.responseBody.push(e); break;
          case "exchange_end": parts.end = e; break;
          case "ws_message": parts.ws.push(e); break;
          case "error": parts.error = e; break;
          default: break;
        }
      }, reading.signal);
    } catch (err) {
      if (ticket === opening) {
        detail.replaceChildren(heading, el("p", { class: "error" }, `This exchange cannot be read: ${err.message}`));
      }
      return;
    }
    if (ticket !== opening) return;
    const req = parts.request;
    const resp = parts.response;
    if (req) heading.textContent = `${req.method} ${req.uri}`;
    const out = [heading];
    const timing = [];
    if (req) timing.push(`requested at ${clock(req.t_us)}`);
    if (req && resp) timing.push(`answered ${((resp.t_us - req.t_us) / 1000).toFixed(1)} ms later`);
    if (req && parts.end) timing.push(`done after ${((parts.end.t_us - req.t_us) / 1000).toFixed(1)} ms`);
    out.push(el("p", { class: "timing" }, resp ? `Status ${resp.status}; ` : "No response; ", timing.join(", "), "."));
    if (parts.error) out.push(el("p", { class: "error" }, `Error: ${parts.error.message}`));
    if (req) {
      out.push(el("h4", {}, "Request"),
        el("p", {}, el("code", {}, `${req.method} ${req.uri} ${req.version}`)),
        headerTable("Request headers", req.headers),
        body(parts.requestBody, header(req.headers, "content-type")));
    }
    if (resp) {
      const type = header(resp.headers, "content-type");
      out.push(el("h4", {}, "Response"), headerTable("Response headers", resp.headers),
        body(parts.responseBody, type));
      if (/^text\/html/i.test(type) && resp.status >= 200 && resp.status < 300) {
        const showPage = el("button", { type: "button", class: "secondary" }, "Show the page as the user saw it");
        showPage.addEventListener("click", () => {
          const frame = el("iframe", {
            id: "page-view",
            sandbox: "",
            referrerpolicy: "no-referrer",
            title: `The recorded page ${req ? req.uri : ""}`,
          });
          frame.addEventListener("load", () => {
            frame.dataset.loaded = "yes";
          });
          frame.src = `${viewUrl}${encodeURIComponent(x.req)}`;
          showPage.replaceWith(frame);
        });
        out.push(showPage);
      }
    }
    if (parts.ws.length) {
      out.push(el("h4", {}, `WebSocket messages (${parts.ws.length})`));
      const ol = el("ol", { class: "ws-messages" });
      for (const m of parts.ws) {
        const who = m.dir === "client" ? "browser → app" : "app → browser";
        const repeated = m.repeated ? `, and ${m.repeated} identical before it` : "";
        ol.append(el("li", { class: m.dir },
          el("p", {}, el("span", { class: "at" }, clock(m.t_us)), ` ${who}, ${m.opcode}, ${bytes(m.len)}${repeated}`),
          m.opcode === "text" || m.opcode === "binary"
            ? body([{ data: m.data, len: m.len, truncated: m.truncated }], m.opcode === "text" ? "text/plain" : "")
            : null));
      }
      out.push(ol);
    }
    detail.replaceChildren(...out);
  }

  // --- load ---------------------------------------------------------------
  let loaded = 0;
  stream(`${eventsUrl}?bodies=false`, () => {}, (e) => {
    onEvent(e);
    loaded += 1;
    if (loaded % 500 === 0) status.textContent = `Loading… ${loaded} events so far.`;
  })
    .then(() => {
      placeMarks();
      scrub.max = String(duration / 1000);
      playButton.disabled = false;
      show();
      const n = entries.length;
      status.textContent = n
        ? `${n} exchanges and messages over ${clock(duration)}. Press Play, or choose one.`
        : "This recording holds no exchange.";
    })
    .catch((err) => {
      status.textContent = `The recording cannot be played: ${err.message}`;
      status.classList.add("error");
    });
})();
