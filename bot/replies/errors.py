"""Every failure a generation can meet -> one catalogue message, and a short code stored on the task.

Why one table: users must only ever see catalogue text (never `str(exc)`, which may hold the service's raw
message), each language must say the same thing, and admins must be told about the failures that are ours
(bad credentials, a request our own code built wrongly, a bug) rather than the user's.

Every failed task is refunded by its storage transition, so `refund` is True throughout; it is carried
for the handlers and tests that phrase a message around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from api_client.errors import (
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
from api_client.images import MIN_SIDE
from bot.jobs.notifier import DeliveryUncertain, RecipientGone
from bot.jobs.params import PromptTooLong

__all__ = ["BUSY_RETRYING", "CANCELLED", "KEYS", "FriendlyError", "error_code", "friendly"]

#: Shown in the status message while a rate-limited task waits to be retried automatically.
BUSY_RETRYING: Final = "status.retrying"
#: Told to the user when their task is cancelled (by /cancel or an admin).
CANCELLED: Final = "job.cancelled"


@dataclass(frozen=True)
class FriendlyError:
    """What the user is told: a catalogue key and its `{named}` values, plus how the bot should react."""

    key: str
    retryable_by_user: bool = False
    refund: bool = True
    values: dict[str, object] = field(default_factory=dict)
    alert_admins: bool = False


_RISK_KEYS: Final[dict[RiskStage, str]] = {
    RiskStage.INPUT_IMAGE: "error.risk.input_image",
    RiskStage.INPUT_TEXT: "error.risk.input_text",
    RiskStage.BLOCKLIST: "error.risk.blocklist",
    RiskStage.OUTPUT_IMAGE: "error.risk.output",
    RiskStage.OUTPUT_TEXT: "error.risk.output",
    RiskStage.COPYRIGHT_INPUT: "error.risk.copyright_input",
    RiskStage.COPYRIGHT_OUTPUT: "error.risk.copyright_output",
}

_IMAGE_KEYS: Final[dict[str, str]] = {
    "not_image": "error.image.unreadable",
    "unsupported": "error.image.unreadable",
    "too_small": "error.image.too_small",
    "too_large": "error.image.too_large",
    "bomb": "error.image.bomb",
}

#: Upstream InvalidRequest codes that describe the user's picture rather than our request.
_IMAGE_CODES: Final[dict[int, str]] = {
    50205: "error.image.too_large",
    50206: "error.image.unreadable",
    50207: "error.image.unreadable",
    50213: "error.image.too_large",
}

#: Every key `friendly()` can return (a test checks each exists in every catalogue).
KEYS: Final = frozenset(
    {
        *_RISK_KEYS.values(),
        *_IMAGE_KEYS.values(),
        "error.no_face",
        "error.busy",
        "error.service",
        "error.config",
        "error.expired",
        "error.submit_unknown",
        "error.delivery_uncertain",
        "error.prompt_too_long",
        "error.unexpected",
        BUSY_RETRYING,
        CANCELLED,
    }
)


def friendly(exc: BaseException) -> FriendlyError:
    """The message for a failure; anything unknown is an apology and an admin alert."""
    if isinstance(exc, PromptTooLong):
        return FriendlyError("error.prompt_too_long", True, values={"limit": exc.limit, "length": exc.length})
    if isinstance(exc, DeliveryUncertain):
        return FriendlyError("error.delivery_uncertain", True)
    if isinstance(exc, RecipientGone):
        return FriendlyError("error.unexpected")  # nobody to tell; kept total for callers
    if not isinstance(exc, PortraitAPIError):
        return FriendlyError("error.unexpected", True, alert_admins=True)
    return _api_error(exc)


def _api_error(exc: PortraitAPIError) -> FriendlyError:
    if isinstance(exc, RiskRejected):
        return FriendlyError(_RISK_KEYS[exc.stage], retryable_by_user=exc.new_seed_may_pass)
    if isinstance(exc, NoFaceDetected):
        return FriendlyError("error.no_face")
    if isinstance(exc, ImageRejected):
        return FriendlyError(_IMAGE_KEYS[exc.reason], values={"min_side": MIN_SIDE})
    if isinstance(exc, InvalidRequest):
        if exc.code in _IMAGE_CODES:
            return FriendlyError(_IMAGE_CODES[exc.code], values={"min_side": MIN_SIDE})
        # A request our code built (or the service no longer accepts): not the user's doing.
        return FriendlyError("error.service", True, alert_admins=True)
    if isinstance(exc, AuthError):
        return FriendlyError("error.config", alert_admins=True)
    if isinstance(exc, RateLimited):
        return FriendlyError("error.busy", True)
    if isinstance(exc, SubmitOutcomeUnknown):
        return FriendlyError("error.submit_unknown", True)
    if isinstance(exc, TaskNotFound | PollDeadlineExceeded):
        return FriendlyError("error.expired", True)
    if isinstance(exc, ServerError | TransportError):
        return FriendlyError("error.service", True)
    return FriendlyError("error.unexpected", True, alert_admins=True)


def error_code(exc: BaseException) -> str:
    """The short code stored on a failed task: the upstream code when there is one, else a stable name."""
    if isinstance(exc, PromptTooLong):
        return "prompt_too_long"
    if isinstance(exc, DeliveryUncertain):
        return "delivery_uncertain"
    if isinstance(exc, RecipientGone):
        return "blocked"
    if not isinstance(exc, PortraitAPIError):
        return "unexpected"
    if isinstance(exc, SubmitOutcomeUnknown):
        return "submit_unknown"
    if isinstance(exc, PollDeadlineExceeded):
        return "deadline"
    if isinstance(exc, TaskNotFound):
        return "not_found"
    if isinstance(exc, LocalValidationError):
        return f"local:{exc.rule}"
    if isinstance(exc, ImageRejected):
        return f"image:{exc.reason}"
    if exc.code is not None:
        return str(exc.code)
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, AuthError):
        return "auth"
    if isinstance(exc, TransportError):
        return "transport"
    if exc.http_status is not None:
        return f"http_{exc.http_status}"
    return type(exc).__name__.lower()
