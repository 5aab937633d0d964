// Shared by every page: the token (sessionStorage), API calls with the bearer token,
// small DOM helpers, and the live event stream read with fetch (EventSource cannot send
// an Authorization header, and a token in a URL ends up in logs).
"use strict";

const LRM = (() => {
  const API = "/api/v1";
  const TOKEN_KEY = "lrm.token";

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value === undefined || value === null || value === "") continue;
      for (const item of Array.isArray(value) ? value : [value]) search.append(key, item);
    }
    const text = search.toString();
    return text ? `?${text}` : "";
  }

  async function api(path, params, init) {
    const response = await fetch(API + path + query(params), {
      ...(init || {}),
      headers: { Accept: "application/json", Authorization: `Bearer ${token()}`, ...((init || {}).headers || {}) },
    });
    const body = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // Every page of a list (``{items, next_cursor}``), up to ``maxPages`` pages.
  async function all(path, params, maxPages = 10) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < maxPages; page += 1) {
      const body = await api(path, { ...params, limit: 500, cursor });
      items.push(...body.items);
      cursor = body.next_cursor;
      if (!cursor) return { items, complete: true };
    }
    return { items, complete: false };
  }

  // el("td", {class: "x", dataset: {id: 1}, onclick: f}, "text", otherNode)
  function el(tag, attrs, ...children) {
    const node = document.createElementNS(
      tag === "svg" || (attrs && attrs.svg) ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
      tag,
    );
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "svg" || value === undefined || value === null || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") Object.assign(node.style, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const svg = (tag, attrs, ...children) => el(tag, { ...attrs, svg: true }, ...children);

  function replace(target, ...children) {
    const node = typeof target === "string" ? document.getElementById(target) : target;
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
    return node;
  }

  const pad = (n) => String(n).padStart(2, "0");
  function time(iso, withDate = true) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}` : clock;
  }
  const short = (id) => (id ? String(id).replace(/^(LabletInstance|Worker)-/, "").slice(0, 8) : "");
  const number = (x, digits = 1) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const link = el("a", { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function setLive(state) {
    const badge = document.getElementById("live");
    if (!badge) return;
    // "on", not "live": `.live.live` would match the badge in every state (it always has .live)
    badge.className = `live ${state === "live" ? "on" : state}`;
    badge.textContent = { live: "live", connecting: "connecting…", polling: "polling", off: "offline" }[state] || state;
  }

  // The global log as Server-Sent Events, parsed from a fetch body. Resumes with
  // Last-Event-ID after a drop. ``onEvent({id, type, data})``; resolves with the HTTP status
  // if the stream is refused (401/403: the caller's role may not follow the log).
  async function stream(after, onEvent) {
    let last = after;
    for (;;) {
      setLive("connecting");
      try {
        const headers = { Accept: "text/event-stream", Authorization: `Bearer ${token()}` };
        if (last !== null && last !== undefined) headers["Last-Event-ID"] = String(last);
        const response = await fetch(`${API}/events/stream`, { headers, cache: "no-store" });
        if (response.status === 401 || response.status === 403) return response.status;
        if (!response.ok || !response.body) throw new Error(`stream: HTTP ${response.status}`);
        setLive("live");
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let match;
          while ((match = /\r\n\r\n|\n\n|\r\r/.exec(buffer))) {
            const block = buffer.slice(0, match.index);
            buffer = buffer.slice(match.index + match[0].length);
            const message = { id: null, type: "message", data: "" };
            for (const line of block.split(/\r\n|\n|\r/)) {
              if (!line || line.startsWith(":")) continue;
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "id") message.id = val;
              else if (field === "event") message.type = val;
              else if (field === "data") message.data += (message.data ? "\n" : "") + val;
            }
            if (message.id !== null) last = message.id;
            if (message.data) {
              try {
                onEvent({ id: message.id, type: message.type, data: JSON.parse(message.data) });
              } catch (error) {
                console.error("event handler", error);
              }
            }
          }
        }
      } catch (error) {
        console.warn("event stream dropped; reconnecting", error);
      }
      setLive("off");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  // Follow the log: ``onEvent`` for each event after ``after``. If the role may not read the
  // log, fall back to calling ``onPoll`` every few seconds.
  async function follow(after, onEvent, onPoll) {
    const refused = await stream(after, onEvent);
    if (refused) {
      setLive("polling");
      setInterval(onPoll, 5000);
    }
  }

  // Ask for a token if there is none (or it is refused), then run ``start(session)``.
  // session = {auditor: may read every instance and the live log}.
  function boot(start) {
    const login = document.getElementById("login");
    const app = document.getElementById("app");
    const logout = document.getElementById("logout");
    const form = document.getElementById("login-form");
    const error = document.getElementById("login-error");

    async function check() {
      // Every role reads definitions; only admins and instructors read the log.
      await api("/definitions", { limit: 1 });
      try {
        const head = await api("/events", { limit: 1 });
        return { auditor: true, head: head.head };
      } catch (err) {
        if (err.status === 403) return { auditor: false, head: null };
        throw err;
      }
    }

    async function enter() {
      try {
        const session = await check();
        login.hidden = true;
        app.hidden = false;
        logout.hidden = false;
        document.getElementById("whoami").textContent = session.auditor ? "full view" : "own labs only";
        await start(session);
      } catch (err) {
        if (err.status === 401) sessionStorage.removeItem(TOKEN_KEY);
        error.textContent = err.status === 401 ? "Unknown token." : `Cannot reach the API: ${err.message}`;
        app.hidden = true;
        login.hidden = false;
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
      document.getElementById("token").value = "";
      error.textContent = "";
      enter();
    });
    logout.addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      window.location.reload();
    });
    if (token()) enter();
    else login.hidden = false;
  }

  const INSTANCE_STATES = ["PENDING", "SCHEDULED", "INSTANTIATING", "READY", "RUNNING", "COLLECTING",
    "GRADING", "STOPPING", "STOPPED", "ARCHIVED", "TERMINATED"];

  // The page of a stream id: an instance or a worker timeline.
  function link(id, text) {
    if (!id) return "";
    const kind = String(id).startsWith("Worker-") ? "workers" : String(id).startsWith("LabletInstance-") ? "instances" : null;
    const label = text === undefined ? short(id) : text;
    return kind ? el("a", { href: `/${kind}/${encodeURIComponent(id)}`, title: id }, label) : label;
  }

  return { API, ApiError, api, all, el, svg, replace, time, short, number, debounce, download, stream, follow,
    boot, setLive, link, token, INSTANCE_STATES };
})();
