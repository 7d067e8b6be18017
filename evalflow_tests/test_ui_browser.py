"""The Dagster UI as a person uses it, in a real browser: the webserver alone on a free port of
127.0.0.1 over a small materialized demo warehouse, Debian's chromium driven by Debian's
chromedriver through Selenium. It checks that the asset catalog lists every asset of the code
location, that the intent catalog's metadata table shows a `<PERSON>` placeholder as text (the
escaping in evalflow/lib/common/report.py; unescaped, the browser takes it for a tag and drops
it), and that a materialization launched with the UI's "Materialize" button succeeds.

Screenshots of each page go to test-artifacts/ui/ under the checkout (gitignored), replaced on
each run, with the webserver's log beside them; a failed step leaves its screenshot there too.

Needs /usr/bin/chromium, /usr/bin/chromedriver (Debian's chromium and chromium-driver; .ci/run
installs them) and selenium (the `test` extra). Without them the tests skip with the reason;
with EVALFLOW_REQUIRE_BROWSER=1 (.ci/run sets it) they fail instead. Nothing is downloaded:
Selenium is given the driver's path, so Selenium Manager never runs (SE_OFFLINE=true besides).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REQUIRE_BROWSER = "EVALFLOW_REQUIRE_BROWSER"
# The asset the UI materializes: with every landing file already landed it parses nothing again,
# so the run takes seconds and changes no table.
LAUNCHED_ASSET = "landed_traces"
# Chromium as root, with no network: no sandbox, no GPU, and none of its background connections.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1600,1400",
]
SERVER_START_S = 180
RUN_TIMEOUT_S = 120
PAGE_TIMEOUT_S = 60


def _browser_required() -> bool:
    return os.environ.get(REQUIRE_BROWSER, "").strip().lower() in ("1", "true", "yes")


def _missing_browser_tools() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if not missing:
        return None
    return ("browser test needs " + ", ".join(missing) + " (apt-get install chromium chromium-driver; "
            ".ci/run installs them)")


@pytest.fixture(scope="module")
def browser_tools() -> None:
    """Skip (or, with EVALFLOW_REQUIRE_BROWSER=1, fail) before building anything."""
    missing = _missing_browser_tools()
    if missing is None:
        return
    if _browser_required():
        pytest.fail(f"{missing}; {REQUIRE_BROWSER}=1 makes their absence a failure", pytrace=False)
    pytest.skip(missing)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    print(f"UI screenshots: {ARTIFACTS}")
    return ARTIFACTS


def _env(root: Path) -> dict[str, str]:
    return dict(os.environ, EVALFLOW_DATA_DIR=str(root / "data"), DAGSTER_HOME=str(root / "dagster_home"),
                # The demo plants bad lines on purpose: at 120 traces they are above the 1% default.
                EVALFLOW_REJECT_RATE_THRESHOLD="0.5", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                GX_ANALYTICS_ENABLED="false")


@pytest.fixture(scope="module")
def demo(browser_tools, small_demo, tmp_path_factory) -> Path:
    """A copy of the session's small materialized demo (2 days x 60 traces) with its own Dagster
    instance (the test launches a run in it); returns its root."""
    root = tmp_path_factory.mktemp("ui")
    shutil.copytree(small_demo / "data", root / "data")
    shutil.copytree(small_demo / "dagster_home", root / "dagster_home")
    return root


def _catalog_metadata(root: Path) -> str:
    """The markdown of intent_catalog's `catalog` metadata table, as the webserver serves it."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("intent_catalog"))
    assert event is not None, "intent_catalog was never materialized"
    metadata = event.asset_materialization.metadata
    value = metadata.get("catalog")
    assert value is not None, f"intent_catalog has no `catalog` metadata: {sorted(metadata)}"
    return value.value


def _expected_asset_keys(root: Path) -> list[str]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _env(root).items():
            if key.startswith(("EVALFLOW_", "DAGSTER_")):
                patch.setenv(key, value)
        from evalflow.definitions import defs

        keys = sorted(key.to_user_string() for key in defs().resolve_all_asset_keys())
    assert keys, "the code location defines no assets"
    return keys


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert not body.get("errors"), body["errors"]
    return body["data"]


def _log_tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


