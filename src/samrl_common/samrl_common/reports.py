"""Figures that benchmark and diagnostic commands write: one JSON file, its folder made if missing."""
from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str | Path | None, payload, indent: int = 1) -> None:
    """Write `payload` as JSON to `path` (nothing when path is None or empty) and say so."""
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=indent) + '\n')
    print(f'wrote {path}')
