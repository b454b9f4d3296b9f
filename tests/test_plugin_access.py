"""Nothing of the platform answers without Airflow's login: the plugin pages behind a real
``airflow api-server`` (simple auth manager, the repository's plugins folder), asked
anonymously, with a bearer token, with the UI's ``_token`` cookie (what the iframe sends),
with a forged token, and as a user who lacks the view permission."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import REPO, free_port

PAGES = ("/cm-reports/", "/cm-validation/", "/cm-console/")
USERS = {"operator": "viewer", "nobody": ""}  # a user without a role has no permission


@pytest.fixture(scope="module")
def api_server(airflow_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("api_home")
    shutil.copy(airflow_home / "airflow.db", home / "airflow.db")
    data = tmp_path_factory.mktemp("api_data")
    passwords = {name: f"pw-{name}-0123456789" for name in USERS}
    (home / "passwords.json").write_text(json.dumps(passwords), encoding="utf-8")
    warehouse = f"sqlite:///{data / 'warehouse.db'}"
    subprocess.run(
        [sys.executable, "-m", "consumption_monitor", "migrate", "--url", warehouse],
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-0123456789abcdef",
        "AIRFLOW__API__SECRET_KEY": "test-api-secret-0123456789abcdef",
        "CM_WAREHOUSE_URL": warehouse,
        "CM_DATA_DIR": str(data),
    }
    log = open(home / "api-server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"api-server exited: {(home / 'api-server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("api-server did not become healthy in 180 s")
            time.sleep(1)
        tokens = {}
        for user, password in passwords.items():
            answer = httpx.post(
                f"{base}/auth/token", json={"username": user, "password": password}, timeout=10
            )
            assert answer.status_code == 201, answer.text
            tokens[user] = answer.json()["access_token"]
        yield {"base": base, "tokens": tokens}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.parametrize("page", PAGES)
def test_anonymous_requests_are_refused_like_the_api(api_server: dict, page: str) -> None:
    base = api_server["base"]
    assert httpx.get(f"{base}/api/v2/dags", timeout=10).status_code == 401
    assert httpx.get(f"{base}{page}", timeout=10).status_code == 401
    forged = {"Authorization": "Bearer not.a.token"}
    assert httpx.get(f"{base}{page}", headers=forged, timeout=10).status_code in (401, 403)


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.parametrize("page", PAGES)
def test_a_logged_in_operator_sees_the_pages_by_token_and_by_cookie(
    api_server: dict, page: str
) -> None:
    base, token = api_server["base"], api_server["tokens"]["operator"]
    by_token = httpx.get(f"{base}{page}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert by_token.status_code == 200 and "<h1>" in by_token.text
    by_cookie = httpx.get(f"{base}{page}", cookies={"_token": token}, timeout=30)
    assert by_cookie.status_code == 200 and by_cookie.text == by_token.text


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.parametrize("page", PAGES)
def test_a_user_without_the_permission_is_forbidden(api_server: dict, page: str) -> None:
    base, token = api_server["base"], api_server["tokens"]["nobody"]
    answer = httpx.get(f"{base}{page}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 403
    assert "<h1>" not in answer.text


def _document_status(browser, url: str) -> int:
    """Navigate and return the HTTP status of the main document."""
    browser.events.clear()
    browser.send("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired")
    answers = [
        e["params"]["response"]["status"]
        for e in browser.events
        if e.get("method") == "Network.responseReceived"
        and e["params"].get("type") == "Document"
        and e["params"]["response"]["url"].startswith(url)
    ]
    return answers[-1]


@pytest.mark.slow
@pytest.mark.airflow
def test_the_pages_in_a_real_browser_with_and_without_login(api_server: dict, tmp_path) -> None:
    """Headless Chromium on the live API server: without the login cookie every page is
    refused; with the cookie the UI sets after login, every page renders without a console
    error, the console with its feed × period matrix."""
    from chromium import Chromium, console_errors, is_free

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed (apt-get install chromium)")
    port = free_port()
    assert is_free(port)
    base = api_server["base"]
    with Chromium(binary, tmp_path / "profile", port) as browser:
        for domain in ("Runtime", "Log", "Page", "Network"):
            browser.send(f"{domain}.enable")
        for page in PAGES:
            assert _document_status(browser, f"{base}{page}") == 401, page
        browser.send(
            "Network.setCookie",
            name="_token",
            value=api_server["tokens"]["operator"],
            url=base,
        )
        seen = {}
        for page in PAGES:
            assert _document_status(browser, f"{base}{page}") == 200, page
            seen[page] = browser.send(
                "Runtime.evaluate",
                returnByValue=True,
                expression="""JSON.stringify({
                    h1: (document.querySelector('h1') || {}).innerText || '',
                    rows: document.querySelectorAll('#matrix tbody tr').length,
                    cells: document.querySelectorAll('#matrix td[data-state]').length})""",
            )["result"]["value"]
            assert console_errors(browser.events) == [], page
    console = json.loads(seen["/cm-console/"])
    assert console["h1"] == "监测总览" and console["rows"] == 6 and console["cells"] == 6 * 13
    assert all(json.loads(v)["h1"] for v in seen.values())
