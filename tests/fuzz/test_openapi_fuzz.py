"""Schemathesis against the app's own /api/openapi.json, as every role and anonymously.

Every operation, valid and invalid input, with every check schemathesis has (the
`--checks all` of its CLI): no 5xx, every answer (errors included) matches the
documented status codes, content type, headers and schema, invalid input is
refused and valid input accepted, 405s carry `Allow`. The coverage phase (the
boundary values, missing and repeated parameters, undocumented methods of the
CLI's default run) runs as admin besides the random cases of every role.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from electro_isla import create_app
from electro_isla.auth.schemas import USERNAME_RULE
from electro_isla.config import TestConfig
from tests.fuzz.conftest import (
    ANONYMOUS,
    FUZZ_MAX_EXAMPLES,
    FUZZ_STATEFUL_EXAMPLES,
    ROLES,
    FuzzEnv,
)

METHODS = ("get", "post", "put", "patch", "delete")


def _negated(case, location: ParameterLocation) -> bool:  # noqa: ANN001
    component = (case.meta.components if case.meta else {}).get(location)
    return bool(component and component.mode.is_negative)


def invalid_input_is_rejected(ctx, response, case):  # noqa: ANN001, ANN201
    """negative_data_rejection, except where the harness undoes the negation.

    A negated header is the dropped or mangled `Authorization`; the harness sends
    the role's real token over it. What remains, if anything, is an undocumented
    query parameter, which the API ignores (as DRF does, and as schemathesis itself
    tolerates when it is the only negation).
    """
    negated = {loc for loc in ParameterLocation if _negated(case, loc)}
    if ParameterLocation.HEADER in negated:
        rest = negated - {ParameterLocation.HEADER}
        documented = {p.name for p in case.operation.query}
        extra = set(case.query or {}) - documented
        # What is left is nothing, or undocumented query parameters (ignored, as DRF does).
        if not rest or (rest == {ParameterLocation.QUERY} and extra):
            return None
    return negative_data_rejection(ctx, response, case)


# Refusals the document states in prose (a rule JSON Schema cannot say): the
# operation, the error key (an `items.<i>` index reads as `items.*`) and its text.
DOCUMENTED_REFUSALS = {
    ("POST", "/api/pedidos/"): {
        ("items", "A producto may appear only once; add up its cantidad."),
        ("items.*", "Unknown or inactive producto."),
        ("items", "The order total is too large."),
    },
    ("POST", "/api/auth/register/"): {
        ("username", USERNAME_RULE),  # beyond ASCII the pattern is looser than the rule
    },
    ("POST", "/api/admin/pedidos/{pedido_id}/asignar_mensajero/"): {
        ("mensajero_id", "Not an active usuario with rol mensajero."),
    },
}
# Rules of any operation, said in the fields' descriptions: text that must not be
# blank (only spaces).
ANYWHERE = {"This field cannot be blank.", "The name cannot be blank."}


def _refusals_are_documented(case, response) -> bool:  # noqa: ANN001
    if response.status_code != 422:
        return False
    documented = DOCUMENTED_REFUSALS.get((case.method.upper(), case.operation.path), set())
    errors = (response.json() or {}).get("errors") or {}
    for key, texts in errors.items():
        generic = ".".join("*" if part.isdigit() else part for part in key.split("."))
        for text in texts:
            if (generic, text) not in documented and text not in ANYWHERE:
                return False
    return bool(errors)


def valid_input_is_accepted(ctx, response, case):  # noqa: ANN001, ANN201
    """positive_data_acceptance, except a 422 for a rule the document states in prose."""
    if _refusals_are_documented(case, response):
        return None
    return positive_data_acceptance(ctx, response, case)


def _all_checks() -> list:
    """Every check schemathesis registers, its two data checks in the project's wording."""
    load_all_checks()
    replaced = {
        negative_data_rejection: invalid_input_is_rejected,
        positive_data_acceptance: valid_input_is_accepted,
    }
    return [replaced.get(check, check) for check in REGISTERED_CHECKS.get_all()]


CHECKS = _all_checks()
STATEFUL_CHECKS = CHECKS
# (rol, status) of every fuzzed answer: proof that the fuzzer got past the front door.
SEEN: Counter[tuple[str, int]] = Counter()


# The document as collection reads it (it does not depend on the database).
DOC_APP = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": None})


def documented_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation, read from the document at collection time."""
    doc = DOC_APP.test_client().get("/api/openapi.json").json
    return [
        (method.upper(), path)
        for path, operations in doc["paths"].items()
        for method in operations
        if method in METHODS
    ]


OPERATIONS = documented_operations()
# The same document with only the coverage phase: the deterministic boundary cases
# `schemathesis run` starts with. Its cases are sent to the fuzz app (`app=`).
coverage = schemathesis.openapi.from_wsgi(
    "/api/openapi.json",
    DOC_APP,
    config=SchemathesisConfig.from_dict(
        {
            "phases": {
                "examples": {"enabled": False},
                "fuzzing": {"enabled": False},
                "stateful": {"enabled": False},
            }
        }
    ),
)


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


@coverage.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_coverage_cases_conform_as_admin(case, fuzz_env: FuzzEnv):  # noqa: ANN001
    """Boundary values, missing/repeated/empty parameters, bodiless requests and
    undocumented methods (405 with Allow): what `schemathesis run` sends first."""
    headers = fuzz_env.headers("admin")
    response = case.call(headers=headers, app=fuzz_env.app)
    fuzz_env.after(case.operation.path)
    SEEN["coverage", response.status_code] += 1
    case.validate_response(
        response, checks=CHECKS, headers=headers, transport_kwargs={"app": fuzz_env.app}
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
    # The coverage phase ran: undocumented methods (405 + Allow) and boundary values.
    assert SEEN["coverage", 405] > 0 and SEEN["coverage", 422] > 0
    assert sum(n for (rol, _), n in SEEN.items() if rol == "coverage") >= 1000
