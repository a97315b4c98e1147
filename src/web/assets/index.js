// The index (/): the gateway's lines and stations, its state, and the permits expiring.
"use strict";

const MAX_PERMITS = 20;

let state = null;
let pageUp = false;
let pageDownSince = Date.now();
const seen = {};

function lineTile(l) {
  const running = Array.isArray(l.running) ? l.running : [];
  return el("a", { class: "tile", href: "/line/" + encodeURIComponent(l.line) },
    el("div", { class: "tile-title", text: t("line") + " " + txt(l.line) }),
    running.length === 0
      ? el("div", { class: "tile-sub", text: t("nothing_running") })
      : running.map((r) => el("div", { class: "tile-sub" }, el("b", { text: txt(r.name) }), " " + txt(r.product))),
    l.running_count > running.length ? el("div", { class: "tile-sub", text: t("more", { n: l.running_count - running.length }) }) : null,
    el("div", { class: "tile-foot", text: t("ready_next") + ": " + (l.ready_count || 0) }),
  );
}

function stationTile(name, line) {
  return el("a", { class: "tile", href: "/panel/" + encodeURIComponent(name) },
    el("div", { class: "tile-title", text: t("panel") + " " + name }),
    el("div", { class: "tile-sub", text: t("line") + " " + line }),
  );
}

function permitRow(p) {
  const days = typeof p.days_left === "number" ? p.days_left : null;
  const left = days == null ? "—" : days > 0 ? t("days_left", { n: days }) : days === 0 ? t("expires_today") : t("expired_ago", { n: -days });
  return el("tr", { class: "permit " + txt(p.status) },
    el("td", { class: "p-left", text: left }),
    el("td", { text: txt(p.applicant) }),
    el("td", { text: txt(p.permit) }),
    el("td", { class: "p-no", text: txt(p.no_surat) }),
    el("td", { text: txt(p.expiry) }),
  );
}

function draw() {
  document.getElementById("title").textContent = "linegate · " + txt(state && state.gateway);
  document.getElementById("lines-title").textContent = t("lines");
  document.getElementById("stations-title").textContent = t("stations");
  document.getElementById("permits-title").textContent = t("permits");
  const off = offline(state, pageUp, pageDownSince, seen);
  showBanner(off);
  chips(state, off);
  const known = new Map();
  for (const l of (state && state.lines) || []) known.set(l.line, l);
  // A station's line is listed even before anything runs on it.
  const stations = (state && state.stations) || {};
  for (const line of Object.values(stations)) if (!known.has(line)) known.set(line, { line, running: [], ready_count: 0 });
  const lines = [...known.values()].sort((a, b) => String(a.line).localeCompare(String(b.line)));
  document.getElementById("lines").replaceChildren(...(lines.length ? lines.map(lineTile) : [el("p", { text: t("no_lines") })]));
  const names = Object.keys(stations).sort();
  document.getElementById("stations").replaceChildren(...(names.length ? names.map((s) => stationTile(s, stations[s])) : [el("p", { text: t("no_stations") })]));
  const permits = state && state.permits && Array.isArray(state.permits.permits) ? state.permits.permits : null;
  document.getElementById("permits-section").hidden = !permits;
  if (permits) {
    const head = el("tr", {}, ["", t("applicant"), "", "", t("expiry")].map((h) => el("th", { text: h })));
    document.getElementById("permits").replaceChildren(head, ...permits.slice(0, MAX_PERMITS).map(permitRow));
  }
}

languageButton(draw);
live("/events/index", (s) => { state = s; draw(); }, (up, since) => { pageUp = up; pageDownSince = since; draw(); });
draw();
