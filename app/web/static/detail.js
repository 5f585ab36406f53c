// litetask dashboard: one task in full (GET /tasks/{id}): its fields, and each failed
// attempt's error with its traceback. It follows the task live: a state change reads it
// again, a progress event moves its progress.
import { $, api, showMessage, taskPath } from "./common.js";
import { shown } from "./vocabulary.js";

const REREAD_AFTER_MS = 150; // several events in a row cost one read

let current = null; // the id shown, else null
let rereadTimer = null;

export async function openDetail(taskId) {
  current = taskId;
  $("detail").hidden = false;
  await readDetail();
  $("detail").scrollIntoView({ block: "nearest" });
}

export function closeDetail() {
  current = null;
  clearTimeout(rereadTimer);
  $("detail").hidden = true;
}

export function onDetailEvent(event) {
  if (current === null || (event.task_id !== current && event.type !== "reset")) return;
  if (event.type === "task.progress") {
    const field = $("detail").querySelector("[data-field=progress]");
    if (field !== null) field.textContent = percent(event.progress);
    return;
  }
  clearTimeout(rereadTimer);
  rereadTimer = setTimeout(readDetail, REREAD_AFTER_MS);
}

async function readDetail() {
  const taskId = current;
  try {
    const task = await api("GET", taskPath(taskId));
    if (current === taskId) renderDetail(task);
  } catch (error) {
    showMessage(error.message, true);
  }
}

const percent = (progress) => `${Math.round((progress || 0) * 100)}%`;

function renderDetail(task) {
  const fields = [
    ["id", task.id],
    ["type", task.task_type],
    ["status", shown(task.status)],
    ["progress", percent(task.progress)],
    ["attempts", `${task.attempts - (task.snoozes || 0)} of at most ${task.max_attempts}`],
    ["created", task.created_at],
    ["run at", task.run_at],
    ["started", task.started_at],
    ["finished", task.completed_at],
    ["args", JSON.stringify(task.args)],
    ["kwargs", JSON.stringify(task.kwargs)],
  ];
  // Runs again asked for by the task (raise Retry): they spent no attempt.
  if (task.snoozes) fields.push(["snoozes", String(task.snoozes)]);
  if (task.status === "completed") fields.push(["result", JSON.stringify(task.result)]);
  if (task.error) fields.push(["error", task.error]);
  $("detail-fields").replaceChildren(...fields.flatMap(([name, value]) => {
    const term = document.createElement("dt");
    const description = document.createElement("dd");
    term.textContent = name;
    description.textContent = value ?? "";
    description.dataset.field = name;
    return [term, description];
  }));
  $("detail-attempts").replaceChildren(...(task.errors || []).map(attemptOf));
}

function attemptOf(error) {
  const item = document.createElement("details");
  // kind: failed (raised, timed out), snoozed (raise Retry), aborted (raise Abort)
  const kind = error.kind || "failed";
  item.className = `attempt ${kind}`;
  item.open = kind !== "snoozed";
  const title = document.createElement("summary");
  const how = kind === "failed" ? "" : `${kind} · `;
  title.textContent = `attempt ${error.attempt} · ${how}${error.error_type}: ${error.message} · ${error.failed_at || ""}`;
  const traceback = document.createElement("pre");
  traceback.textContent = error.traceback || "(no traceback)";
  item.append(title, traceback);
  return item;
}
