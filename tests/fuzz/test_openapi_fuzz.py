"""Schemathesis against the app's own /api/openapi.json, as every role and anonymously.

Every operation, valid and invalid input: no 5xx, and every answer (errors
included) matches the documented status codes, content type and schema.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from electro_isla import create_app
from electro_isla.config import TestConfig
from tests.fuzz.conftest import (
    ANONYMOUS,
    FUZZ_MAX_EXAMPLES,
    FUZZ_STATEFUL_EXAMPLES,
    ROLES,
    FuzzEnv,
)

METHODS = ("get", "post", "put", "patch", "delete")


def _empty(value: object) -> bool:
    return value in ("", None) or (isinstance(value, list | dict) and not value)


def _negated(case, location: ParameterLocation) -> bool:  # noqa: ANN001
    component = (case.meta.components if case.meta else {}).get(location)
    return bool(component and component.mode.is_negative)


def invalid_input_is_rejected(ctx, response, case):  # noqa: ANN001, ANN201
    """negative_data_rejection, except where the harness or the wire undoes the negation.

    - An object or list mutated into a query parameter goes on the wire as `page=`,
      which the API reads as "not given" (the default applies), as DRF does.
    - A negated header is the dropped or mangled `Authorization`; the harness sends
      the role's real token over it. What remains, if anything, is an undocumented
      query parameter, which the API ignores (as DRF does, and as schemathesis itself
      tolerates when it is the only negation).
    """
    if case.query and any(_empty(v) for v in case.query.values()):
        return None
    negated = {loc for loc in ParameterLocation if _negated(case, loc)}
    if ParameterLocation.HEADER in negated:
        rest = negated - {ParameterLocation.HEADER}
        documented = {p.name for p in case.operation.query}
        extra = set(case.query or {}) - documented
        # What is left is nothing, or undocumented query parameters (ignored, as DRF does).
        if not rest or (rest == {ParameterLocation.QUERY} and extra):
            return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    invalid_input_is_rejected,
]
STATEFUL_CHECKS = [*CHECKS, use_after_free]
# (rol, status) of every fuzzed answer: proof that the fuzzer got past the front door.
SEEN: Counter[tuple[str, int]] = Counter()


def documented_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation, read from the document at collection time."""
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": None})
    doc = app.test_client().get("/api/openapi.json").json
    return [
        (method.upper(), path)
        for path, operations in doc["paths"].items()
        for method in operations
        if method in METHODS
    ]


OPERATIONS = documented_operations()


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_env: FuzzEnv):  # noqa: ANN201
    return schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_env.app)


def test_the_document_lists_every_route(fuzz_env: FuzzEnv):
    """Nothing under /api/ escapes the fuzzer by being left out of the document."""
    documented = {(m, p) for m, p in OPERATIONS}
    for rule in fuzz_env.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule.startswith("/api/docs"):
            continue
        if rule.rule in ("/api/openapi.json",):
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented, f"{method} {path} is not in the OpenAPI document"


@pytest.mark.parametrize("rol", [*ROLES, ANONYMOUS])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_for_every_role(fuzz_env: FuzzEnv, fuzz_schema, method, path, rol):
    operation = fuzz_schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=FUZZ_MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:  # noqa: ANN001
        headers = fuzz_env.headers(rol)
        response = case.call(headers=headers)
        fuzz_env.after(path)
        SEEN[rol, response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    fuzz()


@pytest.mark.parametrize("rol", ["admin", "trabajador", "mensajero", "cliente"])
def test_stateful_sequences_along_the_documents_links(fuzz_env: FuzzEnv, fuzz_schema, rol):
    """Chains of calls that feed one answer's ids into the next request (links inferred
    from the document: list -> detail -> PATCH/DELETE/asignar_mensajero, perfil -> users)."""
    workflow = fuzz_schema.as_state_machine()

    class Workflow(workflow):
        def get_call_kwargs(self, case) -> dict:  # noqa: ANN001
            return {"headers": fuzz_env.headers(rol)}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:  # noqa: ANN001
            fuzz_env.after(case.operation.path)
            SEEN[f"stateful-{rol}", response.status_code] += 1
            case.validate_response(
                response,
                checks=STATEFUL_CHECKS,
                headers=kwargs.get("headers"),
                recorder=self.recorder,
            )

    Workflow.run(
        settings=settings(
            max_examples=FUZZ_STATEFUL_EXAMPLES,
            stateful_step_count=8,
            deadline=None,
            database=None,
            derandomize=True,
            # The database changes under the sequences: shrinking would replay them
            # against other data (hypothesis calls that flaky); report the raw failure.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )


def test_the_fuzzer_reached_every_kind_of_answer():
    """Runs last: the cases above were not all bounced at the door (401/422)."""
    if not SEEN:
        pytest.skip("run together with the fuzz tests above")
    statuses = Counter()
    for (_rol, status), n in SEEN.items():
        statuses[status] += n
    roles_ok = {rol for (rol, status) in SEEN if 200 <= status < 300}
    assert set(ROLES) <= roles_ok, f"some role never got a 2xx: {sorted(SEEN.items())}"
    assert SEEN[ANONYMOUS, 401] > 0
    assert SEEN["cliente", 403] > 0
    assert statuses[422] > 0 and statuses[404] > 0
    assert any(str(rol).startswith("stateful-") and 200 <= s < 300 for rol, s in SEEN)
    assert sum(statuses.values()) >= 100 * min(FUZZ_MAX_EXAMPLES, 3)
