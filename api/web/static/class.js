// A class's seats as a grid, one cell per seat (owner, state, worker), live: an event on a
// seat's stream (or the class's) refreshes the grid, batched, reading the class at the
// event's position so the grid never shows an older state than the event it reacts to.
"use strict";

(() => {
  const { api, el, replace, time, link } = LRM;
  const root = document.getElementById("class-root");
  const classId = root.dataset.classId;
  let seats = new Set();
  let seen = 0;

  async function load() {
    const params = seen ? { min_position: seen } : {};
    const c = await api(`/classes/${encodeURIComponent(classId)}`, params);
    seats = new Set(c.seats.map((s) => s.instance_id));
    document.getElementById("class-summary").textContent =
      `${c.definition_name} ${c.definition_version} · ${c.timeslot_start ? time(c.timeslot_start) : "ASAP"} → ` +
      `${time(c.timeslot_end)} · ${c.seats.length} seats · ${c.state}${c.queued ? " · queued" : ""} · booked by ${c.booked_by}`;
    replace("class-counts", ...Object.entries(c.by_state).map(([state, n]) =>
      el("span", { class: `state state-${state}`, dataset: { state } }, `${state} ${n}`)));
    replace("seats", ...c.seats.map((s) => el("div", {
      class: `seat state-${s.state || "UNKNOWN"}`, dataset: { owner: s.owner_id, state: s.state || "" },
      title: `${s.owner_id}: ${s.instance_id}`,
    },
    el("strong", {}, s.owner_id),
    el("span", { class: "seat-state" }, s.state || "…"),
    el("small", {}, link(s.instance_id, "timeline")),
    s.worker_id ? el("small", {}, link(s.worker_id)) : null)));
  }

  const reload = LRM.debounce(() => load().catch((err) => console.warn("class", err)), 150);

  LRM.boot(async (session) => {
    seen = session.head || 0;
    await load();
    document.body.dataset.loaded = "true";
    LRM.follow(session.head, (event) => {
      const position = Number(event.id);
      if (position > seen) seen = position;
      const stream = event.data.stream_id || "";
      if (stream === classId || seats.has(stream)) reload();
    }, reload);
  });
})();
