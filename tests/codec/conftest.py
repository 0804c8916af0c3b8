"""The codec tests reuse the signup stack (API, worker, sandbox) of tests/sagas."""

from tests.sagas.conftest import db_fault, stack  # noqa: F401
