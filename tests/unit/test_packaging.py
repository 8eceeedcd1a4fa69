"""The wheel holds only the auditline namespace (with the .avsc files); the bare SDK is light.

The slow tests build the wheel once from a clean copy of the working tree, then install it the way
a user does: a fresh venv per extra, ``pip install 'WHEEL[extra]'``, and that extra's commands run
from an empty directory with a HOME of their own. An editable install hides a package missing from
the wheel; these do not.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("faust", "clickhouse_connect", "chdb", "onnxruntime", "aiokafka", "mode")
# source folder -> where the wheel installs it ([tool.setuptools] package-dir in pyproject.toml)
INSTALLED_AS = {
    "auditline": "auditline",
    "streams": "auditline/streams",
    "sinks": "auditline/sinks",
    "schemas": "auditline/schemas",
}
NOT_COPIED = {".git", ".venv", "build", "dist", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
NEEDS_EXTRA = "needs: pip install"


def test_bare_import_pulls_in_no_heavy_extra() -> None:
    code = (
        "import sys, auditline, auditline.events, auditline.codec, auditline.integrity.chain;"
        "import auditline.producer, auditline.integrity.verify;"
        "auditline.make_codec(auditline.load_settings());"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _ignore(folder: str, names: list[str]) -> set[str]:
    at_root = Path(folder) == ROOT
    return {
        n
        for n in names
        if n == "__pycache__" or (at_root and (n in NOT_COPIED or n.endswith(".egg-info")))
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree without build state (a stale build/ or egg-info would leak into a wheel)."""
    copy = tmp_path_factory.mktemp("source") / "auditline"
    shutil.copytree(ROOT, copy, ignore=_ignore)
    return copy


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("auditline-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_with(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Path]]:
    """``venv_with(extra)``: a fresh venv (no system site packages) with only ``WHEEL[extra]``."""
    made: dict[str, Path] = {}

    def make(extra: str) -> Path:
        if extra not in made:
            venv = tmp_path_factory.mktemp(f"venv-{extra or 'core'}")
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            spec = f"{wheel}[{extra}]" if extra else str(wheel)
            done = subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", spec],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"pip install {spec!r}:\n{done.stderr}"
            made[extra] = venv
        return made[extra]

    yield make
    for venv in made.values():  # the store venv alone is about 1 GB
        shutil.rmtree(venv, ignore_errors=True)


class User:
    """Runs commands of one venv as a user would: from an empty directory, with a HOME of its own
    and none of this session's AUDITLINE_* / PYTHON* / XDG_* settings."""

    def __init__(self, venv: Path, tmp_path: Path) -> None:
        self.bin = venv / "bin"
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        (tmp_path / "home").mkdir()
        dropped = ("AUDITLINE_", "PYTHON", "XDG_", "VIRTUAL_ENV", "PIP_")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        self.env["HOME"] = str(tmp_path / "home")
        self.env["PATH"] = f"{self.bin}{os.pathsep}{os.environ.get('PATH', os.defpath)}"

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env={**self.env, **env},
            timeout=120,
            check=False,
        )
        if argv[1:] != ("--help",):  # the overview names the extras a command would need
            assert NEEDS_EXTRA not in done.stdout + done.stderr, (argv, done.stderr)
        return done


def _wheel_path(source: Path, file: Path) -> str:
    relative = file.relative_to(source)
    return "/".join([INSTALLED_AS[relative.parts[0]], *relative.parts[1:]])


