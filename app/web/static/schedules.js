// litetask dashboard: the schedules panel. Each periodic task type (GET /schedules) with its
// schedule, its last run (the latest slot queued, with that task's status) and its next run.
// Read when the page connects, then again at most once a second while events concern a
// periodic task type (a slot's task queued, started, finished); hidden when there is none.
import { $, api } from "./common.js";
import { shown } from "./vocabulary.js";

const REREAD_MS = 1000;

let names = new Set(); // the periodic task types shown
let rereadTimer = null;

export async function loadSchedules() {
  clearTimeout(rereadTimer);
  rereadTimer = null;
  const data = await api("GET", "/schedules");
  names = new Set(data.schedules.map((schedule) => schedule.name));
  renderSchedules(data.schedules);
}

export function onScheduleEvent(event) {
  if (!names.has(event.task_type) || rereadTimer !== null) return;
  rereadTimer = setTimeout(() => loadSchedules().catch(() => {}), REREAD_MS);
}

function renderSchedules(schedules) {
  const panel = $("schedules-panel");
  panel.dataset.count = String(schedules.length);
  panel.hidden = schedules.length === 0;
  $("schedules").replaceChildren(...schedules.map(scheduleRow));
}

function scheduleRow(schedule) {
  const row = document.createElement("tr");
  row.dataset.schedule = schedule.name;
  const status = cell("status", schedule.last_status ? shown(schedule.last_status) : "");
  if (schedule.last_status) status.dataset.status = shown(schedule.last_status);
  row.append(
    cell("name", schedule.name),
    cell("schedule", describe(schedule)),
    cell("missed", schedule.missed),
    timeCell("last", schedule.last_run, "never"),
    status,
    timeCell("next", schedule.next_run, "none"),
  );
  return row;
}

// `every 30 s`, or `cron 0 * * * * (Europe/Paris)`, as `litetask schedules` prints it.
function describe(schedule) {
  if (schedule.every !== null) return `every ${schedule.every} s`;
  return `cron ${schedule.cron} (${schedule.timezone})`;
}

function cell(name, text) {
  const td = document.createElement("td");
  td.className = name;
  td.textContent = text;
  return td;
}

// A time in this browser's zone (with its date unless it is today); the ISO value as
// `data-time` and the tooltip.
function timeCell(name, iso, none) {
  const td = cell(name, iso ? formatWhen(iso) : none);
  if (iso) {
    td.dataset.time = iso;
    td.title = iso;
  }
  return td;
}

function formatWhen(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const today = date.toDateString() === new Date().toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}
