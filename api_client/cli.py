"""`portrait-bot generate`: one selfie in, one portrait out, from a terminal (no Telegram involved).

    VOLC_ACCESSKEY=... VOLC_SECRETKEY=... python -m api_client.cli generate --face me.jpg --out anime.jpg

The bot's CLI calls `run_generate(argv)`. Errors end in one friendly line on stderr and a non-zero exit code
(no traceback): 2 for a problem with the arguments or the input images, 3 when the service refused the
content, 1 for anything else, 130 when interrupted. Progress goes to stderr, the saved path to stdout.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

from .client import DEFAULT_ENDPOINT, PortraitClient
from .clock import Clock, SystemClock
from .errors import (
    AuthError,
    ImageRejected,
    InvalidRequest,
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
from .images import prepare_image
from .loop import run
from .models import DEFAULT_PROMPT, SubmitRequest, TaskStatus, Watermark

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "friendly", "main", "run_generate"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

SWITCHES = {"face": "face_switch", "facestyle": "facestyle_switch", "style": "style_switch"}
WATERMARK_LANGUAGES = {"zh": 0, "en": 1}

_IMAGE_REASONS = {
    "not_image": "is not a picture that can be read",
    "too_small": "is too small (each side must be at least 128 px)",
    "too_large": "is too large to send",
    "bomb": "is far too large in pixels to open safely",
    "unsupported": "is in an unsupported format (use JPEG, PNG, WebP or HEIC)",
}
_RISK_STAGES = {
    RiskStage.INPUT_IMAGE: "The photo did not pass the service's content check.",
    RiskStage.INPUT_TEXT: "The prompt did not pass the service's content check.",
    RiskStage.BLOCKLIST: "The prompt contains a blocked word or name.",
    RiskStage.OUTPUT_IMAGE: "The generated picture did not pass the content check; try another --seed.",
    RiskStage.OUTPUT_TEXT: "The generated result did not pass the content check; try another --seed.",
    RiskStage.COPYRIGHT_INPUT: "The input looks like copyrighted material and was refused.",
    RiskStage.COPYRIGHT_OUTPUT: "The result failed the copyright check; try another --seed.",
}


class _UsageError(Exception):
    """A problem with the command line or the local files: exit 2 with this message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portrait-bot generate",
        description="Turn a selfie into an anime portrait with Volcengine's portrait API. Credentials "
        "come from VOLC_ACCESSKEY / VOLC_SECRETKEY, the endpoint from --endpoint or VOLC_ENDPOINT.",
    )
    parser.add_argument("--face", required=True, type=Path, help="the selfie (JPEG, PNG, BMP, WebP, HEIC)")
    parser.add_argument("--style", type=Path, help="an optional anime/stylised style image")
    parser.add_argument("--out", required=True, type=Path, help="where to write the result (JPEG)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="positive prompt (default: %(default)r)")
    parser.add_argument("--width", type=int, default=1000, help="output width, 600..1500")
    parser.add_argument("--height", type=int, default=1000, help="output height, 600..1500")
    parser.add_argument("--seed", type=int, default=-1, help="-1 for random")
    parser.add_argument("--hyper", action="store_true", help="faster 'hyper' mode (switches must be off)")
    parser.add_argument(
        "--switches",
        help="comma list of face,facestyle,style or 'none' (default: face; none with --hyper)",
    )
    parser.add_argument("--watermark", choices=sorted(WATERMARK_LANGUAGES), help="add an 'AI generated' mark")
    parser.add_argument("--endpoint", help=f"API base URL (default: $VOLC_ENDPOINT or {DEFAULT_ENDPOINT})")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds to wait for the result")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each HTTP call to stderr")
    return parser


def _switches(raw: str | None, hyper: bool) -> dict[str, bool]:
    if raw is None:
        raw = "none" if hyper else "face"
    names = {part.strip() for part in raw.split(",") if part.strip()} - {"none"}
    unknown = names - set(SWITCHES)
    if unknown:
        listed = ", ".join(sorted(unknown))
        raise _UsageError(f"unknown --switches value(s): {listed} (use face,facestyle,style or none)")
    return {field: name in names for name, field in SWITCHES.items()}


