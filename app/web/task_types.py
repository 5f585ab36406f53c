"""GET /task-types: the registered task types, their docs and parameters."""

from __future__ import annotations

import inspect
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.cache.jsonable import jsonable
from app.web.encoding import ApiJSONResponse
from app.web.state import worker_of
from app.worker.registry import TaskDefinition

WORKER_GIVEN = frozenset({"progress_callback"})


async def list_task_types(request: Request) -> Response:
    definitions = worker_of(request).registry.definitions()
    return ApiJSONResponse({"task_types": [task_type_json(d) for d in definitions]})


def task_type_json(definition: TaskDefinition) -> dict[str, Any]:
    """One task type as JSON: its name, docstring and the parameters a caller can give."""
    return {
        "name": definition.name,
        "doc": definition.doc,
        "parameters": [
            _parameter_json(p)
            for p in definition.signature.parameters.values()
            if p.name not in WORKER_GIVEN
        ],
    }


def _parameter_json(parameter: inspect.Parameter) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": parameter.name,
        "kind": parameter.kind.name.lower(),
        "required": parameter.default is inspect.Parameter.empty
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD),
    }
    if parameter.annotation is not inspect.Parameter.empty:
        annotation = parameter.annotation
        described["annotation"] = annotation if isinstance(annotation, str) else _name(annotation)
    if parameter.default is not inspect.Parameter.empty:
        described["default"] = jsonable(parameter.default)
    return described


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


routes: list[BaseRoute] = [Route("/task-types", list_task_types, methods=["GET"])]