@pytest.mark.slow
def test_wheel_contains_only_the_auditline_namespace(source: Path, wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("auditline-")}
    assert tops == {"auditline"}  # no streams, sinks, schemas, tests or bench of their own
    shipped = {Path(n).name for n in names if n.startswith("auditline/schemas/")}
    assert shipped == {p.name for p in (source / "schemas").glob("*.avsc")}
    assert "auditline/py.typed" in names
    assert "auditline/policy/default.yaml" in names
    assert "auditline/streams/__init__.py" in names
    assert "auditline/sinks/__init__.py" in names
    assert "auditline/drift/__init__.py" in names
    sql = {Path(n).name for n in names if n.startswith("auditline/sinks/migrations/")}
    assert sql - {"__init__.py"} == {
        p.name for p in (source / "sinks" / "migrations").glob("*.sql")
    }
    console = source / "sinks" / "console"
    static = {n.removeprefix("auditline/sinks/console/") for n in names if "/console/static/" in n}
    assert static == {
        str(p.relative_to(console)) for p in console.rglob("static/**/*") if p.is_file()
    }
    assert "static/vendor/cytoscape.min.js" in static  # the console's page needs no CDN
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.slow
def test_every_package_folder_and_module_is_in_the_wheel(source: Path, wheel: Path) -> None:
    """Each folder with an ``__init__.py`` (and every module) under auditline/, streams/, sinks/
    is in the wheel, and the wheel has no module the tree does not (stale build output)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    roots = [source / "auditline", source / "streams", source / "sinks"]
    packages = {_wheel_path(source, init.parent) for r in roots for init in r.rglob("__init__.py")}
    assert "auditline/drift" in packages and "auditline/sinks/migrations" in packages
    assert sorted(p for p in packages if f"{p}/__init__.py" not in names) == []
    modules = {_wheel_path(source, py) for r in roots for py in r.rglob("*.py")}
    assert sorted(modules - names) == []
    assert sorted(n for n in names if n.endswith(".py") and n not in modules) == []


@pytest.mark.slow
def test_plain_install_without_extras_can_emit_and_decode(
    venv_with: Callable[[str], Path], tmp_path: Path
) -> None:
    """`pip install auditline` alone: core deps only, schemas found inside the installed wheel."""
    code = (
        "import importlib.util as u, auditline.demo as d, io;"
        "heavy = ('faust', 'clickhouse_connect', 'onnxruntime');"
        "assert all(u.find_spec(m) is None for m in heavy);"
        "out = io.StringIO(); rc = d.run_demo(out); print(rc, out.getvalue().splitlines()[-1])"
    )
    done = User(venv_with(""), tmp_path).run("python", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0 round trip, hash chains and signatures: intact"


# ---- each extra's commands, from its own venv ------------------------------------------------

START = datetime(2026, 11, 2, tzinfo=UTC)
PARTY = {"entity_id": "x", "name": "X", "role": "processor", "country": "US"}
EVENTS = [  # as in tests/unit/policy/test_check_cli.py: a personal dataset copied from DE to US
    {"kind": "AssetDeclared", "event_time": "2026-03-02T09:00:00Z", "asset_id": "ds",
     "asset_kind": "dataset", "name": "ds", "owner": "o", "classification": "personal",
     "location": {"country": "DE"}, "origin_jurisdictions": ["EEA"], "residency": ["DE"]},
    {"kind": "DataMovement", "event_time": "2026-03-02T10:00:00Z",
     "event_id": "6f1d3c1e-0000-4000-8000-000000000001", "asset_id": "ds", "operation": "copy",
     "source": {"country": "DE"}, "destination": {"country": "US"}, "records": 5, "bytes": 5,
     "purpose": "analytics", "exporter": {**PARTY, "country": "DE"}, "importer": PARTY},
]  # fmt: skip


def drift_inputs(folder: Path) -> tuple[Path, Path]:
    """A training run (age ~ N(40, 10)) and four hourly batches, the last two shifted to 60."""
    from auditline.profiles import numeric_profile

    rng = random.Random(5)

    def ages(n: int, mean: float) -> list[float]:
        return [rng.gauss(mean, 10) for _ in range(n)]

    run = {
        "kind": "TrainingRun", "event_time": START.isoformat(), "run_id": "run-7",
        "status": "completed", "model_name": "churn", "model_version": "3", "inputs": ["ds"],
        "code_version": "c1", "location": {"country": "DE"}, "purpose": "analytics",
        "feature_profiles": [numeric_profile("age", ages(500, 40)).model_dump(mode="json")],
    }  # fmt: skip

    def batch(hour: int) -> dict[str, object]:
        return {
            "kind": "PredictionBatch", "event_time": (START + timedelta(hours=hour)).isoformat(),
            "batch_id": f"b{hour}", "model_name": "churn", "model_version": "3",
            "location": {"country": "DE"}, "count": 200, "sample_rate": 1.0,
            "numeric_features": [{"name": "age", "values": ages(200, 40 if hour < 2 else 60)}],
            "scores": [rng.random() for _ in range(200)], "latency_ms": 1.0,
        }  # fmt: skip

    reference, predictions = folder / "run.json", folder / "predictions.jsonl"
    reference.write_text(json.dumps(run))
    predictions.write_text("".join(json.dumps(batch(hour)) + "\n" for hour in range(4)))
    return reference, predictions


def use_core(user: User) -> None:
    done = user.run("auditline", "--help")
    assert done.returncode == 0 and "check" in done.stdout and "drift" in done.stdout, done.stderr
    events = user.cwd / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    done = user.run("auditline", "check", events.name)
    assert done.returncode == 1, done.stderr  # findings
    decisions = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(d["rule_id"], d["decision"]) for d in decisions] == [
        ("RES-PIN", "deny"),
        ("EU-US", "deny"),
    ]


def use_drift(user: User) -> None:
    done = user.run("auditline", "drift", "--help")
    assert done.returncode == 0 and "--reference" in done.stdout, done.stderr
    reference, predictions = drift_inputs(user.cwd)
    done = user.run("auditline", "drift", "--reference", reference.name, predictions.name)
    assert done.returncode == 1, done.stderr  # the shift is still open at the end
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    age = [
        (a["state"], a["window_start"][:13])
        for a in alerts
        if a["feature"] == "age" and a["kind"] == "DriftAlert"
    ]
    assert age and set(age) == {("opened", "2026-11-02T02")}, alerts


def use_store(user: User) -> None:
    (user.cwd / "data").mkdir()
    dsn = {"AUDITLINE_CLICKHOUSE__DSN": f"chdb://{user.cwd / 'data' / 'store'}"}
    done = user.run("auditline", "migrate", **dsn)
    assert done.returncode == 0 and done.stdout.startswith("applied: 0001_"), done.stderr
    done = user.run("auditline", "sql", "SELECT 41 + 1 AS answer", "--format", "json", **dsn)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"answer": 42}]


def use_streams(user: User) -> None:
    done = user.run("auditline", "worker", "--help")
    assert done.returncode == 0 and "faust-streaming worker" in done.stdout, done.stderr
    done = user.run("python", "-c", "import auditline.streams.app as a; print(a.__name__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "auditline.streams.app"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "use"),
    [("", use_core), ("drift", use_drift), ("store", use_store), ("streams", use_streams)],
    ids=["core", "drift", "store", "streams"],
)
def test_each_extra_works_from_the_wheel(
    extra: str,
    use: Callable[[User], None],
    venv_with: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    use(User(venv_with(extra), tmp_path))
