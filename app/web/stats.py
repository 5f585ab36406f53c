"""GET /stats/throughput: completed and failed tasks per minute over the last hour (the
dashboard's sparkline; app/worker/throughput.py counts them)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.clock import now_us, us_to_datetime
from app.web.encoding import ApiJSONResponse, iso
from app.web.routing import resource
from app.web.state import throughput_of, worker_of
from app.worker.throughput import MINUTE_US


async def get_throughput(request: Request) -> Response:
    """Sixty minutes, oldest first; the last one is the current minute, still counting."""
    minutes = await throughput_of(request).minutes(worker_of(request).engines.reader)
    return ApiJSONResponse(
        {
            "bucket_seconds": MINUTE_US // 1_000_000,
            "now": iso(us_to_datetime(now_us())),
            "minutes": [
                {
                    "start": iso(us_to_datetime(m.start_us)),
                    "completed": m.completed,
                    "failed": m.failed,
                }
                for m in minutes
            ],
            "completed": sum(m.completed for m in minutes),
            "failed": sum(m.failed for m in minutes),
        }
    )


routes: list[BaseRoute] = [resource("/stats/throughput", {"GET": get_throughput})]
