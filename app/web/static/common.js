// litetask dashboard: what every module of the page shares. The API call, the message line,
// the retry backoff and time formatting. Every value goes into the DOM as textContent.

const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15000;

export const $ = (id) => document.getElementById(id);

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// fetch() a JSON API path; throws ApiError carrying the problem+json `detail`. Every
// request that changes something is JSON, with or without a body: the server accepts
// nothing else from a session cookie (no other site can send JSON without CORS).
export async function api(method, path, body) {
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

export const taskPath = (taskId) => `/tasks/${encodeURIComponent(taskId)}`;

export function showMessage(text, isError) {
  const box = $("message");
  box.textContent = text;
  box.classList.toggle("error", Boolean(isError));
  box.hidden = !text;
}

export function backoff(failures) {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 10));
  return ceiling * (0.5 + Math.random() / 2);
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}

export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
