"""PostgreSQL: the same service shared by several processes (docs/scaling.md).

SQLite keeps its specialised path (app/db/engine.py, app/db/writer.py); what differs on
PostgreSQL lives here: the engines, which errors are the database's state, the writer that
runs the same WriteOps with PostgreSQL's statements where they must differ, and the
listener that wakes idle processes.
"""
