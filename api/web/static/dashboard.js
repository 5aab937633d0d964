// The dashboard: its panels, each loaded from the API, refreshed when an event that can
// change it arrives on the live stream (batched; the refresh asks for min_position = the
// event's position, so it never shows a read model older than the event that woke it).
"use strict";

(() => {
  const { api, all, el, svg, replace, time, short, number, link, INSTANCE_STATES } = LRM;
  const HOUR = 3600 * 1000;
  const DEBOUNCE_MS = 100;
  const TRACK = 9; // px per overlapping booking in a Gantt lane
  let seen = 0; // the highest log position a panel refresh must reflect
  let instances = [];
  let counts = { by_state: {}, total: 0 }; // from /instances/counts: every instance, not just the listed ones
  let stateFilter = null;
  let fleetWorkers = []; // the last fleet read, so the Gantt shows idle workers as empty lanes

  const denied = (target, err) => {
    if (err && (err.status === 403 || err.status === 401)) {
      replace(target, el("p", { class: "muted" }, "Needs an admin or instructor token."));
      return true;
    }
    return false;
  };
  const since = () => (seen ? { min_position: seen } : {});

  // -- cost ---------------------------------------------------------------------------
  async function loadCost() {
    try {
      const cost = await api("/fleet/cost", since());
      const kpi = (label, value, title) => el("div", { class: "kpi", title }, el("b", {}, value), el("span", {}, label));
      replace("cost",
        kpi("cost so far", `$${number(cost.cost, 2)}`),
        kpi("worker-hours", number(cost.worker_hours, 2)),
        kpi("idle share", `${number(100 * (cost.idle_share || 0), 0)} %`, "share of worker-hours with no lab held"),
        kpi("lower bound", number(cost.lower_bound_worker_hours, 2), "worker-hours the bookings needed at least"),
        kpi("workers billed", cost.workers));
    } catch (err) {
      if (!denied("cost", err)) throw err;
    }
  }

  // -- fleet: one card per live worker, bars now and peak over the horizon -------------
  function bar(label, used, peak, total, unit) {
    const pct = (x) => `${Math.min(100, total ? (100 * x) / total : 0).toFixed(1)}%`;
    return el("div", { class: "bar", title: `${label}: ${number(used, 0)} now, peak ${number(peak, 0)} of ${number(total, 0)} ${unit}` },
      el("span", { class: "bar-label" }, label),
      el("span", { class: "bar-track" },
        el("span", { class: "bar-peak", style: { width: pct(peak) } }),
        el("span", { class: "bar-now", style: { width: pct(used) } })),
      el("span", { class: "bar-value" }, `${number(used, 0)}/${number(total, 0)}`));
  }

  async function loadFleet() {
    const hours = Number(document.getElementById("horizon").value);
    const now = new Date();
    try {
      const [workers, capacity] = await Promise.all([
        all("/workers", { live: true, ...since() }),
        api("/capacity", { from: now.toISOString(), to: new Date(now.getTime() + hours * HOUR).toISOString(), ...since() }),
      ]);
      const peaks = Object.fromEntries(capacity.workers.map((w) => [w.worker_id, w.reserved_peak]));
      fleetWorkers = workers.items;
      if (!workers.items.length) {
        replace("fleet", el("p", { class: "muted" }, "No live workers. The autoscaler starts some when instances are booked."));
        return;
      }
      replace("fleet", workers.items.map((w) => {
        const peak = peaks[w.id] || w.reserved_now;
        const d = w.declared;
        const r = w.reserved_now;
        return el("article", { class: `card worker worker-${w.state}`, dataset: { workerId: w.id } },
          el("header", {},
            link(w.id, `worker ${short(w.id)}`),
            el("span", { class: `state state-${w.state}` }, w.state)),
          el("p", { class: "muted" }, `${w.template_name}${w.license_type ? ` · ${w.license_type}` : ""}`,
            w.state === "PENDING" || w.state === "PROVISIONING" ? ` · ready ≈ ${time(w.expected_ready_at, false)}` : "",
            w.ip ? ` · ${w.ip}` : ""),
          bar("cpu", r.cpu_cores, peak.cpu_cores, d.cpu_cores, "cores"),
          bar("mem", r.memory_gb, peak.memory_gb, d.memory_gb, "GB"),
          bar("nodes", r.nodes, peak.nodes, d.nodes, "nodes"),
          bar("ports", r.ports, peak.ports, d.ports, "ports"),
          el("p", { class: "muted small" }, `${w.reservations.length} reservation(s)`));
      }));
    } catch (err) {
      if (!denied("fleet", err)) throw err;
    }
  }

  // -- reservations: a Gantt strip per worker over the next 24 h, and the queue ---------
  async function loadReservations() {
    const from = new Date();
    const to = new Date(from.getTime() + 24 * HOUR);
    try {
      const rows = await all("/reservations", { from: from.toISOString(), to: to.toISOString(), ...since() });
      const byWorker = new Map(fleetWorkers.map((w) => [w.id, []]));
      for (const r of rows.items) {
        if (!byWorker.has(r.worker_id)) byWorker.set(r.worker_id, []);
        byWorker.get(r.worker_id).push(r);
      }
      const width = 1000;
      const label = 120;
      const rowHeight = 24;
      const x = (iso) => label + ((width - label) * Math.max(0, Math.min(1, (new Date(iso) - from) / (to - from))));
      // Overlapping bookings of one worker go on separate tracks (first free track wins).
      const lanes = new Map();
      for (const [workerId, list] of byWorker) {
        const ends = [];
        lanes.set(workerId, list.slice().sort((a, b) => String(a.hold_start).localeCompare(String(b.hold_start))).map((r) => {
          let track = ends.findIndex((end) => end <= new Date(r.hold_start));
          if (track < 0) track = ends.length;
          ends[track] = new Date(r.hold_end);
          return { r, track };
        }));
      }
      const laneHeight = (list) => Math.max(rowHeight, 6 + list.reduce((n, b) => Math.max(n, b.track + 1), 1) * TRACK);
      const height = 22 + Math.max(rowHeight, [...lanes.values()].reduce((sum, list) => sum + laneHeight(list), 0));
      const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "gantt-svg", role: "img",
        "aria-label": "reservations per worker over the next 24 hours" });
      for (let h = 0; h <= 24; h += 3) {
        const tx = label + ((width - label) * h) / 24;
        chart.append(svg("line", { x1: tx, x2: tx, y1: 16, y2: height, class: "tick" }),
          svg("text", { x: tx, y: 12, class: "tick-label" }, h === 0 ? "now" : time(new Date(from.getTime() + h * HOUR), false).slice(0, 5)));
      }
      let y = 22;
      if (!byWorker.size) chart.append(svg("text", { x: label, y: y + 16, class: "muted" }, "no reservations"));
      for (const [workerId, list] of lanes) {
        const lane = laneHeight(list);
        chart.append(svg("a", { href: `/workers/${encodeURIComponent(workerId)}` },
          svg("text", { x: 4, y: y + 16, class: "row-label" }, `worker ${short(workerId)}`)));
        chart.append(svg("rect", { x: label, y: y + 2, width: width - label, height: lane - 4, class: "lane" }));
        for (const { r, track } of list) {
          const x0 = x(r.hold_start);
          const x1 = Math.max(x0 + 2, x(r.hold_end));
          chart.append(svg("a", { href: `/instances/${encodeURIComponent(r.instance_id)}` },
            svg("rect", { x: x0, y: y + 4 + track * TRACK, width: x1 - x0, height: TRACK - 2, rx: 2,
              class: `booking${r.active ? " active" : ""}`, "data-instance-id": r.instance_id },
            svg("title", {}, `${r.instance_id}\n${time(r.hold_start)} → ${time(r.hold_end)}\nports ${Object.values(r.ports).join(", ")}`))));
        }
        y += lane;
      }
      replace("gantt", chart, rows.complete ? null : el("p", { class: "muted" }, "(first 5 000 reservations shown)"));
    } catch (err) {
      if (!denied("gantt", err)) throw err;
    }
    const queue = await all("/scheduling/queue", since(), 2);
    document.getElementById("queue-count").textContent = queue.items.length;
    replace("queue", queue.items.length ? queue.items.map((q) => el("li", { dataset: { instanceId: q.instance_id } },
      link(q.instance_id), ` ${q.definition_name} for ${q.owner_id}, `,
      q.timeslot_start ? `from ${time(q.start)}` : "ASAP",
      el("br"), el("small", { class: "muted" }, q.last_failure || "not tried yet"))) : el("li", { class: "muted" }, "empty"));
  }

  // -- instances: counts by state (the API counts them all) and a filterable table -------
  function renderInstances() {
    const byState = counts.by_state;
    replace("state-counts", el("button", { type: "button", class: `chip${stateFilter ? "" : " on"}`,
      onclick: () => { stateFilter = null; renderInstances(); } }, `all ${counts.total}`),
    INSTANCE_STATES.filter((s) => byState[s]).map((s) => el("button", {
      type: "button", class: `chip state-${s}${stateFilter === s ? " on" : ""}`, dataset: { state: s },
      onclick: () => { stateFilter = stateFilter === s ? null : s; renderInstances(); },
    }, `${s} ${byState[s]}`)));
    const text = document.getElementById("instance-filter").value.trim().toLowerCase();
    const shown = instances.filter((i) => (!stateFilter || i.state === stateFilter) && (!text ||
      [i.id, i.state, i.owner_id, i.definition_name, i.worker_id, i.reservation_id].some((v) => v && String(v).toLowerCase().includes(text))));
    replace(document.querySelector("#instances tbody"), shown.slice(0, 500).map((i) => el("tr", { dataset: { id: i.id, state: i.state } },
      el("td", {}, link(i.id)),
      el("td", {}, el("span", { class: `state state-${i.state}` }, i.state)),
      el("td", {}, i.owner_id),
      el("td", {}, `${i.definition_name} ${i.definition_version}`),
      el("td", {}, i.timeslot_start ? time(i.slot_start) : "ASAP", " → ", time(i.slot_end, false)),
      el("td", {}, link(i.worker_id)))));
  }

  async function loadInstances() {
    const [page, tally] = await Promise.all([all("/instances", since(), 4), api("/instances/counts", since())]);
    counts = tally;
    // Live labs first, then the newest.
    const rank = (s) => (s === "TERMINATED" || s === "ARCHIVED" ? 1 : 0);
    instances = page.items.sort((a, b) => rank(a.state) - rank(b.state) || String(b.requested_at).localeCompare(String(a.requested_at)));
    renderInstances();
  }

  // -- decisions: placement and scaling, newest first --------------------------------
  function describeAction(a) {
    const what = [a.template, a.count ? `× ${a.count}` : null, a.worker_id ? `worker ${short(a.worker_id)}` : null,
      a.covers && a.covers.length ? `for ${a.covers.length} lab(s)` : null,
      a.needed_by ? `needed by ${time(a.needed_by, false)}` : null].filter(Boolean).join(" ");
    return `${a.action}${what ? ` ${what}` : ""}${a.reason ? ` (${a.reason})` : ""}`;
  }

  async function loadDecisions() {
    const [placement, scaling] = await Promise.allSettled([
      api("/scheduling/decisions", { limit: 20, ...since() }),
      api("/scaling/decisions", { limit: 8, has_actions: true, ...since() }),
    ]);
    const none = (text) => el("li", { class: "muted" }, text);
    if (placement.status === "fulfilled") {
      const items = placement.value.items;
      replace("placement-decisions", items.length ? items.map((d) => el("li", { class: `decision ${d.outcome}`, dataset: { instanceId: d.instance_id } },
        el("span", { class: "tag" }, d.outcome), el("time", {}, time(d.occurred_at)), " ",
        d.outcome === "placed" ? [link(d.instance_id), " on ", link(d.worker_id)] : [link(d.instance_id), ": ", d.summary || "no worker fits"],
        el("small", { class: "muted" }, ` by ${d.actor}`))) : none("no placements yet"));
    } else if (!denied("placement-decisions", placement.reason)) throw placement.reason;
    if (scaling.status === "fulfilled") {
      const items = scaling.value.items;
      replace("scaling-decisions", items.length ? items.map((d) => el("li", { class: "decision scaling" },
        el("span", { class: "tag" }, "scaling"), el("time", {}, time(d.at)), " ",
        d.actions.filter((a) => a.action !== "NoAction").map(describeAction).join("; ") || "no action",
        el("br"), el("small", { class: "muted" }, d.reason),
        d.rejected && d.rejected.length ? el("small", { class: "error" }, ` · ${d.rejected.length} refused`) : null))
        : none("no scaling actions yet"));
    } else if (!denied("scaling-decisions", scaling.reason)) throw scaling.reason;
  }

  // -- hygiene: unowned and vanished CML labs (auditors), quotas (everyone's own) ------
  async function loadHygiene() {
    try {
      const found = await api("/reconciliation");
      const rows = found.workers.flatMap((w) => [
        ...w.orphans.map((o) => el("li", { dataset: { lab: o.lab_id } }, "lab ", el("code", {}, o.lab_id), " on ",
          link(w.worker_id), ` owned by no instance since ${time(o.first_seen)}; removed at ${time(o.removal_due)}`)),
        ...w.vanished.map((v) => el("li", { class: "error", dataset: { lab: v.lab_id } }, link(v.instance_id),
          ` lost its CML lab ${v.lab_id} on `, link(w.worker_id))),
      ]);
      replace("hygiene", ...(rows.length ? rows : [el("li", { class: "muted" }, "every CML lab belongs to an instance")]));
    } catch (err) {
      if (!denied("hygiene", err)) throw err;
    }
    const own = await api("/quotas/me");
    let items = own.items;
    if (!items.length) items = (await api("/quotas").catch(() => ({ items: [] }))).items;
    const remaining = (q) => Object.entries(q.remaining).map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`).join(", ");
    const quota = (q) => el("li", { dataset: { quota: q.quota } }, el("b", {}, q.quota),
      ` · ${q.concurrent_labs_now} lab(s) now, ${number(q.lab_hours_today, 1)} h today · remaining ${remaining(q) || "no limit"}`);
    replace("quotas", ...(items.length ? items.map(quota) : [el("li", { class: "muted" }, "no quota applies")]));
  }

  // -- read models: lag, parked events (an admin retries or skips them), rebuild progress --
  async function loadReadModels() {
    const response = await fetch("/readyz", { headers: { Accept: "application/json" } });
    const body = await response.json();
    const rows = Object.values((body.checks || {}).projections || {});
    const problems = rows.filter((r) => !r.ok || r.parked || r.rebuild);
    const item = (r) => {
      const parts = [];
      if (r.parked) parts.push(`${r.parked} parked event(s): see /api/v1/projections/parked`);
      if (r.rebuild) {
        const done = r.rebuild.head ? Math.floor((100 * r.rebuild.position) / r.rebuild.head) : 100;
        parts.push(`rebuilding ${done} % · ${number(r.rebuild.events_per_s, 0)} events/s` +
          (r.rebuild.eta_seconds != null ? ` · ${number(r.rebuild.eta_seconds, 0)} s left` : ""));
      }
      if (r.lag) parts.push(`${r.lag} events behind`);
      return el("li", { class: r.ok ? "" : "error", dataset: { readmodel: r.name } }, el("b", {}, r.name || "read models"),
        ` · ${parts.join(" · ") || (r.problems || [r.error || "not ready"]).join(", ")}`);
    };
    replace("readmodels", ...(problems.length ? problems.map(item)
      : [el("li", { class: "muted" }, `all ${rows.length} read models current`)]));
  }

  // -- live: which panels an event can change ---------------------------------------
  const panels = { cost: loadCost, fleet: loadFleet, reservations: loadReservations, instances: loadInstances,
    decisions: loadDecisions, hygiene: loadHygiene, readmodels: loadReadModels };
  const dirty = new Set();

  function affected(event) {
    const stream = event.data.stream_id || "";
    const type = event.type;
    if (stream.startsWith("Worker-")) return ["fleet", "reservations", "cost", "decisions"];
    if (stream.startsWith("LabletInstance-")) {
      return type.startsWith("Placement") ? ["instances", "reservations", "decisions"] : ["instances", "reservations"];
    }
    if (stream.startsWith("ScalingDecision-")) return ["decisions", "fleet"];
    if (/^(LabReconciliation|QuotaUsage|QuotaPolicy)-/.test(stream)) return ["hygiene"];
    if (/Placement|Scheduling/.test(stream) || type.startsWith("Placement")) return ["decisions", "reservations"];
    return [];
  }

  // Panels refresh in parallel (the Gantt after the fleet, whose idle workers it draws as
  // empty lanes); each failure stays in its panel (a 504: the read model was behind, so it
  // is marked again and retried with the next event or tick).
  async function run(name) {
    try {
      await panels[name]();
    } catch (err) {
      console.warn(`panel ${name}`, err);
      if (err.status === 504) dirty.add(name);
    }
  }
  async function refresh(names) {
    const chained = names.has("fleet") && names.has("reservations");
    await Promise.all([...names].filter((n) => !(chained && n === "reservations"))
      .map((n) => (chained && n === "fleet" ? run("fleet").then(() => run("reservations")) : run(n))));
  }
  // Batch the events of a burst: the first one schedules a refresh DEBOUNCE_MS later, the
  // rest join it; while a refresh runs, new events wait for it and then trigger one more.
  // So a long burst (an exam wave) still updates the page several times a second, and the
  // page never has more than one refresh in flight.
  let timer = null;
  let running = false;
  function flush() {
    if (timer || running) return;
    timer = setTimeout(async () => {
      timer = null;
      running = true;
      const names = new Set(dirty);
      dirty.clear();
      try {
        await refresh(names);
      } finally {
        running = false;
        if (dirty.size) flush();
      }
    }, DEBOUNCE_MS);
  }

  LRM.boot(async (session) => {
    seen = session.head || 0;
    document.getElementById("instance-filter").addEventListener("input", renderInstances);
    document.getElementById("horizon").addEventListener("change", () => loadFleet().then(loadReservations));
    await refresh(new Set(Object.keys(panels)));
    document.body.dataset.loaded = "true";
    // Cost and the "now" of the bars move with the clock even without events.
    setInterval(() => { for (const n of ["cost", "fleet", "reservations"]) dirty.add(n); flush(); }, 60000);
    // Lag and rebuild progress move without an event the page would see: every 5 s.
    setInterval(() => { dirty.add("readmodels"); flush(); }, 5000);
    LRM.follow(session.head, (event) => {
      const position = Number(event.id);
      if (position > seen) seen = position;
      for (const name of affected(event)) dirty.add(name);
      if (dirty.size) flush();
    }, () => refresh(new Set(Object.keys(panels))));
  });
})();
