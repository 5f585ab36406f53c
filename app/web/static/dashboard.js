// litetask dashboard: reads the API with the browser's session cookie (same origin) and
// follows GET /events live through the events hub (events-hub.js: one stream shared by all
// tabs). This module connects, signs in, shows the health line and the submit form, and
// hands each event to the task list (task-list.js), the open task (detail.js), the
// sparkline (throughput.js) and the schedules panel (schedules.js). Every piece of data goes into the DOM as textContent.
import { closeDetail, onDetailEvent, openDetail } from "./detail.js";
import { renderBulk, wireBulk } from "./bulk.js";
import { $, api, backoff, showMessage, taskPath } from "./common.js";
import {
  onFilterChange, readFilterFromAddress, renderStatusOptions, renderTypeOptions,
} from "./filters.js";
import { loadSchedules, onScheduleEvent } from "./schedules.js";
import { addSubmitted, onTaskEvent, reloadTasks, renderTasks } from "./task-list.js";
import { countEvent, loadThroughput } from "./throughput.js";
import { loadVocabulary, shown, vocabulary } from "./vocabulary.js";

const HEALTH_EVERY_MS = 5000;
// GET /health may answer from a probe up to LITETASK_HEALTH_INTERVAL (default 1 s) old, so
// after a change wait a little longer than that for counts that include it.
const HEALTH_AFTER_EVENT_MS = 1200;

const docs = new Map(); // task type name -> its docstring
let hub = null; // MessagePort to the events hub
let hubState = "connecting";
let whenLive = []; // resolvers waiting for the hub's first message
let connectFailures = 0;
let healthTimer = null;
let healthDue = Infinity; // when healthTimer fires, in Date.now() milliseconds

function setLive(state) {
  $("live").dataset.state = state;
  $("live").textContent = state;
}

function showLogin() {
  $("app").hidden = true;
  $("login").hidden = false;
  $("token").focus();
}

function handleError(error) {
  if (error.status === 401) showLogin();
  showMessage(error.message, true);
}

// --- connecting -------------------------------------------------------------------------

// Loads task types and statuses, joins the event stream, then loads the tasks, the
// sparkline and the schedules; 401 shows the login, any other failure (a proxy's 502, the
// service restarting) tries again with backoff.
async function connect() {
  try {
    const types = await api("GET", "/task-types");
    await loadVocabulary();
    connectFailures = 0;
    $("login").hidden = true;
    $("app").hidden = false;
    renderTaskTypes(types.task_types);
    renderStatusOptions();
    renderBulk();
    joinHub();
    hub.postMessage({ kind: "reconnect" }); // at once, if it had given up for now
    await hubReady();
    await Promise.all([reloadTasks(), loadThroughput(), loadSchedules()]);
    refreshHealth();
  } catch (error) {
    if (error.status === 401) {
      showLogin();
      return;
    }
    showMessage(error.message, true);
    connectFailures += 1;
    setTimeout(connect, backoff(connectFailures));
  }
}

// One hub per browser (a SharedWorker), or one for this page where there is none.
function joinHub() {
  if (hub !== null) return;
  if (typeof SharedWorker === "function") {
    hub = new SharedWorker("/static/events-hub.js", { name: "litetask-events" }).port;
  } else {
    const channel = new MessageChannel();
    new globalThis.LitetaskEventsHub("/events").add(channel.port1);
    hub = channel.port2;
  }
  hub.onmessage = (message) => fromHub(message.data);
}

function leaveHub() {
  if (hub !== null) hub.postMessage({ kind: "bye" });
  hub = null;
}

// Resolves once the stream has delivered a first message (so a list loaded after it
// misses no event), or at once when the hub is already past that.
function hubReady() {
  if (hubState !== "connecting") return Promise.resolve();
  return new Promise((resolve) => whenLive.push(resolve));
}

function fromHub(message) {
  if (message.kind === "state") onHubState(message.state);
  else if (message.kind === "event") onEvent(message.type, JSON.parse(message.data));
}

function onHubState(state) {
  const before = hubState;
  hubState = state;
  setLive(state);
  if (state !== "connecting") for (const resolve of whenLive.splice(0)) resolve();
  // The hub gave a stream up (an HTTP error): the session may have expired.
  if (state === "offline" && before !== "offline") checkSession();
}

async function checkSession() {
  try {
    await api("GET", "/task-types");
  } catch (error) {
    if (error.status === 401) showLogin();
  }
}

function onEvent(type, event) {
  if (type === "reset") {
    reloadTasks().catch(handleError);
    loadThroughput().catch(handleError);
    loadSchedules().catch(handleError);
    onDetailEvent({ type: "reset" });
    return;
  }
  onTaskEvent(event);
  onDetailEvent(event);
  countEvent(event);
  onScheduleEvent(event);
  if (event.type !== "task.progress") scheduleHealth(HEALTH_AFTER_EVENT_MS);
}

