"""The OpenAPI document: served publicly, generated from the schemas, in step with the routes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.api.openapi import OPERATIONS, PREFIX, REF
from app.core.listing import MAX_PER_PAGE
from app.policy import declared_policy
from app.repositories.items import ItemRepository
from app.repositories.users import UserRepository
from app.services.items import ItemOut

AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def openapi_path(rule: str) -> str:
    """/api/v1/items/<int(min=1):item_id> -> /items/{item_id}"""
    return re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule.removeprefix(PREFIX))


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


def test_document_is_openapi_3_1_with_bearer_security(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": PREFIX}]
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_every_api_route_is_documented_and_nothing_else(
    app: Flask, document: dict[str, Any]
) -> None:
    routes = {
        (method, openapi_path(rule.rule)): rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(f"{PREFIX}/")
        for method in (rule.methods or set()) - AUTOMATIC_METHODS
    }
    documented = operations(document)
    assert set(routes) == set(documented)
    for key, endpoint in routes.items():
        assert documented[key]["operationId"] == endpoint.rsplit(".", 1)[-1], key
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def test_security_and_errors_follow_each_views_policy(app: Flask, document: dict[str, Any]) -> None:
    documented = operations(document)
    for op in OPERATIONS:
        access = declared_policy(app.view_functions[op.endpoint])
        entry = documented[(op.method.upper(), op.path)]
        statuses = set(entry["responses"])
        assert (entry.get("security") == []) == (access == "public"), op.endpoint
        assert ("401" in statuses) == (access != "public" or 401 in op.errors), op.endpoint
        assert ("403" in statuses) == (access in ("write", "admin")), op.endpoint
    login = documented[("POST", "/auth/login")]
    assert login["security"] == [] and {"401", "422", "429"} <= set(login["responses"])
    assert "403" in documented[("GET", "/users")]["responses"]


def test_errors_are_problem_json(document: dict[str, Any]) -> None:
    for key, op in operations(document).items():
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
                }, (key, status)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"title", "status", "detail", "code", "instance"}


def test_list_parameters_match_the_repository_allowlists(document: dict[str, Any]) -> None:
    for path, repository in (("/items", ItemRepository), ("/users", UserRepository)):
        params = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        assert {"sort", "dir", "page", "per_page", "q"} <= params.keys()
        assert all(p["in"] == "query" and not p["required"] for p in params.values())
        assert set(params["sort"]["schema"]["enum"]) == set(repository.sortable)
        assert params["dir"]["schema"]["enum"] == ["asc", "desc"]
        assert params["per_page"]["schema"]["minimum"] == 1
        assert params["per_page"]["schema"]["maximum"] == MAX_PER_PAGE
        assert params["page"]["schema"]["minimum"] == 1
    items = {p["name"]: p for p in document["paths"]["/items"]["get"]["parameters"]}
    assert items["sort"]["schema"]["default"] == "created_at"
    assert items["dir"]["schema"]["default"] == "desc"
    assert items["status"]["schema"]["enum"] == ["draft", "active", "archived"]


def test_item_operations_declare_bodies_statuses_and_headers(document: dict[str, Any]) -> None:
    paths = document["paths"]
    create = paths["/items"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": REF.format(model="ItemCreate")
    }
    assert "Location" in create["responses"]["201"]["headers"]
    assert set(paths["/items/{item_id}"]["delete"]["responses"]) == {"204", "401", "403", "404"}
    patch = paths["/items/{item_id}"]["patch"]
    assert set(patch["responses"]) == {"200", "401", "403", "404", "422"}
    (param,) = patch["parameters"]
    assert param["in"] == "path" and param["schema"]["type"] == "integer"
    schemas = document["components"]["schemas"]
    assert schemas["ItemPatch"]["additionalProperties"] is False
    assert "required" not in schemas["ItemPatch"]
    assert set(schemas["ItemCreate"]["required"]) == {"name", "price"}


def test_components_are_the_pydantic_schemas(document: dict[str, Any]) -> None:
    generated = ItemOut.model_json_schema(mode="serialization", ref_template=REF)
    assert document["components"]["schemas"]["ItemOut"] == generated
    assert generated["properties"]["price"]["type"] == "string"


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    names = document["components"]["schemas"].keys()
    assert refs and all(ref.removeprefix("#/components/schemas/") in names for ref in refs)


def test_document_passes_the_openapi_3_1_validator(document: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)
