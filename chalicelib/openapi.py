"""The OpenAPI 3 document, generated from the declared routes (`core.http.ROUTE_DOCS`) and
their pydantic schemas, served at /openapi.json. Routes modules load on their first call
(core/routing.py), so building the document imports them all first."""
from __future__ import annotations

import re
from typing import Any

from .core import routing
from .core.http import ROUTE_DOCS, Req, Routes

routes = Routes(__name__)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}},
}

# Every operation's texts (error messages, notifications, share texts) follow it (docs/i18n.md).
ACCEPT_LANGUAGE = {"name": "Accept-Language", "in": "header", "required": False, "schema": {"type": "string"},
                   "description": "zh-CN (the default) or en: the language of messages and texts"}


def _json_schema(model, components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    return schema


def _schema(model, components: dict[str, Any]) -> dict[str, Any]:
    components[model.__name__] = _json_schema(model, components)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _success(doc) -> dict[str, Any]:
    if doc.status == 302:
        return {"description": "redirect", "content": {doc.produces: {}},
                "headers": {"Location": {"required": True, "schema": {"type": "string"}}}}
    if doc.status == 204:
        return {"description": "No Content"}
    content = {"schema": {"type": "string"}} if doc.produces.startswith("text/") else {}
    success = {"description": "Created" if doc.status == 201 else "OK", "content": {doc.produces: content}}
    if doc.headers:
        success["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                              for name, text in doc.headers.items()}
    return success


def document(registered: dict[str, Any] | None = None) -> dict[str, Any]:
    """`registered`: the app's route table (path → methods). Declared routes whose blueprint is
    not registered in the app are left out, so the document lists exactly what answers."""
    from .route_table import ROUTES

    routing.load_all()
    order = {(method, path): position for position, (method, path, _, _) in enumerate(ROUTES)}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    # In the table's order whichever modules earlier requests loaded; routes not in it (tests') last.
    for doc in sorted(ROUTE_DOCS, key=lambda d: order.get((d.method, d.path), len(order))):
        if registered is not None and doc.method not in registered.get(doc.path, {}):
            continue
        operation: dict[str, Any] = {
            "summary": doc.summary or doc.path,
            "operationId": f"{doc.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', doc.path).strip('_') or 'root'}",
            "responses": {
                str(doc.status): _success(doc),
                "default": {"description": "error", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        if doc.roles:
            operation["security"] = [{"bearer": []}]
            operation["x-roles"] = list(doc.roles)
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in re.findall(r"{(\w+)}", doc.path)]
        if doc.query is not None:
            properties = _json_schema(doc.query, components).get("properties", {})
            for python_name, field in doc.query.model_fields.items():
                name = field.alias or python_name  # `from`: a Python keyword, declared by alias
                parameters.append({"name": name, "in": "query", "required": field.is_required(),
                                   "schema": properties.get(name, {}), "description": field.description or ""})
        parameters.append(ACCEPT_LANGUAGE)
        if doc.idempotent:
            parameters.append({"name": "Idempotency-Key", "in": "header", "required": doc.key_required,
                               "schema": {"type": "string", "maxLength": 128}})
        if parameters:
            operation["parameters"] = parameters
        if doc.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": _schema(doc.body, components)}}}
        paths.setdefault(doc.path, {})[doc.method.lower()] = operation
    return {
        # 3.1: its schemas are JSON Schema 2020-12, what pydantic emits (`{"type": "null"}`
        # for optional fields is invalid in 3.0).
        "openapi": "3.1.0",
        "info": {"title": "Referral and KOC-growth service", "version": "1.0.0"},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


@routes.get("/openapi.json", summary="This document")
def openapi(req: Req) -> Any:
    return document(routes.current_app.routes)
