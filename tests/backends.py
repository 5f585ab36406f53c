"""What does not run or pass on PostgreSQL, in one place, so it stays visible: each entry is
a node id prefix (a module, a test, or a test with parameters) and why. Under
`--backend postgresql`, tests in PG_GAPS are marked xfail (not strict: an XPASS says one
passes now); tests in PG_SKIPPED are skipped: they test a rule only SQLite has, or write
rows with SQLite's own SQL (half-run, they would leave the workers they started behind).
Faults are no reason to skip: tests/faults.py injects each on both backends. The `-ra`
summary lists both. SQLite runs them all."""

from __future__ import annotations

import pytest

SQLITE_BY_NATURE = "tests SQLite itself (files, PRAGMAs, locks, query plans)"
ONE_OWNER = "the one-owner rule is SQLite's; on PostgreSQL many processes share the database"
SQLITE_HELPERS = "its helpers read and backdate rows through sqlite3"
LATER = (
    "events reach streams through the log follower, a moment after their commit, so a "
    "stream opened right after one may open before its events (docs/scaling.md)"
)
OUTCOMES = "tests/worker/test_outcomes.py::"

# node id prefix -> reason: skipped on PostgreSQL
PG_SKIPPED: dict[str, str] = {
    "tests/worker/test_lifecycle.py::test_second_worker_on_the_same_file_refuses": ONE_OWNER,
    "tests/worker/test_owner_and_reconcile.py::test_a_second_worker_refuses": ONE_OWNER,
    "tests/worker/test_owner_and_reconcile.py::test_an_owner_on_another_host_is_refused": (
        ONE_OWNER
    ),
    "tests/events/test_epoch.py::test_the_epoch_of_a_running_service_is_not_rotated": ONE_OWNER,
    "tests/worker/test_query_plans.py": SQLITE_BY_NATURE,
    "tests/events/test_query_plans.py": SQLITE_BY_NATURE,
    "tests/web/test_disk_use.py::test_a_new_database_uses_incremental_vacuum": SQLITE_BY_NATURE,
    "tests/web/test_disk_use.py::test_pruning_gives_space_back": SQLITE_BY_NATURE,
    "tests/worker/test_bounds.py::test_rows_written_by_another_program_still_read": (
        "writes its rows with SQLite's SQL (x'..' blobs)"
    ),
}

# node id prefix -> reason: xfail on PostgreSQL (not done yet)
PG_GAPS: dict[str, str] = {
    "tests/web/test_bounds.py::test_broken_rows_still_render": "writes broken rows through sqlite3",
    "tests/web/test_bounds.py::test_values_of_any_type_still_render": (
        "writes broken rows through sqlite3"
    ),
    "tests/web/test_listing_render.py::test_every_listed_row_is_what_reading": (
        "writes its rows through sqlite3"
    ),
    "tests/web/test_retention.py::test_finished_tasks_and_their_rows_are_pruned": SQLITE_HELPERS,
    "tests/web/test_retention.py::test_a_webhook_delivery_id_is_remembered": SQLITE_HELPERS,
    "tests/web/test_retention.py::test_a_large_prune_goes_in_small_transactions": SQLITE_HELPERS,
    "tests/web/test_throughput.py::test_rows_older_than_the_hour_are_left_out": SQLITE_HELPERS,
    "tests/events/test_cursors.py::test_every_stream_opens_with_a_cursor_at_the_newest_id": LATER,
    "tests/events/test_stream.py::test_without_a_last_id_only_live_events_come": LATER,
}


def backend_marks(nodeid: str) -> list[pytest.MarkDecorator]:
    """The marks for `nodeid` on PostgreSQL (the longest matching prefix wins)."""
    for table, mark in ((PG_SKIPPED, pytest.mark.skip), (PG_GAPS, None)):
        for prefix in sorted(table, key=len, reverse=True):
            if nodeid.startswith(prefix):
                reason = f"PostgreSQL: {table[prefix]}"
                if mark is not None:
                    return [mark(reason=reason)]
                return [pytest.mark.xfail(reason=reason, strict=False)]
    return []
