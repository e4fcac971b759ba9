"""The real UI: dagster-webserver on 127.0.0.1 and headless Chromium (Debian's, driven by Playwright) find
candidate_evaluation in the asset graph with its gates and their status, and save screenshots.

Without Chromium or Playwright the test skips and says why; `.ci/run` installs Chromium and sets
MLCICD_REQUIRE_BROWSER=1, which turns that skip into a failure, so in CI it always runs."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from .support import MODEL_GATES, free_port, wait_until_up

CHROMIUM_ARGS = [  # what works on a closed network: no background connections, no sandbox as root
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_or_skip() -> str:
    problem = None
    path = os.environ.get("MLCICD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        problem = "no Chromium found (install Debian's 'chromium' package, or set MLCICD_CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed"
    if problem:
        if os.environ.get("MLCICD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MLCICD_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    return path


@pytest.fixture
def webserver(make_project, definitions, tmp_path):
    """A project whose latest candidate passed five model gates and failed one, served by dagster-webserver."""
    chromium = chromium_or_skip()
    make_project({"gates": {"min_metrics": {"roc_auc": 0.99}}})  # a floor no candidate reaches: meets_thresholds fails
    home = tmp_path / "dagster_home"
    home.mkdir()
    # nux: Dagster's first-visit dialog (a newsletter) opens late on a busy machine, over the element the test clicks
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = definitions.resolve_job_def("ci_job").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success, "meets_thresholds should have stopped the run"

    port = free_port()
    log = tmp_path / "webserver.log"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port), "-m", "mlcicd.definitions"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/server_info", process, log)
        yield f"http://127.0.0.1:{port}", chromium
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # stopped by its PID (and its children: the code server)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MLCICD_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.starts_first
def test_asset_graph_shows_candidate_evaluation_with_its_gates(webserver, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, chromium = webserver
    shots = screenshot_dir(tmp_path)
    expect.set_options(timeout=30_000)  # the first page load compiles the UI's queries: allow for a busy machine
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{base}/assets/fraud/candidate_evaluation?view=lineage")  # under the model's key prefix

            # the asset graph: the candidate_evaluation node, with a summary of its checks
            expect(page.get_by_text("candidate_evaluation", exact=True).last).to_be_visible()
            expect(page.get_by_text("Asset checks").first).to_be_visible()
            expect(page.get_by_text(f"{len(MODEL_GATES) - 1} / {len(MODEL_GATES)} Passed").first).to_be_visible()  # one gate failed
            page.screenshot(path=str(shots / "asset_graph.png"))

            # its checks, each with its status: the one that failed and the five that passed
            page.get_by_role("tab", name="Checks").or_(page.get_by_role("link", name="Checks")).first.click()
            expect(page.get_by_text(f"Checks ({len(MODEL_GATES)})")).to_be_visible()
            rows = {}
            for gate in MODEL_GATES:
                row = page.locator("span", has=page.locator(f"div[title='{gate}']")).first  # name and status
                expect(row).to_be_visible()
                rows[gate] = row.inner_text()
            page.get_by_text("meets_thresholds").first.click()
            expect(page.get_by_text("misses its thresholds").first).to_be_visible()  # the verdict, in words
            page.screenshot(path=str(shots / "candidate_evaluation_checks.png"), full_page=True)
        finally:
            browser.close()

    assert "Failed" in rows["meets_thresholds"], rows
    assert all("Succeeded" in text for gate, text in rows.items() if gate != "meets_thresholds"), rows
    for name in ("asset_graph.png", "candidate_evaluation_checks.png"):
        assert (shots / name).stat().st_size > 20_000  # a rendered page, not a blank one


@pytest.mark.starts_first
def test_a_reviewer_reads_the_evaluation_report_and_the_model_card(make_project, run_job, tmp_path):
    """Issue 18 points 5 and 6 in a browser: the report opens with the gates' verdicts and the promotion answer, has the
    threshold section, and Evidently's frame fits its content; the model card shows the owner and every model input."""
    from playwright.sync_api import expect, sync_playwright

    from .support import ALL_GATES, simulate

    chromium = chromium_or_skip()
    project = make_project({"tiers": {"full": {"evaluation_report": True}}})
    simulate(project, batches=4)
    trained = run_job("training_job")
    assert trained.success
    evaluation = trained.output_for_node("fraud__candidate_evaluation")
    assert run_job("promotion_job").success
    report = project.data_dir / "reports" / f"evaluation-{evaluation['model_name']}-v1.html"
    card = project.data_dir / "reports" / "model_cards" / f"{evaluation['model_name']}-v1.html"
    shots = screenshot_dir(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(report.as_uri())
            expect(page.locator("#promotion")).to_contain_text("Will this be promoted? Yes, every gate passed")
            for gate in ALL_GATES:
                expect(page.locator("tr.pass", has_text=gate).first).to_be_visible()
            expect(page.locator("#threshold")).to_be_visible()
            expect(page.get_by_text(f"The operating point in use is {evaluation['threshold']:g}, chosen by the rule max_f1")).to_be_visible()
            expect(page.locator("img[alt=threshold]")).to_be_visible()
            expect(page.get_by_text(f"holdout rows were resampled {evaluation['bootstrap']['rounds']} times", exact=False)).to_be_visible()
            expect(page.locator("img[alt=bootstrap]")).to_be_visible()
            frame = page.locator("iframe.fit")
            page.wait_for_function(
                "() => { const f = document.querySelector('iframe.fit'); const d = f.contentWindow.document.documentElement;"
                " return d.scrollHeight > 200 && f.clientHeight >= d.scrollHeight; }", timeout=30_000,
            )  # Evidently's frame grows to its content: nothing is cut off
            assert frame.evaluate("f => f.clientHeight") != 1600
            page.screenshot(path=str(shots / "evaluation_report.png"), full_page=True)

            page.goto(card.as_uri())
            expect(page.locator("h1")).to_contain_text(f"Model card: {evaluation['model_name']} version 1")
            expect(page.get_by_text("team:fraud-ml")).to_be_visible()
            expect(page.get_by_text("hour_of_day (derived from the time column)", exact=False)).to_be_visible()
            expect(page.get_by_text("Decision threshold:", exact=False)).to_be_visible()
            page.screenshot(path=str(shots / "model_card.png"), full_page=True)
        finally:
            browser.close()
    assert (shots / "evaluation_report.png").stat().st_size > 50_000
