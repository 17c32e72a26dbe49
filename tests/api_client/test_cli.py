"""`generate` from the command line: a real image written, friendly one-line failures, exit codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from api_client import (
    AuthError,
    ImageRejected,
    LocalValidationError,
    NoFaceDetected,
    PollDeadlineExceeded,
    PortraitAPIError,
    RateLimited,
    RiskRejected,
    RiskStage,
    ServerError,
    SubmitOutcomeUnknown,
    TaskNotFound,
    TransportError,
)
from api_client.cli import EXIT_ERROR, EXIT_REJECTED, EXIT_USAGE, friendly, main, run_generate
from api_client.clock import FakeClock
from api_client.emulator import EmulatorConfig, create_app, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
AK, SK = "AK-cli", "SK-cli-secret"


def write_jpeg(path: Path, size: tuple[int, int] = (400, 500), color: Any = (220, 180, 150)) -> Path:
    Image.new("RGB", size, color).save(path, format="JPEG")
    return path


class Run:
    """run_generate against an in-process emulator on a fake clock, capturing stdout and stderr."""

    def __init__(self, tmp_path: Path, **config: Any) -> None:
        self.clock = FakeClock()
        self.app = create_app(
            EmulatorConfig(
                access_key=AK, secret_key=SK, clock=self.clock.now, sleep=self.clock.sleep, **config
            )
        )
        self.face = write_jpeg(tmp_path / "selfie.jpg")
        self.out_path = tmp_path / "result.jpg"
        self.out = io.StringIO()
        self.err = io.StringIO()

    def __call__(self, *argv: str, face: bool = True, out: bool = True) -> int:
        args = ["--face", str(self.face)] if face else []
        args += ["--out", str(self.out_path)] if out else []
        return run_generate(
            [*args, "--endpoint", "http://emulator.test", *argv],
            transport=httpx.ASGITransport(app=self.app),
            clock=self.clock,
            out=self.out,
            err=self.err,
        )

    @property
    def error_line(self) -> str:
        lines = self.err.getvalue().strip().splitlines()
        assert lines, "expected a message on stderr"
        assert "Traceback" not in self.err.getvalue()
        return lines[-1]


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", AK)
    monkeypatch.setenv("VOLC_SECRETKEY", SK)
    monkeypatch.delenv("VOLC_ENDPOINT", raising=False)


def test_generate_writes_the_portrait_and_reports_progress(tmp_path: Path) -> None:
    run = Run(tmp_path, queue_seconds=2.0, generate_seconds=5.0)
    assert run("--width", "640", "--height", "960", "--seed", "42") == 0
    image = Image.open(run.out_path)
    assert image.format == "JPEG" and image.size == (640, 960)
    assert run.out.getvalue().strip() == str(run.out_path)
    progress = run.err.getvalue().splitlines()
    assert [line.split("] ")[1] for line in progress] == ["in queue", "generating", "done"]
    assert len(run.app.state.emulator.tasks) == 1


def test_style_switches_and_watermark(tmp_path: Path) -> None:
    run = Run(tmp_path)
    style = write_jpeg(tmp_path / "style.png", (300, 300), (30, 30, 200))
    code = run(
        "--style", str(style), "--switches", "face,style", "--watermark", "en", "--prompt", "1girl,smile"
    )
    assert code == 0, run.err.getvalue()
    assert Image.open(run.out_path).size == (1000, 1000)


def test_hyper_defaults_to_no_switches(tmp_path: Path) -> None:
    run = Run(tmp_path)
    assert run("--hyper") == 0, run.err.getvalue()


@pytest.mark.parametrize(
    ("argv", "code", "phrase"),
    [
        (("--prompt", "something risky"), EXIT_REJECTED, "prompt did not pass"),
        (("--prompt", "blocklisted name"), EXIT_REJECTED, "blocked word"),
        (("--seed", "50511"), EXIT_REJECTED, "try another --seed"),
        (("--seed", "60102"), EXIT_REJECTED, "No face was found"),
        (("--width", "5000"), EXIT_USAGE, "output_size"),
        (("--hyper", "--switches", "face"), EXIT_USAGE, "hyper_switch"),
        (("--switches", "face,sparkles"), EXIT_USAGE, "sparkles"),
        (("--switches", "style"), EXIT_USAGE, "style image"),
    ],
    ids=["risky", "blocklisted", "output-risk", "no-face", "width", "hyper", "unknown-switch", "no-style"],
)
def test_failures_are_one_friendly_line(
    tmp_path: Path, argv: tuple[str, ...], code: int, phrase: str
) -> None:
    run = Run(tmp_path)
    assert run(*argv) == code
    assert phrase in run.error_line and run.error_line.startswith("error: ")
    assert not run.out_path.exists()


def test_magenta_photo_is_refused_by_the_input_audit(tmp_path: Path) -> None:
    run = Run(tmp_path)
    write_jpeg(run.face, color=(255, 0, 255))
    assert run() == EXIT_REJECTED
    assert "photo did not pass" in run.error_line


def test_unreadable_inputs(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.face.write_bytes(b"this is a text file, not a selfie")
    assert run() == EXIT_USAGE
    assert run.error_line == "error: The face image is not a picture that can be read."

    missing = Run(tmp_path)
    missing.face = tmp_path / "nope.jpg"
    assert missing() == EXIT_USAGE
    assert "cannot read the face image" in missing.error_line

    tiny = Run(tmp_path)
    write_jpeg(tiny.face, (64, 64))
    assert tiny() == EXIT_USAGE
    assert "too small" in tiny.error_line


def test_wrong_secret_is_an_auth_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_SECRETKEY", "not-the-secret")
    run = Run(tmp_path)
    assert run() == EXIT_ERROR
    assert "Authentication failed" in run.error_line
    assert "not-the-secret" not in run.err.getvalue()


def test_missing_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOLC_SECRETKEY")
    run = Run(tmp_path)
    assert run() == EXIT_ERROR
    assert "VOLC_SECRETKEY" in run.error_line


def test_argument_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = Run(tmp_path)
    assert run(out=False) == EXIT_USAGE
    assert "--out" in capsys.readouterr().err
    assert main([]) == EXIT_USAGE
    assert main(["paint"]) == EXIT_USAGE


ERRORS: list[PortraitAPIError] = [
    RiskRejected(stage=RiskStage.INPUT_IMAGE),
    RiskRejected(stage=RiskStage.COPYRIGHT_OUTPUT),
    NoFaceDetected(),
    LocalValidationError("seed: seed must be an integer >= -1", rule="seed"),
    ImageRejected(reason="bomb"),
    AuthError(),
    RateLimited(),
    ServerError(),
    TaskNotFound(),
    PollDeadlineExceeded(),
    SubmitOutcomeUnknown(),
    TransportError(connect_phase=True),
    PortraitAPIError("odd"),
]


@pytest.mark.parametrize("error", ERRORS, ids=[type(e).__name__ for e in ERRORS])
def test_every_error_class_has_a_short_sentence(error: PortraitAPIError) -> None:
    message, code = friendly(error)
    assert code != 0
    assert message and "\n" not in message and len(message) < 140
    assert type(error).__name__ not in message


def test_distinct_messages_per_class() -> None:
    messages = [friendly(error)[0] for error in ERRORS]
    assert len(set(messages)) == len(messages)


def test_python_m_cli_against_a_served_emulator(tmp_path: Path) -> None:
    """The real entry point, a real socket, the real clock: the only test here that waits (~1.5 s)."""
    face = write_jpeg(tmp_path / "me.jpg")
    out = tmp_path / "anime.jpg"
    config = EmulatorConfig(access_key=AK, secret_key=SK, queue_seconds=0.0, generate_seconds=0.0)
    with serve_in_thread(config) as served:
        env = {**os.environ, "VOLC_ACCESSKEY": AK, "VOLC_SECRETKEY": SK, "VOLC_ENDPOINT": served.base_url}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        completed = subprocess.run(
            [sys.executable, "-m", "api_client.cli", "generate", "--face", str(face), "--out", str(out)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(out)
    assert completed.stderr.strip().splitlines()[-1].endswith("done")
    assert Image.open(out).size == (1000, 1000)
