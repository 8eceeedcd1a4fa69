"""Each schema stays backward and forward compatible with its previous committed version.

The baseline is HEAD when schemas/ has uncommitted changes, otherwise the parent of the last
commit that touched schemas/. A breaking change therefore fails CI in the commit that makes it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from auditline.catalogue import Catalogue
from auditline.compat import backward, forward
from auditline.contracts import expand

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def baseline_revision() -> str | None:
    if not _git("rev-parse", "--git-dir"):
        return None
    if _git("status", "--porcelain", "--", "schemas"):
        return "HEAD" if _git("rev-parse", "--verify", "-q", "HEAD") else None
    last = _git("log", "-1", "--format=%H", "--", "schemas")
    return _git("rev-parse", "--verify", "-q", f"{last}^") or None if last else None


def schemas_at(revision: str) -> dict[str, dict[str, object]]:
    raw = {}
    for path in _git("ls-tree", "--name-only", revision, "schemas/").splitlines():
        if path.endswith(".avsc"):
            raw[Path(path).name.removesuffix(".avsc")] = json.loads(
                _git("show", f"{revision}:{path}")
            )
    return raw


def test_schemas_are_compatible_with_their_previous_committed_version() -> None:
    revision = baseline_revision()
    if revision is None:
        pytest.skip("schemas/ has no earlier committed version yet (first commit of the contracts)")
    previous = schemas_at(revision)
    checked, broken = 0, []
    for entry in Catalogue():
        name = entry.schema.name
        if name not in previous:
            continue  # a new schema has no earlier version to stay compatible with
        old = expand(name, previous)
        new = entry.schema.definition
        broken += [f"{name} backward: {p}" for p in backward(new, old)]
        broken += [f"{name} forward: {p}" for p in forward(new, old)]
        checked += 1
    assert not broken, f"breaking schema changes against {revision}:\n" + "\n".join(broken)
    assert checked > 0
