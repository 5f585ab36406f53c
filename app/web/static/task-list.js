// litetask dashboard: the task list. The newest tasks matching the filter (GET /tasks),
// then kept current by the live events: rows change in place, a task that stops matching
// leaves, one that starts matching comes in at its place (newest first).
import { $, api, formatTime, showMessage, taskPath } from "./common.js";
import { filter, listPath, matches } from "./filters.js";
import { shown, vocabulary } from "./vocabulary.js";

const MAX_ROWS = 50;
const SUMMARY_CHARS = 120;
// Events kept while the task list loads; past this the list is loaded again instead.
const MAX_BUFFERED = 1000;
const CELLS = ["id", "type", "status", "progress", "attempts", "created", "summary", "actions"];
// Tasks that start to match the filter are read one by one, this many at a time; past that
// (a busy service) the whole list is read again instead, at most once a second.
const MAX_ADOPTING = 4;
const RELOAD_AFTER_MS = 1000;

const tasks = new Map(); // task id -> task, in the API's JSON shape
const rows = new Map(); // task id -> <tr>
const adopting = new Map(); // task id -> events that arrived while its row loads
let order = []; // task ids shown, newest first
let buffered = null; // events that arrive while the task list loads, else null
let reloading = null; // the task list load in progress, else null
let reloadAgain = false; // a reset (or a full buffer, or a new filter) came while it loaded
let reloadTimer = null; // a reload asked for by too many tasks to read one by one

// Loads the newest tasks; events that arrive meanwhile are applied on top, in order. A
// reset (or too many events) while it loads makes it load again before it finishes.
export function reloadTasks() {
  if (reloading !== null) {
    reloadAgain = true;
    return reloading;
  }
  reloading = loadUntilSettled().finally(() => {
    buffered = null;
    reloading = null;
  });
  return reloading;
}

async function loadUntilSettled() {
  let page;
  do {
    reloadAgain = false;
    buffered = [];
    page = await api("GET", listPath(MAX_ROWS));
  } while (reloadAgain);
  tasks.clear();
  for (const task of page.tasks) tasks.set(task.id, task);
  order = page.tasks.map((task) => task.id);
  // Events are in order, so replaying those seen meanwhile ends in the current state.
  for (const event of buffered) applyEvent(event);
  renderTasks();
}

// One live event (not a reset); false while the list loads (the event is kept for it).
export function onTaskEvent(event) {
  if (buffered !== null) {
    buffered.push(event);
    if (buffered.length > MAX_BUFFERED) {
      buffered = [];
      reloadAgain = true;
    }
    return;
  }
  applyEvent(event);
  renderTasks();
}

function applyEvent(event) {
  const task = tasks.get(event.task_id);
  if (task !== undefined) applyTo(task, event);
  const waiting = adopting.get(event.task_id);
  if (waiting !== undefined) waiting.push(event);
  else if (task === undefined) adopt(event);
}

// A task not shown. A new one goes on top (so does a retried one, unless a status is
// filtered). Under a status filter one whose status now matches is read and put in its
// place; otherwise it matched all along, so it is older than the tasks shown.
function adopt(event) {
  if (!event.status || !matches({ status: event.status, task_type: event.task_type })) return;
  if (event.type === "task.queued" && !(event.retried && filter.status)) {
    const task = newTaskFrom(event);
    applyTo(task, event); // what the event says beyond the basics (a scheduled one's run_at)
    tasks.set(task.id, task);
    order.unshift(task.id);
  } else if (!filter.status) {
    return;
  } else if (adopting.size < MAX_ADOPTING) {
    loadInto(event.task_id);
  } else if (reloadTimer === null) {
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      reloadTasks().catch((error) => showMessage(error.message, true));
    }, RELOAD_AFTER_MS);
  }
}

async function loadInto(taskId) {
  adopting.set(taskId, []);
  try {
    const task = await api("GET", taskPath(taskId));
    for (const event of adopting.get(taskId)) applyTo(task, event);
    if (!tasks.has(taskId) && matches(task)) insertByAge(task);
  } catch (error) {
    if (error.status !== 404) showMessage(error.message, true);
  } finally {
    adopting.delete(taskId);
    renderTasks();
  }
}

function insertByAge(task) {
  const created = task.created_at || "";
  let at = order.findIndex((id) => (tasks.get(id).created_at || "") < created);
  if (at === -1) at = order.length;
  if (at >= MAX_ROWS) return; // older than every task of a full list
  tasks.set(task.id, task);
  order.splice(at, 0, task.id);
}