LOCATIONS = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _wait_for_server(base: str, process: subprocess.Popen, log: Path) -> None:
    """Until the webserver answers and every code location has loaded (bounded)."""
    deadline = time.monotonic() + SERVER_START_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {process.returncode}:\n{_log_tail(log)}", pytrace=False)
        try:
            entries = _graphql(base, LOCATIONS)["workspaceOrError"]["locationEntries"]
        except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
            last = repr(exc)
        else:
            errors = [e["locationOrLoadError"].get("message", "") for e in entries
                      if e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "PythonError"]
            if errors:
                pytest.fail(f"the code location failed to load: {errors[0]}", pytrace=False)
            if entries and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries):
                return
            last = f"locations: {[(e['name'], e['loadStatus']) for e in entries]}"
        time.sleep(1)
    pytest.fail(f"dagster-webserver not ready after {SERVER_START_S}s ({last}):\n{_log_tail(log)}", pytrace=False)


@pytest.fixture(scope="module")
def webserver(demo, artifacts):
    """dagster-webserver alone (no daemon, so no sensor or schedule fires) on the demo's instance,
    with the project's workspace.yaml (code location `evalflow`). Stopped, with its code server
    and run workers (one process group), whatever the tests did."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = artifacts / "webserver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port),
             "-w", str(ROOT / "workspace.yaml")],
            cwd=demo, env=_env(demo), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_server(base, process, log)
        yield base
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the group (the webserver stops its code server), then SIGKILL to what is left."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # the whole group is gone
            return
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture(scope="module")
def browser(webserver):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="evalflow-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in [*CHROMIUM_ARGS, f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager, should anything call it, downloads nothing
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        # The UI's one-time "Join the Dagster community" dialog, marked as seen (it covers the page).
        driver.get(webserver + "/server_info")
        driver.execute_script("window.localStorage.setItem('communityNux', '\"1\"');")
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """One page of the UI: open, wait, dismiss dialogs, screenshot (also when a step fails)."""

    def __init__(self, driver, base: str, artifacts: Path):
        self.driver, self.base, self.artifacts = driver, base, artifacts

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def wait(self, what: str, condition, timeout_s: float = PAGE_TIMEOUT_S, shot: str = "failed"):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout_s, poll_frequency=0.5).until(lambda d: self._dismiss() or
                                                                                  condition(d))
        except TimeoutException:
            path = self.shot(shot)
            source = path.with_suffix(".html")
            source.write_text(self.driver.page_source, encoding="utf-8")
            pytest.fail(f"UI: {what} not seen within {timeout_s}s at {self.driver.current_url} "
                        f"(screenshot {path}, page source {source})", pytrace=False)

    def _dismiss(self) -> bool:
        """Click away a dialog's "Skip" (the community dialog) if one shows; never a match."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By

        for button in self.driver.find_elements(By.XPATH, "//*[@role='dialog']//button[normalize-space(.)='Skip']"):
            try:
                if button.is_displayed():
                    button.click()
            except WebDriverException:
                pass
        return False

    def click(self, what: str, xpath: str, shot: str, timeout_s: float = PAGE_TIMEOUT_S) -> None:
        """Click the first shown, enabled element at xpath; again if React re-rendered it (stale)
        or a dialog covered it, until the timeout."""
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            ElementNotInteractableException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.common.by import By

        def attempt(driver) -> bool:
            for element in driver.find_elements(By.XPATH, xpath):
                try:
                    if element.is_displayed() and element.is_enabled():
                        element.click()
                        return True
                except (StaleElementReferenceException, ElementClickInterceptedException,
                        ElementNotInteractableException):
                    return False
            return False

        self.wait(what, attempt, timeout_s, shot)

    def settle(self, timeout_s: float = 20) -> None:
        """Best effort, for the screenshot: until no "Loading…" is left on the page (never fails)."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, timeout_s, poll_frequency=0.5).until(
                lambda d: not any(line.startswith("Loading") for line in self.text_lines()))
        except TimeoutException:
            pass

    def text_lines(self) -> set[str]:
        from selenium.webdriver.common.by import By

        return {line.strip() for line in self.driver.find_element(By.TAG_NAME, "body").text.splitlines()}

    def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture
def page(browser, webserver, artifacts) -> Page:
    return Page(browser, webserver, artifacts)


def test_the_asset_catalog_lists_every_asset(demo, page):
    expected = _expected_asset_keys(demo)
    page.open("/assets")
    page.wait(f"every asset of the code location ({', '.join(expected)})",
              lambda d: set(expected) <= page.text_lines(), shot="01-asset-catalog-failed")
    page.settle()
    page.shot("01-asset-catalog")


def test_the_intent_catalog_table_shows_person_placeholders_as_text(demo, page):
    from selenium.webdriver.common.by import By

    # Not vacuous: the warehouse's examples hold a <PERSON> placeholder, and the table the UI
    # renders carries it escaped (the UI must show it back as text).
    with duckdb.connect(str(demo / "data" / "warehouse" / "evalflow.duckdb"), read_only=True) as con:
        placeholders = con.execute("SELECT count(*) FROM intent_catalog, unnest(examples) AS e(x) "
                                   "WHERE x LIKE '%<PERSON%'").fetchone()[0]
    assert placeholders > 0, "the simulated traffic gave no intent example with a <PERSON> placeholder"
    markdown = _catalog_metadata(demo)
    assert "&lt;PERSON" in markdown, f"the catalog table shows no <PERSON> placeholder:\n{markdown}"

    page.open("/assets/intent_catalog")
    # The deepest element whose text holds the placeholder: the renderer may split a cell's text
    # into several text nodes around it, so match on the element's whole text, not its first node.
    xpath = "//*[contains(., '<PERSON') and not(*[contains(., '<PERSON')])]"
    # A long markdown value is not shown inline: the metadata table offers "[Show Markdown]",
    # which opens it in a dialog. Open it when that is what the page shows.
    show = "//*[normalize-space(text())='[Show Markdown]']"

    def placeholder_cell(driver):
        cells = driver.find_elements(By.XPATH, xpath)
        if not cells:
            for link in driver.find_elements(By.XPATH, show):
                driver.execute_script("arguments[0].click();", link)
        return cells

    cell = page.wait("a `<PERSON` placeholder in the intent catalog's metadata table",
                     placeholder_cell, shot="02-intent-catalog-failed")[0]
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
    assert "<PERSON" in cell.text
    page.shot("02-intent-catalog")


RUNS = "{ runsOrError(limit: 50) { __typename ... on Runs { results { runId status assetSelection { path } } } } }"


def _runs(base: str) -> dict[str, dict]:
    data = _graphql(base, RUNS)["runsOrError"]
    assert data["__typename"] == "Runs", data
    return {run["runId"]: run for run in data["results"]}


def test_a_materialization_launched_from_the_ui_succeeds(demo, page, webserver):
    from selenium.webdriver.common.by import By

    before = set(_runs(webserver))
    page.open(f"/assets/{LAUNCHED_ASSET}")
    materialize = "//button[normalize-space(.)='Materialize']"
    page.wait('the "Materialize" button', lambda d: d.find_elements(By.XPATH, materialize),
              shot="03-materialize-failed")
    page.settle()
    page.shot("03-asset-before-materialize")
    page.click('a click on "Materialize"', materialize, shot="03-materialize-failed")
    # The UI's own answer (a toast naming the run); the run itself is followed through GraphQL.
    page.wait('the "Launched run" toast', lambda d: any(line.startswith("Launched run") for line in page.text_lines()),
              timeout_s=30, shot="04-launched-no-toast")
    page.shot("04-launched")

    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = None
    while time.monotonic() < deadline:
        new = [r for run_id, r in _runs(webserver).items() if run_id not in before]
        if new:
            run = new[0]
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                break
        time.sleep(1)
    if run is None:
        pytest.fail(f"no run started within {RUN_TIMEOUT_S}s of clicking Materialize (screenshot "
                    f"{page.shot('03-materialize-no-run')})", pytrace=False)
    assert [a["path"] for a in run["assetSelection"]] == [[LAUNCHED_ASSET]], run
    assert run["status"] == "SUCCESS", (
        f"run {run['runId']} ended {run['status']} (or was still running after {RUN_TIMEOUT_S}s); "
        f"see {webserver}/runs/{run['runId']} and {page.artifacts / 'webserver.log'}")

    # The run's page says so too, and the asset's latest materialization is this run's.
    page.open(f"/runs/{run['runId']}")
    page.wait("the run's Success status", lambda d: "Success" in page.text_lines(), shot="05-run-failed")
    page.shot("05-run")
    page.open(f"/assets/{LAUNCHED_ASSET}")
    page.wait("the asset page", lambda d: "Latest materialization" in page.text_lines(), shot="06-asset-failed")
    page.settle()
    page.shot("06-asset-after-run")
    import dagster as dg

    with dg.DagsterInstance.from_config(str(demo / "dagster_home")) as instance:
        latest = instance.get_latest_materialization_event(dg.AssetKey(LAUNCHED_ASSET))
    assert latest is not None and latest.run_id == run["runId"]
