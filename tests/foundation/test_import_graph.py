"""The import graph keeps the layers of docs/architecture.md: read from the source with `ast`, so
an import inside a function counts as much as one at the top of a module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Everything the project itself provides at the top level (packages and single modules).
PROJECT = frozenset(
    {
        "activities",
        "api",
        "bench",
        "cli",
        "contracts",
        "db",
        "devstack",
        "ops",
        "providers",
        "sandbox",
        "settings",
        "telemetry",
        "tests",
        "worker",
        "workflows",
    }
)
# What code outside `workflows/` may use of it: starting, signalling and reading workflows.
CLIENT_HELPERS = frozenset(
    {
        "workflows.client",
        "workflows.codec",
        "workflows.purchase_client",
        "workflows.signup_client",
        "workflows.asaas_payment_client",
    }
)
BELOW_WORKFLOWS = ("db", "activities", "providers", "api")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports; `from a import b` counts as `a.b` (b may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_rules_see_the_source() -> None:
    """The rules below read real files (an empty glob would make them pass vacuously)."""
    for package in ("contracts", *BELOW_WORKFLOWS):
        assert sources(package), package
    assert "workflows.purchase_client" in imported_modules(ROOT / "api/intake.py")


def test_contracts_import_nothing_of_the_project() -> None:
    """`contracts/` is the neutral home of shared payloads, names and failure codes: it depends on
    the standard library and third-party packages only, so every layer may import it."""
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources("contracts")
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in PROJECT - {"contracts"}
    ]
    assert offenders == []


def test_nothing_below_workflows_imports_workflow_internals() -> None:
    """db/, activities/, providers/ and api/ reach workflows only through the client helpers
    (start, signal, query); payloads and names come from `contracts/`."""
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for package in BELOW_WORKFLOWS
        for path in sources(package)
        for module in sorted(imported_modules(path))
        if module.split(".")[0] == "workflows"
        and module != "workflows"
        # `from workflows.client import connect` also yields `workflows.client.connect`.
        and not any(module == h or module.startswith(h + ".") for h in CLIENT_HELPERS)
    ]
    assert offenders == []


def test_db_and_providers_stay_at_the_bottom() -> None:
    """SQL and the outside services' clients never reach up into activities, API or workflows."""
    above = {"activities", "api", "workflows", "cli", "worker"}
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for package in ("db", "providers")
        for path in sources(package)
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in above
    ]
    assert offenders == []
