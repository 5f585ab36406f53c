"""The worker's ops on PostgreSQL where their SQL must differ from SQLite's: claims and
staging with FOR UPDATE SKIP LOCKED (app/worker/postgres/claims.py), processes that register
and rescue each other (app/worker/postgres/processes.py), and the wiring
(app/worker/postgres/backend.py)."""
