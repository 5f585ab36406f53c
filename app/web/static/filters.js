// litetask dashboard: the task list's filter (a status as shown, a task type). It lives in
// the address (#status=failed&type=resize) so a reload or a shared link keeps it; the list
// asks GET /tasks for it and tests every live event against it.
import { $ } from "./common.js";
import { apiStatuses, shown, vocabulary } from "./vocabulary.js";

export const filter = { status: "", type: "" }; // "" is any

export function readFilterFromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  filter.status = params.get("status") || "";
  filter.type = params.get("type") || "";
}

function writeFilterToAddress() {
  const params = new URLSearchParams();
  if (filter.status) params.set("status", filter.status);
  if (filter.type) params.set("type", filter.type);
  const hash = params.toString();
  history.replaceState(null, "", hash ? `#${hash}` : location.pathname + location.search);
}

export const isFiltered = () => Boolean(filter.status || filter.type);

export function matches(task) {
  return (!filter.status || shown(task.status) === filter.status) &&
    (!filter.type || task.task_type === filter.type);
}

// GET /tasks for the filter (limit first: it names the list's request).
export function listPath(limit) {
  const params = new URLSearchParams({ limit: String(limit) });
  for (const status of filter.status ? apiStatuses(filter.status) : []) params.append("status", status);
  if (filter.type) params.set("task_type", filter.type);
  return `/tasks?${params}`;
}

// "failed tasks of type resize", "tasks of type resize", "pending tasks".
export function describeFilter() {
  const tasks = filter.status ? `${filter.status} task` : "task";
  return filter.type ? `${tasks} of type ${filter.type}` : tasks;
}

export function renderStatusOptions() {
  fill($("filter-status"), "any status", vocabulary.shownStatuses, filter.status);
}

export function renderTypeOptions(names) {
  fill($("filter-type"), "any type", names, filter.type);
}

function fill(select, anyLabel, values, chosen) {
  const options = [new Option(anyLabel, ""), ...values.map((value) => new Option(value, value))];
  if (chosen && !values.includes(chosen)) options.push(new Option(chosen, chosen));
  select.replaceChildren(...options);
  select.value = chosen;
}

// Calls `changed()` after the user picks another status or type.
export function onFilterChange(changed) {
  for (const id of ["filter-status", "filter-type"]) {
    $(id).addEventListener("change", () => {
      filter.status = $("filter-status").value;
      filter.type = $("filter-type").value;
      writeFilterToAddress();
      changed();
    });
  }
}
