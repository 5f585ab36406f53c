// litetask dashboard: the statuses as the service names them, read from its OpenAPI
// document (GET /openapi.json): every status a task can have, and which ones the bulk
// retry and cancel take. A status the service adds shows up here without a page change.
import { api } from "./common.js";

// A scheduled task waits for its run_at; a claimed one is taken by the worker pool ahead of
// a free slot but not started: to a user both are still queued, so they show (count,
// filter) as pending (a scheduled one says when it runs).
const SHOWN_AS = { scheduled: "pending", claimed: "pending" };

export const vocabulary = {
  statuses: [], // as the API names them
  shownStatuses: [], // as the page shows them (scheduled and claimed folded into pending)
  retryable: new Set(),
  cancellable: new Set(),
};

export const shown = (status) => SHOWN_AS[status] || status;

// The API statuses a shown status stands for ("pending": scheduled, pending and claimed).
export const apiStatuses = (shownStatus) => vocabulary.statuses.filter((s) => shown(s) === shownStatus);

export async function loadVocabulary() {
  const schemas = (await api("GET", "/openapi.json")).components.schemas;
  // null stands for a status the service could not read (render_errors), not a status.
  vocabulary.statuses = schemas.Task.properties.status.enum.filter((s) => s !== null);
  vocabulary.shownStatuses = [...new Set(vocabulary.statuses.map(shown))];
  vocabulary.retryable = new Set(bulkStatuses(schemas.BulkRetryRequest));
  vocabulary.cancellable = new Set(bulkStatuses(schemas.BulkCancelRequest));
}

// The statuses a bulk request's filter accepts (its `status` enum).
function bulkStatuses(schema) {
  for (const branch of schema.oneOf || []) {
    const status = branch.properties && branch.properties.status;
    if (status) return status.anyOf[0].enum;
  }
  return [];
}
