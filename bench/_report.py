"""The end every bench shares: its figures as a table, then the one JSON line of them."""

from __future__ import annotations

import json


def report(bench: str, figures: dict[str, float], **context: int) -> None:
    width = max(map(len, figures)) + 2
    for key, value in figures.items():
        print(f"{key:<{width}} {value:>14,.3f}")
    rounded = {key: round(value, 3) for key, value in figures.items()}
    print(json.dumps({"bench": bench, **context, **rounded}))
