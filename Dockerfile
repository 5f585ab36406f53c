# litetask: one process, one SQLite file on a volume. Build: docker build -t litetask .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    LITETASK_DATABASE_URL=sqlite+aiosqlite:////data/litetask.db

WORKDIR /srv/litetask
RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN uv sync --frozen --no-dev

VOLUME /data
EXPOSE 8000
# SIGTERM drains running tasks (LITETASK_STOP_TIMEOUT) and exits 0.
STOPSIGNAL SIGTERM
CMD ["uv", "run", "--frozen", "--no-dev", "litetask", "serve", "--host", "0.0.0.0", "--port", "8000"]
