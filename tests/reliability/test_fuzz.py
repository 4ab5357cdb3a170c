"""Schemathesis against the app's own OpenAPI document: every operation, positive and negative
generated requests, with API keys configured and a small real gallery.

Every response must be a non-5xx whose status code, content type and body are the ones the
document declares for the operation. The figures (cases tried, by status, 5xx seen) are
printed and written to ``fuzz-figures.json`` under the test's tmp folder.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402
from schemathesis.python import asgi as schemathesis_asgi  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app  # noqa: E402
from tests.helpers import LONG, b64, scale  # noqa: E402
from tests.reliability.apps import BOTH, MANAGE, RECOGNIZE, settings_for  # noqa: E402

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# keys rotated over the cases: mostly one that may do everything (so requests get past auth
# into validation and the routes), some with one scope only (403), some with none (401)
ROTATION: tuple[str | None, ...] = (BOTH, BOTH, BOTH, RECOGNIZE, MANAGE, None)
EXAMPLES = scale(45, 400)  # per operation, per generation mode


@pytest.fixture(scope="module")
def fuzzed(
    test_pack: Path, insightface_images: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, list[str]]]:
    """The loaded schema of the real app (lifespan run by schemathesis) and the ids of the
    small gallery it holds: three identities, one with a real enrolled face."""
    app = create_app(settings_for(test_pack, tmp_path_factory.mktemp("fuzz-data")))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    t1 = (insightface_images / "t1.jpg").read_bytes()
    ids = []
    with schemathesis_asgi.get_client(app) as http:
        http.headers["X-API-Key"] = BOTH
        for name in ("ada", "grace", "alan"):
            ids.append(http.post("/identities", json={"name": name}).json()["id"])
        face = http.post("/embed", json={"image": b64(t1), "max_faces": 1}).json()["faces"][0]
        enrolled = http.post(
            f"/identities/{ids[0]}/faces", json={"image": [b64(t1)], "box": face["box"]}
        )
        assert enrolled.status_code == 201, enrolled.text
    try:
        yield schema, ids
    finally:
        schemathesis_asgi.shutdown_lifespans()


def _run(
    operation: Any,
    mode: GenerationMode,
    figures: Counter[str],
    failures: list[str],
    path_parameters: dict[str, str] | None = None,
) -> None:
    turn = iter(range(10**9))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,  # CI: the same cases every run; long mode: new ones
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def one(case: Any) -> None:
        key = ROTATION[next(turn) % len(ROTATION)]
        figures["cases"] += 1
        try:
            response = case.call(headers={"X-API-Key": key} if key else None)
        except Exception as exc:  # the app raised: ASGI transports re-raise after the 500
            figures["5xx"] += 1
            failures.append(f"{operation.label} [{mode.value}] raised {exc!r}")
            return
        figures[f"status_{response.status_code}"] += 1
        if response.status_code >= 500:
            figures["5xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:
            failures.append(f"{operation.label} [{mode.value}] → {response.status_code}: {exc}")

    with contextlib.suppress(Unsatisfiable):  # no negative case without parameters
        one()


def test_fuzz_every_operation(fuzzed: tuple[Any, list[str]], tmp_path: Path) -> None:
    schema, ids = fuzzed
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    figures: Counter[str] = Counter({"cases": 0, "5xx": 0})
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(operation, mode, figures, failures)
        if "{identity_id}" in operation.path and operation.method.upper() != "DELETE":
            # the same operations on an identity that exists (random ids almost never do)
            _run(operation, GenerationMode.POSITIVE, figures, failures, {"identity_id": ids[1]})
    result = {
        "operations": len(operations),
        "examples_per_operation_and_mode": EXAMPLES,
        **dict(sorted(figures.items())),
        "failures": len(failures),
    }
    (tmp_path / "fuzz-figures.json").write_text(json.dumps(result, indent=2))
    print(f"\nfuzz figures: {json.dumps(result)}")
    assert not failures, "\n\n".join(failures[:10])
    assert figures["5xx"] == 0
    assert figures["cases"] >= scale(1000, 10000), figures
