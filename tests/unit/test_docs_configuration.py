from __future__ import annotations

from pathlib import Path

from bridge.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        f.alias for f in Settings.model_fields.values() if f.alias and f"`{f.alias}`" not in text
    ]
    assert missing == []