def _read(path: Path, role: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _UsageError(f"cannot read the {role} image {str(path)!r}: {exc.strerror or exc}") from None


async def _prepare(raw: bytes, role: str) -> bytes:
    try:
        return (await prepare_image(raw)).data
    except ImageRejected as exc:
        raise _UsageError(f"The {role} image {_IMAGE_REASONS.get(exc.reason, 'was rejected')}.") from None


def friendly(error: PortraitAPIError) -> tuple[str, int]:
    """One English sentence and the exit code for an api_client error."""
    if isinstance(error, RiskRejected):
        return _RISK_STAGES.get(error.stage, "The content check refused the task."), EXIT_REJECTED
    if isinstance(error, NoFaceDetected):
        return "No face was found in the face photo; try a clear, front-facing selfie.", EXIT_REJECTED
    if isinstance(error, LocalValidationError):
        return f"Invalid options: {error.message}", EXIT_USAGE
    if isinstance(error, ImageRejected):
        return f"The image {_IMAGE_REASONS.get(error.reason, 'was rejected')}.", EXIT_USAGE
    if isinstance(error, InvalidRequest):
        return f"The service refused the request as invalid ({error.message}).", EXIT_ERROR
    messages: list[tuple[type[PortraitAPIError], str]] = [
        (AuthError, "Authentication failed: check VOLC_ACCESSKEY / VOLC_SECRETKEY and the system clock."),
        (RateLimited, "The service is busy (rate limit reached); try again in a minute."),
        (ServerError, "The service had an internal error; try again later."),
        (TaskNotFound, "The task was not found upstream (unknown or expired)."),
        (PollDeadlineExceeded, "Gave up waiting for the result; the task may still finish upstream."),
        (SubmitOutcomeUnknown, "The connection broke after the request was sent, so it may have been "
                               "accepted; it was not resent to avoid paying twice."),
        (TransportError, "Could not reach the service; check the network and --endpoint."),
    ]
    for cls, message in messages:
        if isinstance(error, cls):
            return message, EXIT_ERROR
    return f"The request failed: {error.message}", EXIT_ERROR


async def _generate(
    args: argparse.Namespace, *, transport: httpx.AsyncBaseTransport | None, clock: Clock, err: TextIO
) -> Path:
    options: dict[str, Any] = _switches(args.switches, args.hyper)
    face_raw = _read(args.face, "face")
    style_raw = _read(args.style, "style") if args.style else None
    face = await _prepare(face_raw, "face")
    style = await _prepare(style_raw, "style") if style_raw is not None else None
    request = SubmitRequest.from_images(
        face, style, positive_prompt=args.prompt, width=args.width, height=args.height, seed=args.seed,
        hyper_switch=args.hyper, **options,
    )
    request.validate()  # refuse bad options before opening a connection
    watermark = Watermark(language=WATERMARK_LANGUAGES[args.watermark]) if args.watermark else None
    endpoint = args.endpoint or os.environ.get("VOLC_ENDPOINT") or DEFAULT_ENDPOINT
    started = clock.monotonic()

    async def progress(status: TaskStatus) -> None:
        print(f"[{clock.monotonic() - started:6.1f}s] {status.value.replace('_', ' ')}", file=err, flush=True)

    async with PortraitClient(endpoint=endpoint, transport=transport, clock=clock) as client:
        result = await client.generate(
            request, watermark=watermark, on_progress=progress, deadline=args.deadline
        )
    if not result.images:
        raise ServerError("the result holds no image data")
    try:
        args.out.write_bytes(result.images[0])
    except OSError as exc:
        raise _UsageError(f"cannot write {str(args.out)!r}: {exc.strerror or exc}") from None
    return Path(args.out)


def run_generate(
    argv: Sequence[str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run `generate` with `argv` (the arguments after the word "generate"); return the exit code.

    `transport` and `clock` exist for tests (an in-process emulator and a fake clock).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the problem
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        saved = run(_generate(args, transport=transport, clock=clock or SystemClock(), err=err))
    except _UsageError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    except PortraitAPIError as exc:
        message, code = friendly(exc)
        print(f"error: {message}", file=err)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return EXIT_INTERRUPTED
    print(saved, file=out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m api_client.cli generate ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "generate":
        print("usage: python -m api_client.cli generate --face FACE --out OUT [options]  (-h for help)",
              file=sys.stderr)
        return EXIT_USAGE
    return run_generate(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
