// litetask dashboard: the throughput sparkline. Completed and failed tasks per minute over
// the last hour, read from GET /stats/throughput when the page connects (and every ten
// minutes), then counted live from task.completed and task.failed events; the window moves
// on by itself each minute, on the server's clock.
import { $, api } from "./common.js";

const MINUTE_MS = 60000;
const REREAD_MS = 10 * MINUTE_MS;
const BAR_WIDTH = 4;
const BAR_GAP = 1;
const HEIGHT = 40;
const SVG = "http://www.w3.org/2000/svg";
const KINDS = { "task.completed": "completed", "task.failed": "failed" };

let minutes = []; // {start (ms), completed, failed}, oldest first
let offset = 0; // the server's clock minus this browser's, in ms
let reading = false; // events that arrive during a read are in its answer, or close enough
let rollTimer = null;
let rereadTimer = null;

export async function loadThroughput() {
  clearTimeout(rereadTimer);
  reading = true;
  try {
    const data = await api("GET", "/stats/throughput");
    offset = Date.parse(data.now) - Date.now();
    minutes = data.minutes.map((m) => ({ start: Date.parse(m.start), completed: m.completed, failed: m.failed }));
    renderThroughput();
    scheduleRoll();
  } finally {
    reading = false;
    rereadTimer = setTimeout(() => loadThroughput().catch(() => {}), REREAD_MS);
  }
}

export function countEvent(event) {
  const kind = KINDS[event.type];
  if (kind === undefined || reading || minutes.length === 0) return;
  const at = Date.parse(event.timestamp);
  roll(at);
  const minute = minutes.find((m) => m.start <= at && at < m.start + MINUTE_MS);
  if (minute === undefined) return; // older than the window
  minute[kind] += 1;
  renderThroughput();
}

// Moves the window on to the minute of `now` (server time), empty minutes coming in.
function roll(now) {
  let last = minutes[minutes.length - 1].start;
  while (now >= last + MINUTE_MS) {
    last += MINUTE_MS;
    minutes.push({ start: last, completed: 0, failed: 0 });
    minutes.shift();
  }
}

function scheduleRoll() {
  clearTimeout(rollTimer);
  const next = minutes[minutes.length - 1].start + MINUTE_MS - (Date.now() + offset);
  rollTimer = setTimeout(() => {
    roll(Date.now() + offset);
    renderThroughput();
    scheduleRoll();
  }, Math.max(next, 0) + 50);
}

function renderThroughput() {
  const most = Math.max(1, ...minutes.map((m) => m.completed + m.failed));
  const svg = $("sparkline");
  svg.setAttribute("viewBox", `0 0 ${minutes.length * (BAR_WIDTH + BAR_GAP)} ${HEIGHT}`);
  svg.replaceChildren(...minutes.map((minute, index) => {
    const group = element("g", { class: "minute" });
    const title = element("title", {});
    const time = new Date(minute.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    title.textContent = `${time}: ${minute.completed} completed, ${minute.failed} failed`;
    const x = index * (BAR_WIDTH + BAR_GAP);
    const done = (minute.completed / most) * HEIGHT;
    const failed = (minute.failed / most) * HEIGHT;
    group.append(
      title,
      element("rect", { class: "completed", x, y: HEIGHT - done, width: BAR_WIDTH, height: done }),
      element("rect", { class: "failed", x, y: HEIGHT - done - failed, width: BAR_WIDTH, height: failed }),
    );
    return group;
  }));
  $("throughput-completed").textContent = String(minutes.reduce((sum, m) => sum + m.completed, 0));
  $("throughput-failed").textContent = String(minutes.reduce((sum, m) => sum + m.failed, 0));
}

function element(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}
