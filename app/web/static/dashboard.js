// litetask dashboard: reads the API with the browser's session cookie (same origin) and
// follows GET /events live through the events hub (events-hub.js: one stream shared by all
// tabs). Every piece of data goes into the DOM as textContent.
"use strict";

(() => {
  const MAX_ROWS = 50;
  const SUMMARY_CHARS = 120;
  const HEALTH_EVERY_MS = 5000;
  // GET /health may answer from a probe up to LITETASK_HEALTH_INTERVAL (default 1 s) old, so
  // after a change wait a little longer than that for counts that include it.
  const HEALTH_AFTER_EVENT_MS = 1200;
  // Events kept while the task list loads; past this the list is loaded again instead.
  const MAX_BUFFERED = 1000;
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 15000;
  const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
  // A scheduled task waits for its run_at; a claimed one is taken by the worker pool ahead
  // of a free slot but not started: to a user both are still queued, so they show (and
  // count) as pending (a scheduled one says when it runs).
  const SHOWN_AS = { scheduled: "pending", claimed: "pending" };
  const CANCELLABLE = new Set(["scheduled", "pending", "claimed", "running"]);
  const RETRYABLE = new Set(["failed", "cancelled"]);

  const tasks = new Map(); // task id -> task, in the API's JSON shape
  const docs = new Map(); // task type name -> its docstring
  let order = []; // task ids shown, newest first
  let buffered = null; // events that arrive while the task list loads, else null
  let reloading = null; // the task list load in progress, else null
  let reloadAgain = false; // a reset (or a full buffer) came while it loaded
  let hub = null; // MessagePort to the events hub
  let hubState = "connecting";
  let whenLive = []; // resolvers waiting for the hub's first message
  let connectFailures = 0;
  let healthTimer = null;
  let healthDue = Infinity; // when healthTimer fires, in Date.now() milliseconds

  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  // fetch() a JSON API path; throws ApiError carrying the problem+json `detail`. Every
  // request that changes something is JSON, with or without a body: the server accepts
  // nothing else from a session cookie (no other site can send JSON without CORS).
  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") init.headers["Content-Type"] = "application/json";
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = (data && (data.detail || data.title)) || response.statusText;
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  function showMessage(text, isError) {
    const box = $("message");
    box.textContent = text;
    box.classList.toggle("error", Boolean(isError));
    box.hidden = !text;
  }

  function setLive(state) {
    $("live").dataset.state = state;
    $("live").textContent = state;
  }

  function showLogin() {
    $("app").hidden = true;
    $("login").hidden = false;
    $("token").focus();
  }

  function backoff(failures) {
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 10));
    return ceiling * (0.5 + Math.random() / 2);
  }

  // --- connecting -------------------------------------------------------------------------

  // Loads task types, joins the event stream, then loads the tasks; 401 shows the login,
  // any other failure (a proxy's 502, the service restarting) tries again with backoff.
  async function connect() {
    try {
      const types = await api("GET", "/task-types");
      connectFailures = 0;
      $("login").hidden = true;
      $("app").hidden = false;
      renderTaskTypes(types.task_types);
      joinHub();
      hub.postMessage({ kind: "reconnect" }); // at once, if it had given up for now
      await hubReady();
      await reloadTasks();
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

  // Loads the newest tasks; events that arrive meanwhile are applied on top, in order. A
  // reset (or too many events) while it loads makes it load again before it finishes.
  function reloadTasks() {
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
      page = await api("GET", `/tasks?limit=${MAX_ROWS}`);
    } while (reloadAgain);
    tasks.clear();
    for (const task of page.tasks) tasks.set(task.id, task);
    order = page.tasks.map((task) => task.id);
    // Events are in order, so replaying those seen meanwhile ends in the current state.
    for (const event of buffered) applyEvent(event);
    renderTasks();
  }

  // --- events -----------------------------------------------------------------------------

  function onEvent(type, event) {
    if (type === "reset") {
      reloadTasks().catch(handleError);
      return;
    }
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
    if (event.type !== "task.progress") scheduleHealth(HEALTH_AFTER_EVENT_MS);
  }

  // Updates the task an event is about; a queued task not shown yet is added on top. Only
  // state changes set the status: a progress event moves the bar and nothing else.
  function applyEvent(event) {
    let task = tasks.get(event.task_id);
    if (task === undefined) {
      if (event.type !== "task.queued") return; // older than the tasks shown
      task = newTaskFrom(event);
      tasks.set(task.id, task);
      order.unshift(task.id);
    }
    if (event.progress !== null && event.progress !== undefined) task.progress = event.progress;
    if (event.type === "task.progress") return;
    if (event.status) task.status = event.status;
    if (event.attempt !== null && event.attempt !== undefined) task.attempts = event.attempt;
    const runAt = event.run_at ?? event.retry_at; // µs: when it runs (a retry's time)
    if (Number.isFinite(runAt)) task.run_at = new Date(runAt / 1000).toISOString();
    applyOutcome(task, event);
  }

  function newTaskFrom(event) {
    return {
      id: event.task_id, task_type: event.task_type, status: event.status,
      progress: event.progress || 0, attempts: 0, max_attempts: null,
      created_at: event.timestamp, result: null, error: null,
    };
  }

  function applyOutcome(task, event) {
    if (event.type === "task.completed") {
      task.error = null;
      task.result = event.result;
      if (event.result_truncated) fetchTask(task.id);
    } else if (event.type === "task.failed" || event.type === "task.retrying") {
      task.error = event.error;
    } else if (event.type === "task.queued" && event.retried) {
      task.error = null;
      task.result = null;
    }
  }

  async function fetchTask(taskId) {
    try {
      const fresh = await api("GET", `/tasks/${encodeURIComponent(taskId)}`);
      if (tasks.has(taskId)) tasks.set(taskId, fresh);
      renderTasks();
    } catch (error) {
      showMessage(error.message, true);
    }
  }

  // --- rendering --------------------------------------------------------------------------

  function renderTaskTypes(types) {
    const select = $("task-type");
    const chosen = select.value;
    select.replaceChildren(...types.map((type) => new Option(type.name, type.name)));
    docs.clear();
    for (const type of types) docs.set(type.name, type.doc || "");
    if (chosen) select.value = chosen;
    showTaskDoc();
  }

  function showTaskDoc() {
    $("task-doc").textContent = docs.get($("task-type").value) || "";
  }

  const rows = new Map(); // task id -> <tr>

  // Updates rows in place (so a button is never replaced under the pointer), newest first.
  function renderTasks() {
    order = order.filter((id) => tasks.has(id)).slice(0, MAX_ROWS);
    const body = $("tasks");
    order.forEach((id, index) => {
      const row = rowFor(id);
      fillRow(row, tasks.get(id));
      if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
    });
    const shown = new Set(order);
    for (const id of tasks.keys()) if (!shown.has(id)) tasks.delete(id);
    for (const [id, row] of rows) {
      if (!shown.has(id)) {
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
      for (const name of ["id", "type", "status", "progress", "attempts", "created", "summary", "actions"]) {
        const cell = row.insertCell();
        cell.className = name;
      }
      rows.set(id, row);
    }
    return row;
  }

  function fillRow(row, task) {
    const cells = row.cells;
    cells[0].textContent = task.id.slice(0, 8);
    cells[0].title = task.id;
    cells[1].textContent = task.task_type;
    const shown = SHOWN_AS[task.status] || task.status;
    cells[2].textContent = shown;
    cells[2].dataset.status = shown;
    cells[2].title = statusNote(task, shown);
    cells[2].classList.add("status");
    fillProgress(cells[3], task.progress);
    cells[4].textContent = String(task.attempts);
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
    const action = CANCELLABLE.has(task.status) ? "Cancel" : RETRYABLE.has(task.status) ? "Retry" : "";
    const current = cell.querySelector("button");
    if ((current ? current.textContent : "") === action) return;
    cell.replaceChildren();
    if (!action) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = action;
    button.dataset.action = action.toLowerCase();
    cell.append(button);
  }

  function statusNote(task, shown) {
    if (task.status === "scheduled") return `scheduled: runs at ${formatWhen(task.run_at)}`;
    return shown === task.status ? "" : `${task.status}: starts when a worker is free`;
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

  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
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

  function renderHealth(health) {
    const queue = health.queue || {};
    $("queue").replaceChildren(...STATUSES.map((status) => {
      const item = document.createElement("li");
      const count = document.createElement("b");
      const shown = Object.keys(queue).filter((s) => (SHOWN_AS[s] || s) === status);
      count.textContent = String(shown.reduce((sum, s) => sum + (queue[s] || 0), 0));
      item.dataset.status = status;
      item.append(count, status);
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

  // The event stream usually shows a new task first; a response never overwrites it.
  function addSubmitted(task) {
    if (tasks.has(task.id)) return;
    tasks.set(task.id, task);
    order.unshift(task.id);
    renderTasks();
  }

  async function onTableClick(event) {
    const button = event.target.closest("button[data-action]");
    if (button === null) return;
    const taskId = button.closest("tr").dataset.taskId;
    const path = `/tasks/${encodeURIComponent(taskId)}`;
    button.disabled = true;
    try {
      if (button.dataset.action === "cancel") await api("DELETE", path);
      else await api("POST", `${path}/retry`);
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

  function handleError(error) {
    if (error.status === 401) showLogin();
    showMessage(error.message, true);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("submit-form").addEventListener("submit", onSubmit);
    $("login-form").addEventListener("submit", onLogin);
    $("task-type").addEventListener("change", showTaskDoc);
    $("tasks").addEventListener("click", onTableClick);
    window.addEventListener("pagehide", leaveHub);
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) connect(); // back from the back/forward cache: join again
    });
    refreshHealth();
    connect();
  });
})();
