// Instructors' search: by owner, reservation id, definition and time range, all sent to
// the API as filters; the note says when only the first pages of the matches are shown.
"use strict";

(() => {
  const { all, el, replace, time, link } = LRM;
  const form = document.getElementById("search-form");

  // datetime-local has no zone: it is the browser's local time.
  const iso = (value) => (value ? new Date(value).toISOString() : null);

  async function search() {
    const data = new FormData(form);
    const params = {
      owner_id: String(data.get("owner_id") || "").trim(),
      reservation_id: String(data.get("reservation_id") || "").trim(),
      definition: String(data.get("definition") || "").trim(),
      from: iso(data.get("from")),
      to: iso(data.get("to")),
    };
    const note = document.getElementById("search-note");
    note.textContent = "searching…";
    const url = new URL(window.location.href);
    url.search = new URLSearchParams([...data.entries()].filter(([, v]) => v)).toString();
    window.history.replaceState(null, "", url);
    try {
      const page = await all("/instances", params, 20);
      const found = page.items;
      replace(document.querySelector("#results tbody"), found.map((i) => el("tr", { dataset: { id: i.id } },
        el("td", {}, link(i.id)),
        el("td", {}, el("span", { class: `state state-${i.state}` }, i.state)),
        el("td", {}, i.owner_id),
        el("td", {}, i.reservation_id || ""),
        el("td", {}, `${i.definition_name} ${i.definition_version}`),
        el("td", {}, i.timeslot_start ? time(i.slot_start) : "ASAP", " → ", time(i.slot_end)),
        el("td", {}, link(i.worker_id)))));
      note.textContent = `${found.length} instance(s)${page.complete ? "" : " shown, the first 10 000 of more; narrow the search"}.`;
    } catch (err) {
      note.textContent = err.message;
    }
  }

  LRM.boot(async () => {
    const params = new URLSearchParams(window.location.search);
    for (const [key, value] of params) if (form.elements[key]) form.elements[key].value = value;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      search();
    });
    if ([...params.keys()].length) await search();
    document.body.dataset.loaded = "true";
  });
})();
