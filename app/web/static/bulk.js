// litetask dashboard: retry or cancel every task of the filtered set (POST /tasks/retry,
// POST /tasks/cancel with the filter), after a confirmation. The server takes at most 1000
// tasks a call and gives a cursor; the page follows it to the end of the pass. Each task is
// fenced by its state on the server: one that changed meanwhile is skipped, and counted.
import { $, api, plural, showMessage } from "./common.js";
import { describeFilter, filter, isFiltered } from "./filters.js";
import { apiStatuses, vocabulary } from "./vocabulary.js";

const MAX_PAGES = 1000;
const ACTIONS = {
  retry: { path: "/tasks/retry", verb: "Retry", done: "Retried", outcome: "retried", allowed: () => vocabulary.retryable },
  cancel: { path: "/tasks/cancel", verb: "Cancel", done: "Cancelled", outcome: "cancelled", allowed: () => vocabulary.cancellable },
};

// The API statuses the action takes from the filter's (null: any the action applies to).
function statusesFor(action) {
  if (!filter.status) return null;
  const allowed = action.allowed();
  return apiStatuses(filter.status).filter((status) => allowed.has(status));
}

function unavailable(action) {
  if (!isFiltered()) return "choose a status or a task type first";
  const statuses = statusesFor(action);
  if (statuses !== null && statuses.length === 0) return `${filter.status} tasks cannot be changed so`;
  return null;
}

export function renderBulk() {
  for (const [name, action] of Object.entries(ACTIONS)) {
    const button = $(`bulk-${name}`);
    const reason = unavailable(action);
    button.disabled = reason !== null;
    button.title = reason || `${action.verb} every ${describeFilter()}`;
  }
}

export async function onBulk(name) {
  const action = ACTIONS[name];
  if (unavailable(action) !== null) return;
  const question = `${action.verb} every ${describeFilter()}? Each task is ${name === "retry"
    ? "queued again if it is still failed or cancelled" : "cancelled if it has not finished"}.`;
  if (!(await confirmed(question))) return;
  const body = {};
  const statuses = statusesFor(action);
  if (statuses !== null) body.status = statuses;
  if (filter.type) body.task_type = filter.type;
  try {
    const counts = await runPass(action, body);
    const skipped = counts.skipped + counts.not_found;
    showMessage(`${action.done} ${plural(counts.done, "task")}.` +
      (skipped ? ` ${skipped} skipped: their status had changed.` : ""), false);
  } catch (error) {
    showMessage(error.message, true);
  }
}

async function runPass(action, body) {
  const counts = { done: 0, skipped: 0, not_found: 0 };
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const answer = await api("POST", action.path, body);
    counts.done += answer.counts[action.outcome] || 0;
    counts.skipped += answer.counts.skipped || 0;
    counts.not_found += answer.counts.not_found || 0;
    if (answer.next_cursor === null) break;
    body.cursor = answer.next_cursor;
  }
  return counts;
}

// Resolves true when the user confirms in the dialog; Escape or "Keep them" is false.
function confirmed(question) {
  const dialog = $("confirm");
  $("confirm-text").textContent = question;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
  });
}

export function wireBulk() {
  $("bulk-retry").addEventListener("click", () => onBulk("retry"));
  $("bulk-cancel").addEventListener("click", () => onBulk("cancel"));
  $("confirm-yes").addEventListener("click", () => $("confirm").close("yes"));
  $("confirm-no").addEventListener("click", () => $("confirm").close("no"));
}