function onFiltered() {
  renderBulk();
  renderTasks(); // rows that no longer match leave at once
  reloadTasks().catch(handleError);
}

// --- task types -------------------------------------------------------------------------

function renderTaskTypes(types) {
  const select = $("task-type");
  const chosen = select.value;
  select.replaceChildren(...types.map((type) => new Option(type.name, type.name)));
  docs.clear();
  for (const type of types) docs.set(type.name, type.doc || "");
  if (chosen) select.value = chosen;
  showTaskDoc();
  renderTypeOptions(types.map((type) => type.name));
}

function showTaskDoc() {
  $("task-doc").textContent = docs.get($("task-type").value) || "";
}

// --- health -----------------------------------------------------------------------------

// Refreshes the health line within `delay` ms (an earlier refresh already due stands).
function scheduleHealth(delay) {
  if (Date.now() + delay >= healthDue) return;
  clearTimeout(healthTimer);
  healthDue = Date.now() + delay;
  healthTimer = setTimeout(refreshHealth, delay);
}

// GET /health is public and answers 503 with the same body when unhealthy.
async function refreshHealth() {
  clearTimeout(healthTimer);
  healthDue = Infinity;
  try {
    const response = await fetch("/health", { headers: { Accept: "application/json" } });
    renderHealth(await response.json());
  } catch (error) {
    $("health").textContent = "health: unreachable";
  }
  scheduleHealth(HEALTH_EVERY_MS);
}

// The queue's counts by status as shown (claimed counted as pending), in the API's order.
function renderHealth(health) {
  const queue = health.queue || {};
  const counts = new Map(vocabulary.shownStatuses.map((status) => [status, 0]));
  for (const [status, count] of Object.entries(queue)) {
    counts.set(shown(status), (counts.get(shown(status)) || 0) + count);
  }
  $("queue").replaceChildren(...[...counts].map(([status, count]) => {
    const item = document.createElement("li");
    const number = document.createElement("b");
    number.textContent = String(count);
    item.dataset.status = status;
    item.append(number, status);
    return item;
  }));
  const workers = health.workers || {};
  const problems = (health.problems || []).join("; ");
  $("health").textContent =
    `${health.status} · workers ${workers.active ?? "?"}/${workers.max ?? "?"} busy` +
    (problems ? ` · ${problems}` : "");
}

// --- actions ----------------------------------------------------------------------------

async function onSubmit(event) {
  event.preventDefault();
  let body;
  try {
    body = {
      task_type: $("task-type").value,
      args: parseJson($("args").value, "args", Array.isArray),
      kwargs: parseJson($("kwargs").value, "kwargs", isPlainObject),
    };
  } catch (error) {
    showMessage(error.message, true);
    return;
  }
  try {
    const task = await api("POST", "/tasks", body);
    showMessage(`Submitted ${task.task_type} as ${task.id}`, false);
    addSubmitted(task);
  } catch (error) {
    handleError(error);
  }
}

function parseJson(text, name, valid) {
  let value;
  try {
    value = JSON.parse(text.trim() || (name === "args" ? "[]" : "{}"));
  } catch (error) {
    throw new Error(`${name} is not valid JSON: ${error.message}`);
  }
  if (!valid(value)) throw new Error(`${name} must be a JSON ${name === "args" ? "array" : "object"}`);
  return value;
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

async function onTableClick(event) {
  const button = event.target.closest("button[data-action]");
  if (button === null) return;
  const taskId = button.closest("tr").dataset.taskId;
  if (button.dataset.action === "details") {
    openDetail(taskId);
    return;
  }
  button.disabled = true;
  try {
    if (button.dataset.action === "cancel") await api("DELETE", taskPath(taskId));
    else await api("POST", `${taskPath(taskId)}/retry`);
    // The row changes when the event arrives.
  } catch (error) {
    handleError(error);
  } finally {
    button.disabled = false;
  }
}

async function onLogin(event) {
  event.preventDefault();
  const field = $("token");
  try {
    await api("POST", "/auth/session", { token: field.value });
    field.value = "";
    showMessage("", false);
    await connect();
  } catch (error) {
    showMessage(error.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  readFilterFromAddress();
  $("submit-form").addEventListener("submit", onSubmit);
  $("login-form").addEventListener("submit", onLogin);
  $("task-type").addEventListener("change", showTaskDoc);
  $("tasks").addEventListener("click", onTableClick);
  $("detail-close").addEventListener("click", closeDetail);
  onFilterChange(onFiltered);
  wireBulk();
  window.addEventListener("pagehide", leaveHub);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) connect(); // back from the back/forward cache: join again
  });
  refreshHealth();
  connect();
});