// Only state changes set the status: a progress event moves the bar and nothing else.
function applyTo(task, event) {
  if (event.progress !== null && event.progress !== undefined) task.progress = event.progress;
  if (event.type === "task.progress") return;
  if (event.status) task.status = event.status;
  if (event.attempt !== null && event.attempt !== undefined) task.attempts = event.attempt;
  const runAt = event.run_at ?? event.retry_at; // µs: when it runs (a retry's time)
  if (Number.isFinite(runAt)) task.run_at = new Date(runAt / 1000).toISOString();
  if (event.type === "task.completed") {
    task.error = null;
    task.result = event.result;
    if (event.result_truncated) refreshTask(task.id);
  } else if (event.type === "task.failed" || event.type === "task.retrying") {
    task.error = event.error;
  } else if (event.type === "task.queued" && event.retried) {
    task.error = null;
    task.result = null;
  }
}

function newTaskFrom(event) {
  return {
    id: event.task_id, task_type: event.task_type, status: event.status,
    progress: event.progress || 0, attempts: 0, max_attempts: null,
    created_at: event.timestamp, result: null, error: null,
  };
}

async function refreshTask(taskId) {
  try {
    const fresh = await api("GET", taskPath(taskId));
    if (tasks.has(taskId)) tasks.set(taskId, fresh);
    renderTasks();
  } catch (error) {
    showMessage(error.message, true);
  }
}

// A task the page itself submitted; the event stream usually shows it first, and a
// response never overwrites it.
export function addSubmitted(task) {
  if (tasks.has(task.id) || !matches(task)) return;
  tasks.set(task.id, task);
  order.unshift(task.id);
  renderTasks();
}

// --- rendering --------------------------------------------------------------------------

// Updates rows in place (so a button is never replaced under the pointer), newest first.
export function renderTasks() {
  order = order.filter((id) => tasks.has(id) && matches(tasks.get(id))).slice(0, MAX_ROWS);
  const body = $("tasks");
  order.forEach((id, index) => {
    const row = rowFor(id);
    fillRow(row, tasks.get(id));
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
  });
  const kept = new Set(order);
  for (const id of tasks.keys()) if (!kept.has(id)) tasks.delete(id);
  for (const [id, row] of rows) {
    if (!kept.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
}

function rowFor(id) {
  let row = rows.get(id);
  if (row === undefined) {
    row = document.createElement("tr");
    row.dataset.taskId = id;
    for (const name of CELLS) row.insertCell().className = name;
    row.cells[0].append(button("details", "link"));
    rows.set(id, row);
  }
  return row;
}

function fillRow(row, task) {
  const cells = row.cells;
  cells[0].firstChild.textContent = task.id.slice(0, 8);
  cells[0].firstChild.title = `${task.id}: show its details`;
  cells[1].textContent = task.task_type;
  const status = shown(task.status);
  cells[2].textContent = status;
  cells[2].dataset.status = status;
  cells[2].title = statusNote(task, status);
  cells[2].classList.add("status");
  fillProgress(cells[3], task.progress);
  cells[4].textContent = String(task.attempts - (task.snoozes || 0)); // a snooze spends none
  if (task.max_attempts) cells[4].title = `of at most ${task.max_attempts}`;
  cells[5].textContent = formatTime(task.created_at);
  cells[5].title = task.created_at || "";
  cells[6].textContent = summary(task);
  fillActions(cells[7], task);
}

function fillProgress(cell, progress) {
  let bar = cell.querySelector("progress");
  if (bar === null) {
    bar = document.createElement("progress");
    bar.max = 1;
    cell.append(bar, document.createElement("span"));
  }
  bar.value = progress || 0;
  cell.querySelector("span").textContent = ` ${Math.round((progress || 0) * 100)}%`;
}

function fillActions(cell, task) {
  const action = vocabulary.cancellable.has(task.status) ? "Cancel"
    : vocabulary.retryable.has(task.status) ? "Retry" : "";
  const current = cell.querySelector("button");
  if ((current ? current.textContent : "") === action) return;
  cell.replaceChildren();
  if (action) cell.append(button(action.toLowerCase(), "secondary", action));
}

function button(action, className, text = "") {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.dataset.action = action;
  element.textContent = text;
  return element;
}

function statusNote(task, status) {
  if (task.status === "scheduled") return `scheduled: runs at ${formatWhen(task.run_at)}`;
  return status === task.status ? "" : `${task.status}: starts when a worker is free`;
}

function summary(task) {
  let text = "";
  if (task.status === "completed") text = JSON.stringify(task.result) ?? "";
  else if (task.error) text = task.error;
  if (task.status === "scheduled" && task.run_at) {
    text = `runs at ${formatWhen(task.run_at)}` + (text ? ` · ${text}` : "");
  }
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS)}…` : text;
}

// A time to come: the date too unless it is today.
function formatWhen(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso || "";
  const today = date.toDateString() === new Date().toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}
