# litetask: one process, one SQLite file on a volume. Build: docker build -t litetask .
# Run: docker run -e LITETASK_API_TOKEN=$(litetask token) -e LITETASK_TASK_MODULES=myapp.tasks ...
# (no task module is loaded unless named; add --demo to the command for the demo tasks).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    LITETASK_DATABASE_URL=sqlite+aiosqlite:////data/litetask.db

WORKDIR /srv/litetask
RUN pip install --no-cache-dir uv==0.13.9 \
    && useradd --system --uid 10001 --home-dir /srv/litetask --shell /usr/sbin/nologin litetask \
    && mkdir -p /data && chown litetask:litetask /data && chmod 0700 /data
COPY pyproject.toml uv.lock README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Everything is installed at build time (the project editable: migrations/ stays beside app/);
# starting the container needs no network and no uv.
RUN uv sync --frozen --no-dev

USER litetask
VOLUME /data
EXPOSE 8000
# SIGTERM drains running tasks (LITETASK_STOP_TIMEOUT) and exits 0. Off loopback the service
# refuses to start without LITETASK_API_TOKEN (fly secrets set LITETASK_API_TOKEN=...).
STOPSIGNAL SIGTERM
CMD ["/srv/litetask/.venv/bin/litetask", "serve", "--host", "0.0.0.0", "--port", "8000"]
