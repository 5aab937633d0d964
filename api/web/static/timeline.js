// The timeline of one instance or worker: every event in log order with its actor, cause
// and a plain sentence, a replay (step, play, slider) showing the state after each step,
// and exports. The state is folded here step by step (so two events in the same instant
// are still two steps); for instances the server's ``state?at=`` adds the full record.
"use strict";

(() => {
  const { api, el, replace, time, short, debounce, download, link } = LRM;
  const root = document.getElementById("timeline-root");
  const kind = root.dataset.kind; // "instance" | "worker"
  const subject = root.dataset.streamId;
  const PLAY_MS = 700;

  // Event type -> the state it enters (absent: the state stays).
  const INSTANCE_STATES = {
    InstanceRequested: "PENDING", PlacementFailed: "PENDING", InstanceRequeued: "PENDING",
    InstanceScheduled: "SCHEDULED", InstantiationStarted: "INSTANTIATING", InstanceReady: "READY",
    UserLoggedIn: "RUNNING", InstanceRestarted: "RUNNING", CollectionStarted: "COLLECTING",
    GradingStarted: "GRADING", GradingCompleted: "STOPPING", GradingFailed: "STOPPING", StopRequested: "STOPPING",
    InstanceStopped: "STOPPED", InstanceArchived: "ARCHIVED", InstanceTerminated: "TERMINATED",
  };
  const WORKER_STATES = {
    WorkerRequested: "PENDING", WorkerProvisioningStarted: "PROVISIONING", WorkerReady: "RUNNING",
    WorkerProvisioningFailed: "FAILED", DrainingStarted: "DRAINING", DrainCancelled: "RUNNING",
    WorkerStopping: "STOPPING", WorkerStopped: "STOPPED", WorkerRestartRequested: "PROVISIONING",
    WorkerTerminated: "TERMINATED",
  };
  const ports = (p) => Object.entries(p || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none";
  const WORKER_SENTENCES = {
    WorkerRequested: (d) => `Requested from template ${d.template_name} (${d.reason}); expected ready ${time(d.expected_ready_at)}`,
    WorkerProvisioningStarted: (d) => `Cloud VM ${d.cloud_instance_id} launching in ${d.region}; CML expected ready ${time(d.expected_ready_at)}`,
    WorkerReady: (d) => `CML ready at ${d.ip}; accepts instances`,
    WorkerProvisioningFailed: (d) => `Provisioning failed: ${d.error}`,
    DrainingStarted: (d) => `Draining (${d.reason}): accepts nothing new; ${(d.held_instance_ids || []).length} lab(s) to finish by ${time(d.drain_deadline)}`,
    DrainCancelled: (d) => `Drain cancelled (${d.reason})`,
    WorkerStopping: (d) => `Stopping (${d.reason})${d.forced ? ", forced" : ""}`,
    WorkerStopped: () => "Stopped: no compute cost",
    WorkerRestartRequested: (d) => `Restart requested (${d.reason}); expected ready ${time(d.expected_ready_at)}`,
    WorkerTerminated: (d) => `Terminated (${d.reason})${d.forced ? ", forced" : ""}`,
    CapacityReserved: (d) => `Reserved ${d.nodes} node(s) for ${d.instance_id}, ${time(d.hold_start)} → ${time(d.hold_end)}, ports ${ports(d.ports)}`,
    CapacityReleased: (d) => `Released the reservation of ${d.instance_id} (${d.reason})`,
    ReservationExtended: (d) => `Extended the reservation of ${d.instance_id} to ${time(d.hold_end)}`,
  };
  const words = (type) => type.replace(/(?!^)([A-Z])/g, " $1").replace(/^./, (c) => c.toUpperCase());

  let steps = [];
  let index = 0;
  let player = null;
  let generation = 0; // bumped on every move of the replay
  const pastStates = new Map(); // occurred_at -> promise of the state?at= answer

  function describe(row) {
    if (row.description) return row.description;
    const sentence = WORKER_SENTENCES[row.type];
    let text;
    try {
      text = sentence ? sentence(row.data || {}) : words(row.type);
    } catch (err) {
      text = words(row.type);
    }
    return row.actor ? `${text} (by ${row.actor})` : text;
  }

  // Fold the events: the state after each step (and, for workers, what they hold).
  function fold(rows) {
    let state = null;
    const held = new Map();
    let ip = null;
    return rows.map((row, i) => {
      const own = !row.stream_id || row.stream_id === subject;
      const next = (kind === "instance" ? INSTANCE_STATES : WORKER_STATES)[row.type];
      if (own && next) state = next;
      const d = row.data || {};
      if (kind === "worker") {
        if (row.type === "CapacityReserved") held.set(d.instance_id, d);
        if (row.type === "CapacityReleased") held.delete(d.instance_id);
        if (row.type === "WorkerReady") ip = d.ip;
      }
      return { ...row, step: i + 1, state, held: [...held.keys()], ip, description: describe(row) };
    });
  }

  function cause(row) {
    const c = row.causation_id || "";
    const human = /^(admin|instructor|user|service|grader):/.test(row.actor || "");
    const ids = c.match(/(LabletInstance|Worker)-[0-9a-f-]{36}/);
    const parts = [];
    if (human) parts.push("command ");
    if (ids && ids[0] !== subject) parts.push(link(ids[0], c.length > 44 ? short(ids[0]) : c));
    else parts.push(el("code", { title: c }, c.length > 44 ? `${c.slice(0, 44)}…` : c));
    return el("span", { class: "cause", title: `causation ${c}\ncorrelation ${row.correlation_id || ""}`,
      dataset: { correlation: row.correlation_id || "" } }, parts);
  }

  function render() {
    const tbody = document.querySelector("#events tbody");
    replace(tbody, steps.map((s, i) => el("tr", {
      dataset: { step: s.step, position: s.position, type: s.type },
      onclick: () => show(i),
    },
    el("td", {}, s.step),
    el("td", { title: s.occurred_at }, time(s.occurred_at)),
    el("td", {}, el("span", { class: "type" }, s.type), s.stream_id && s.stream_id !== subject ? el("small", { class: "muted" }, " on ", link(s.stream_id)) : null),
    el("td", {}, s.actor),
    el("td", {}, cause(s)),
    el("td", {}, s.description))));
    const slider = document.getElementById("slider");
    slider.max = Math.max(0, steps.length - 1);
    const last = steps[steps.length - 1];
    document.getElementById("summary").textContent = steps.length
      ? `${steps.length} events, ${time(steps[0].occurred_at)} → ${time(last.occurred_at)}; now ${last.state || "?"}`
      : "No events (yet).";
  }

  function field(name, value) {
    return value === null || value === undefined || value === "" ? [] : [el("dt", {}, name), el("dd", {}, value)];
  }

  function pastState(at) {
    if (!pastStates.has(at)) pastStates.set(at, api(`/instances/${encodeURIComponent(subject)}/state`, { at }).catch(() => null));
    return pastStates.get(at);
  }

  async function show(i) {
    if (!steps.length) {
      document.getElementById("step-label").textContent = "step 0 / 0";
      return;
    }
    index = Math.max(0, Math.min(steps.length - 1, i));
    generation += 1;
    const mine = generation;
    const s = steps[index];
    document.getElementById("slider").value = index;
    document.getElementById("step-label").textContent = `step ${index + 1} / ${steps.length}`;
    document.getElementById("state-step").textContent = `${index + 1}`;
    const badge = document.getElementById("replay-state");
    badge.textContent = s.state || "–";
    badge.className = `state state-${s.state}`;
    badge.dataset.state = s.state || "";
    document.getElementById("replay-at").textContent = `at ${time(s.occurred_at)} · ${s.type}`;
    document.querySelectorAll("#events tbody tr").forEach((tr, j) => {
      tr.classList.toggle("current", j === index);
      tr.classList.toggle("future", j > index);
    });
    const fields = document.getElementById("replay-fields");
    if (kind === "worker") {
      replace(fields, field("ip", s.ip), field("holds", s.held.length ? s.held.map((id) => [link(id), " "]) : "nothing"));
      return;
    }
    replace(fields, el("dd", { class: "muted" }, "loading the record…"));
    const past = await pastState(s.occurred_at);
    if (mine !== generation) return; // the user moved on meanwhile
    if (!past) {
      replace(fields, el("dd", { class: "muted" }, "record unavailable"));
      return;
    }
    const p = past.instance;
    replace(fields,
      field("record", `as of ${time(past.as_of)} (version ${past.version}, ${p.state})${
        p.state !== s.state ? "; includes later events of the same instant" : ""}`),
      field("definition", `${p.definition_name} ${p.definition_version}`),
      field("owner", p.owner_id),
      field("reservation", p.reservation_id),
      field("worker", p.worker_id ? link(p.worker_id) : null),
      field("hold", p.hold_start ? `${time(p.hold_start)} → ${time(p.hold_end)}` : null),
      field("ports", Object.keys(p.allocated_ports || {}).length ? ports(p.allocated_ports) : null),
      field("CML lab", p.cml_lab_id),
      field("retries", p.retry_count || null),
      field("error", p.last_error),
      field("score", p.score_report ? `${p.score_report.score}/${p.score_report.max_score}` : null),
      field("termination", p.termination_reason));
  }

  // The state at any moment is the state after the last step at or before it (a local time).
  function showMoment(value) {
    const at = new Date(value);
    if (Number.isNaN(at.getTime())) return;
    const last = steps.reduce((found, s, i) => (new Date(s.occurred_at) <= at ? i : found), -1);
    if (last >= 0) {
      show(last);
      return;
    }
    generation += 1; // a record still loading for an earlier step must not land here
    index = 0;
    document.getElementById("slider").value = 0;
    document.getElementById("step-label").textContent = `before step 1 / ${steps.length}`;
    const badge = document.getElementById("replay-state");
    badge.textContent = "not yet requested";
    badge.className = "state";
    badge.dataset.state = "";
    document.getElementById("replay-at").textContent = `at ${time(at.toISOString())}`;
    replace("replay-fields");
    document.querySelectorAll("#events tbody tr").forEach((tr) => tr.classList.add("future"));
  }

  function play() {
    const button = document.getElementById("play");
    if (player) {
      clearInterval(player);
      player = null;
      button.textContent = "▶ Play";
      return;
    }
    if (index >= steps.length - 1) show(0);
    button.textContent = "⏸ Pause";
    player = setInterval(() => {
      if (index >= steps.length - 1) play();
      else show(index + 1);
    }, PLAY_MS);
  }

  const COLUMNS = ["step", "position", "occurred_at", "type", "stream_id", "version", "state", "actor",
    "causation_id", "correlation_id", "description"];
  function csvCell(value) {
    let text = value === null || value === undefined ? "" : String(value);
    if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`; // a spreadsheet must not run it as a formula
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }
  const exportName = (ext) => `${subject}-timeline.${ext}`;
  function exportJson() {
    const body = { subject, kind, exported_at: new Date().toISOString(),
      events: steps.map(({ held, ip, ...row }) => row) };
    download(exportName("json"), "application/json", JSON.stringify(body, null, 2));
  }
  function exportCsv() {
    const lines = [COLUMNS.join(",")].concat(steps.map((s) => COLUMNS.map((c) => csvCell(c === "stream_id" ? s.stream_id || subject : s[c])).join(",")));
    download(exportName("csv"), "text/csv", `${lines.join("\r\n")}\r\n`);
  }

  async function load(minPosition) {
    const path = kind === "instance" ? `/instances/${encodeURIComponent(subject)}/timeline` : `/workers/${encodeURIComponent(subject)}/timeline`;
    const rows = [];
    let cursor = null;
    do {
      const page = await api(path, { limit: 500, cursor, min_position: minPosition || null });
      rows.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    const atEnd = !steps.length || index === steps.length - 1;
    steps = fold(rows);
    render();
    await show(atEnd ? steps.length - 1 : index);
  }

  LRM.boot(async (session) => {
    document.getElementById("first").addEventListener("click", () => show(0));
    document.getElementById("prev").addEventListener("click", () => show(index - 1));
    document.getElementById("next").addEventListener("click", () => show(index + 1));
    document.getElementById("last").addEventListener("click", () => show(steps.length - 1));
    document.getElementById("play").addEventListener("click", play);
    document.getElementById("slider").addEventListener("input", (e) => show(Number(e.target.value)));
    document.getElementById("export-json").addEventListener("click", exportJson);
    document.getElementById("export-csv").addEventListener("click", exportCsv);
    document.getElementById("at-form").addEventListener("submit", (event) => {
      event.preventDefault();
      showMoment(document.getElementById("at").value);
    });
    try {
      await load();
    } catch (err) {
      replace("summary", err.status === 404 ? `No ${kind} ${subject} (or not yours).` : `Cannot load: ${err.message}`);
      return;
    }
    document.body.dataset.loaded = "true";
    let seen = session.head || 0; // a reload must reflect the event that woke it (read-your-writes)
    const reload = debounce(() => load(seen).catch((err) => console.warn("timeline", err)), 200);
    LRM.follow(session.head, (event) => {
      if (event.data.stream_id === subject || JSON.stringify(event.data.data || {}).includes(subject)) {
        seen = Math.max(seen, Number(event.id) || 0);
        reload();
      }
    }, () => load().catch((err) => console.warn("timeline", err)));
  });
})();
