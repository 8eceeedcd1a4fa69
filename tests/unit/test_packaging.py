"""The wheel holds only the auditline namespace (with the .avsc files); the bare SDK is light."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("faust", "clickhouse_connect", "chdb", "onnxruntime", "aiokafka", "mode")


def test_bare_import_pulls_in_no_heavy_extra() -> None:
    code = (
        "import sys, auditline, auditline.events, auditline.codec, auditline.chain;"
        "import auditline.producer, auditline.verify;"
        "auditline.make_codec(auditline.load_settings());"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_wheel_contains_only_the_auditline_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("auditline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("auditline-")}
    assert tops == {"auditline"}
    shipped = {Path(n).name for n in names if n.startswith("auditline/schemas/")}
    assert shipped == {p.name for p in (ROOT / "schemas").glob("*.avsc")}
    assert "auditline/streams/__init__.py" in names
    assert "auditline/policy/default.yaml" in names
    assert "auditline/sinks/migrations/0001_audit_log.sql" in names
    assert "auditline/sinks/__init__.py" in names


@pytest.mark.slow
def test_plain_install_without_extras_can_emit_and_decode(tmp_path: Path) -> None:
    """`pip install auditline` alone: core deps only, schemas found inside the installed wheel."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    (wheel,) = wheels.glob("auditline-*.whl")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True
    )
    code = (
        "import importlib.util as u, auditline.demo as d, io;"
        "heavy = ('faust', 'clickhouse_connect', 'onnxruntime');"
        "assert all(u.find_spec(m) is None for m in heavy);"
        "out = io.StringIO(); rc = d.run_demo(out); print(rc, out.getvalue().splitlines()[-1])"
    )
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.strip() == "0 round trip, hash chains and signatures: intact"
