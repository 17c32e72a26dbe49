"""`make demo` works offline: the scripted chat runs, the transcript prints, real portraits are written."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bot.replies import t
from demo.scripted_chat import main


@pytest.mark.slow
def test_demo_prints_the_transcript_and_writes_real_portraits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo-output"
    assert main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Alice: /start" in printed and t("error.risk.input_text", "en") in printed
    lines = printed.splitlines()
    written = [Path(line.removeprefix("wrote ")) for line in lines if line.startswith("wrote ")]
    assert len(written) == 2 and sorted(out.iterdir()) == sorted(written)
    for path in written:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (1000, 1000)
