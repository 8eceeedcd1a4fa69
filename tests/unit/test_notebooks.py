"""The notebooks run on the demo platform's data (executed with nbclient, so they never rot) and
are committed without outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == ["auditor_walkthrough.ipynb", "drift_review.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip it"


@pytest.mark.slow
def test_they_run_on_the_demo_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    for name in [n for n in os.environ if n.startswith("AUDITLINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    demo = subprocess.run(
        [sys.executable, "-m", "auditline.cli", "demo"], capture_output=True, text=True,
        timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr
    monkeypatch.setenv(
        "AUDITLINE_CLICKHOUSE__DSN", f"chdb://{tmp_path / 'data' / 'auditline' / 'clickhouse'}"
    )
    texts = {}
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(
            notebook, timeout=300, kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()  # fmt: skip
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
        assert not [o for o in outputs if o.output_type == "error"], path.name
        plots = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(plots) >= 2, f"{path.name}: {len(plots)} plots"
        texts[path.stem] = "\n".join(
            str(o.get("data", {}).get("text/markdown", "")) for o in outputs
        )
    walk, drift = texts["auditor_walkthrough"], texts["drift_review"]
    assert "RES-PIN" in walk and "IN-PAY" in walk and "| ds:marketing-eu" in walk
    assert "tenure_months" in drift and "opened" in drift
