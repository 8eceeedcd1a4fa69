"""The auditor's console in a real browser (headless Chromium), over a store a real sink fills
from the real broker: the demo platform's events and violations go through Kafka, the sink owns
the embedded store, the console reads through it, and a violation emitted while the page is open
arrives live. Screenshots go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from auditline.demo import DemoKeys, emit_and_verify, judge_and_alert
from auditline.events import PolicyViolation
from auditline.producer import AuditProducer
from tests.kafka_helpers import cli_env, create_topics, producer_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("AUDITLINE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_S = 60


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditline.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _stored(env: dict[str, str]) -> int:
    done = _cli(env, "sql", "SELECT count() AS n FROM audit_log", "--format", "json")
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["n"])


def _until(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)
    return found


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            "Chromium is missing: `make test` installs Debian's chromium and chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _forward_demo(bootstrap: str, prefix: str, keys: DemoKeys) -> tuple[int, Any]:
    """The demo platform's events and violations, as the SDK wrote them, into the real topics."""
    out = io.StringIO()
    ok, broker = emit_and_verify(out, keys)
    assert ok, out.getvalue()
    decisions = judge_and_alert(broker, keys, out)
    topics = {t: prefix + t.removeprefix("auditline") for t in broker.topics}
    create_topics(bootstrap, sorted(topics.values()), partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    total = 0
    for topic, messages in broker.topics.items():
        for message in messages:
            producer.produce(topics[topic], message.value, message.key)
            total += 1
    assert producer.flush(30) == 0
    return total, decisions


def test_an_auditor_follows_a_model_to_its_violations_live_alerts_and_evidence(
    kafka_bootstrap: str, tmp_path: Path, unique: str, browser: Any, say: Callable[[str], None]
) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix, engine = f"t{unique}.auditline", tmp_path / "engine"
    keys = DemoKeys.make(tmp_path / "keys")
    env = cli_env(kafka_bootstrap, prefix, f"chdb://{engine}", "audit") | {
        "AUDITLINE_KEYRING_PATH": str(keys.keyring), "AUDITLINE_CONSOLE__POLL_MS": "200",
    }  # fmt: skip
    total, decisions = _forward_demo(kafka_bootstrap, prefix, keys)
    sink = subprocess.Popen(
        [sys.executable, "-m", "auditline.cli", "sink"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    console = None
    try:
        _until(lambda: (engine / "endpoint.json").exists() or sink.poll() is not None, "the sink")
        assert sink.poll() is None, "the sink stopped"
        _until(lambda: _stored(env) >= total, f"{total} events stored")
        console = subprocess.Popen(
            [sys.executable, "-m", "auditline.cli", "console", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert console.stdout is not None
        ready = console.stdout.readline()
        assert "console: ready on http://" in ready and "via its owner" in ready, ready
        url = ready.split("ready on ", 1)[1].split(" ", 1)[0]

        # a model's graph, the violating hop marked
        browser.get(f"{url}#/graph?node=model:churn:3&direction=both")
        script = "const s = window.auditlineConsole; return s && s.cy ? s.cy.nodes().length : 0"
        _until(lambda: browser.execute_script(script), "the graph")
        nodes = browser.execute_script("return window.auditlineConsole.cy.nodes().map(n => n.id())")
        assert {"model:churn:3", "run:run-42", "ds:customers", "ds:customers-us"} <= set(nodes)
        marked = browser.execute_script(
            "return window.auditlineConsole.cy.edges('.violation').map(e => e.id())"
        )
        assert "ds:customers|moved_to|ds:customers-us" in marked, marked
        label = browser.execute_script(
            "return window.auditlineConsole.cy.getElementById("
            "'ds:customers|moved_to|ds:customers-us').data('label')"
        )
        assert "RES-PIN" in label and "EU-3RD" in label, label
        browser.save_screenshot(str(ARTIFACTS / "graph.png"))

        # a node's events, then its evidence bundle
        browser.execute_script(
            "window.auditlineConsole.cy.getElementById('model:churn:3').emit('tap')"
        )
        link = _until(
            lambda: browser.find_elements(By.CSS_SELECTOR, "[data-testid=open-evidence]"),
            "the node's detail",
        )
        detail = browser.find_element(By.ID, "detail").text
        assert "TrainingRun" in detail and "RES-PIN" in detail, detail
        browser.save_screenshot(str(ARTIFACTS / "node.png"))
        link[0].click()
        frame = browser.find_element(By.CSS_SELECTOR, "[data-testid=evidence]")
        _until(lambda: "RES-PIN" in (frame.get_attribute("srcdoc") or ""), "the evidence bundle")
        browser.switch_to.frame(frame)
        bundle = browser.find_element(By.TAG_NAME, "body").text
        browser.switch_to.default_content()
        assert "churn:3" in bundle and "EU-US" in bundle, bundle[:500]
        browser.save_screenshot(str(ARTIFACTS / "evidence.png"))
        pdf_link = browser.find_element(By.CSS_SELECTOR, "[data-testid=evidence-pdf]")
        browser.get(pdf_link.get_attribute("href"))  # the page the link prints, printed here
        pdf = base64.b64decode(browser.print_page())
        assert pdf.startswith(b"%PDF") and len(pdf) > 2000
        (ARTIFACTS / "evidence-churn-3.pdf").write_bytes(pdf)

        # a violation raised while the page is open arrives live
        browser.get(f"{url}#/alerts")
        rows = "return document.querySelectorAll('#alert-rows tr').length"
        before = _until(lambda: browser.execute_script(rows), "the stored alerts")
        assert before == len(decisions), before
        _until(lambda: browser.find_element(By.ID, "live").text == "live", "the live stream")
        fresh = decisions[0]
        body = {
            "violation_id": f"live-{unique}", "decision": "deny", "severity": "critical",
            "rule_id": "LIVE-TEST", "rule_version": "1", "policy_version": "test",
            "subject_event_id": fresh.subject_event_id, "message": "raised while the page is open",
            "facts": {"hop": "movement", "via": "ds:customers"},
            "evidence_event_ids": list(fresh.evidence),
        }  # fmt: skip
        settings = producer_settings(kafka_bootstrap, prefix, tmp_path / "spool")
        with AuditProducer(settings) as producer:
            producer.emit(PolicyViolation, **body)
            assert producer.flush(30)
        first = "return document.querySelector('#alert-rows tr')?.dataset.alert || ''"
        _until(lambda: browser.execute_script(first) == f"live-{unique}", "the live alert")
        assert browser.execute_script(rows) == before + 1
        row = browser.find_element(By.CSS_SELECTOR, "#alert-rows tr").text
        assert "LIVE-TEST" in row and "critical" in row, row
        browser.save_screenshot(str(ARTIFACTS / "alerts.png"))

        # transfers and streams
        browser.get(f"{url}#/transfers")
        matrix = _until(
            lambda: browser.find_elements(By.CSS_SELECTOR, "#transfer-matrix td.flagged"),
            "the transfer matrix",
        )
        assert "1 (1" in matrix[0].text, matrix[0].text
        browser.get(f"{url}#/drift")  # the model's drift, data-quality and model-quality alerts
        _until(
            lambda: browser.find_elements(By.CSS_SELECTOR, "#drift-charts [data-kind=performance]"),
            "the model-quality alerts",
        )
        assert browser.find_elements(By.CSS_SELECTOR, "#drift-charts [data-kind=quality]")
        browser.save_screenshot(str(ARTIFACTS / "drift.png"))
        browser.get(f"{url}#/streams")
        _until(lambda: browser.find_elements(By.CSS_SELECTOR, "#stream-rows tr"), "the streams")
        assert "intact" in browser.find_element(By.ID, "streams-summary").text
        browser.save_screenshot(str(ARTIFACTS / "streams.png"))
        logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not logs, logs
        say(f"console screenshots in {ARTIFACTS}")
    finally:
        for process in (console, sink):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        output = [p.communicate(timeout=60)[0] for p in (console, sink) if p is not None]
    assert sink.returncode == 0, output[-1]
    assert console.returncode == 0, output[0]
