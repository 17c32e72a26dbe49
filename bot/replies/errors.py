"""The one table from every failure to what it means: the code stored on the task, the catalogue message,
whether the unit is refunded, whether operators are alerted, whether the user may simply try again.

Why one table: users must only ever see catalogue text (never `str(exc)`, which may hold the service's raw
message), each language must say the same thing, and admins must hear about the failures that are ours
(bad credentials, a request our own code built wrongly, a bug) rather than the user's. The job runner
(`bot.jobs.outcomes`), the handlers (`bot.handlers.reply.say_error`, the error handler) and
`portrait-bot generate` all read it through `describe()`. A test walks every api_client exception class
and every code in `CODE_TABLE` and finds the key in both catalogues.

Rows are tried in order and the first `isinstance` match wins, so subclasses come before their bases.
Adding an error reply is one row here plus its catalogue strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
from bot.jobs.notifier import DeliveryUncertain, RecipientGone, TryLater
from bot.jobs.params import PromptTooLong
from bot.jobs.upstream import StoredImageUnusable
from storage import UNCONFIRMED, GroupCapReached, QuotaExhausted, TooManyActiveTasks

__all__ = [
    "BUSY_RETRYING",
    "CANCELLED",
    "ERROR_TABLE",
    "KEYS",
    "Described",
    "FriendlyError",
    "describe",
    "error_code",
    "friendly",
    "upload_refusal",
    "with_style_hint",
]

#: Shown in the status message while a rate-limited task waits to be retried automatically.
BUSY_RETRYING: Final = "status.retrying"
#: Told to the user when their task is cancelled (by /cancel or an admin).
CANCELLED: Final = "job.cancelled"
#: The largest file the Bot API lets a bot download (without a self-hosted server).
MAX_UPLOAD_MB: Final = 20


@dataclass(frozen=True)
class FriendlyError:
    """What the user is told: a catalogue key and its `{named}` values, plus how the bot should react.

    `values` may carry `resets_at` (epoch seconds): the chat side renders it as `{resets}` in the reader's
    language and time zone (`bot.handlers.reply.say_error`).
    """

    key: str
    retryable_by_user: bool = False
    refund: bool = True
    values: dict[str, object] = field(default_factory=dict)
    alert_admins: bool = False
    #: A second paragraph, e.g. STYLE_HINT when the task's style image may be the cause.
    hint: str | None = None


@dataclass(frozen=True)
class Described:
    """A failure as the bot sees it: the short code stored on the task and the reply."""

    code: str
    reply: FriendlyError


@dataclass(frozen=True)
class Row:
    match: type[BaseException]
    describe: Callable[[BaseException], Described]


_RISK_KEYS: Final[dict[RiskStage, str]] = {
    RiskStage.INPUT_IMAGE: "error.risk.input_image",
    RiskStage.INPUT_TEXT: "error.risk.input_text",
    RiskStage.BLOCKLIST: "error.risk.blocklist",
    RiskStage.OUTPUT_IMAGE: "error.risk.output",
    RiskStage.OUTPUT_TEXT: "error.risk.output",
    RiskStage.COPYRIGHT_INPUT: "error.risk.copyright_input",
    RiskStage.COPYRIGHT_OUTPUT: "error.risk.copyright_output",
}

#: A picture refused while generating (the unit is refunded) ...
_IMAGE_KEYS: Final[dict[str, str]] = {
    "not_image": "error.image.unreadable",
    "unsupported": "error.image.unreadable",
    "too_small": "error.image.too_small",
    "too_large": "error.image.too_large",
    "bomb": "error.image.bomb",
}
#: ... and the same reasons when the picture arrives (nothing was charged: no quota words).
_UPLOAD_KEYS: Final[dict[str, str]] = {
    "not_image": "upload.not_image",
    "unsupported": "upload.not_image",
    "too_small": "upload.too_small",
    "too_large": "upload.too_large",
    "bomb": "upload.bomb",
    "fetch_failed": "upload.fetch_failed",  # Telegram would not hand the file over (nothing wrong with it)
}

#: Upstream InvalidRequest codes that describe the user's picture rather than our request.
_IMAGE_CODES: Final[dict[int, str]] = {
    50205: "error.image.too_large",
    50206: "error.image.unreadable",
    50207: "error.image.unreadable",
    50213: "error.image.too_large",
}

_IMAGE_VALUES: Final[dict[str, object]] = {"min_side": MIN_SIDE, "max_mb": MAX_UPLOAD_MB}


def _api_code(exc: PortraitAPIError, fallback: str | None) -> str:
    """The upstream code when there is one (what operators search for), else `fallback`, else the HTTP
    status, else the class name."""
    if exc.code is not None:
        return str(exc.code)
    if fallback is not None:
        return fallback
    if exc.http_status is not None:
        return f"http_{exc.http_status}"
    return type(exc).__name__.lower()


def _fixed(
    code: str, key: str, *, retry: bool = False, alert: bool = False, refund: bool = True
) -> Callable[[BaseException], Described]:
    reply = FriendlyError(key, retryable_by_user=retry, alert_admins=alert, refund=refund)
    return lambda _exc: Described(code, reply)


def _api(
    fallback: str | None, key: str, *, retry: bool = False, alert: bool = False
) -> Callable[[BaseException], Described]:
    def describe(exc: BaseException) -> Described:
        assert isinstance(exc, PortraitAPIError)
        return Described(
            _api_code(exc, fallback), FriendlyError(key, retryable_by_user=retry, alert_admins=alert)
        )

    return describe


def _prompt_too_long(exc: BaseException) -> Described:
    assert isinstance(exc, PromptTooLong)
    values: dict[str, object] = {"limit": exc.limit, "length": exc.length}
    return Described("prompt_too_long", FriendlyError("error.prompt_too_long", True, values=values))


def _quota(exc: BaseException) -> Described:
    assert isinstance(exc, QuotaExhausted)
    reply = FriendlyError("quota.exhausted", refund=False, values={"resets_at": exc.resets_at})
    return Described("quota_exhausted", reply)


def _too_many(exc: BaseException) -> Described:
    assert isinstance(exc, TooManyActiveTasks)
    return Described(
        "too_many_active", FriendlyError("generate.busy", refund=False, values={"limit": exc.limit})
    )


def _group_cap(exc: BaseException) -> Described:
    assert isinstance(exc, GroupCapReached)
    values: dict[str, object] = {"cap": exc.cap, "resets_at": exc.resets_at}
    return Described("group_cap", FriendlyError("generate.group_cap", refund=False, values=values))


def _risk(exc: BaseException) -> Described:
    assert isinstance(exc, RiskRejected)
    reply = FriendlyError(_RISK_KEYS[exc.stage], retryable_by_user=exc.new_seed_may_pass)
    return Described(_api_code(exc, "risk"), reply)


def _local_rule(exc: BaseException) -> Described:
    """A request our own code built wrongly: not the user's doing."""
    assert isinstance(exc, LocalValidationError)
    return Described(f"local:{exc.rule}", FriendlyError("error.service", True, alert_admins=True))


def _stored_image(exc: BaseException) -> Described:
    """A saved selfie or style image can no longer be used: name it (the job drops it)."""
    assert isinstance(exc, StoredImageUnusable)
    reply = FriendlyError(f"error.image.stored_{exc.which}", values=dict(_IMAGE_VALUES))
    return Described(f"image:{exc.which}:{exc.reason}", reply)


def _image(exc: BaseException) -> Described:
    assert isinstance(exc, ImageRejected)
    return Described(
        f"image:{exc.reason}", FriendlyError(_IMAGE_KEYS[exc.reason], values=dict(_IMAGE_VALUES))
    )


def _invalid(exc: BaseException) -> Described:
    """The service refused the request: the user's picture (a few codes), else the request we built."""
    assert isinstance(exc, InvalidRequest)
    code = _api_code(exc, None)
    if exc.code in _IMAGE_CODES:
        return Described(code, FriendlyError(_IMAGE_CODES[exc.code], values=dict(_IMAGE_VALUES)))
    return Described(code, FriendlyError("error.service", True, alert_admins=True))


#: The table. First match wins: keep subclasses above their bases.
ERROR_TABLE: Final[tuple[Row, ...]] = (
    # The job's own failures and the chat seam.
    Row(PromptTooLong, _prompt_too_long),
    # The service made (and billed) the portrait and it may well have arrived: the unit is spent, and the
    # note carries "Send it again" instead (bot.jobs.resend), so nothing is lost and nothing is free.
    Row(DeliveryUncertain, _fixed(UNCONFIRMED, "error.delivery_uncertain", refund=False)),
    # Nobody to tell; the user's own doing, so a unit the service already bills stays spent.
    Row(RecipientGone, _fixed("blocked", "error.unexpected", refund=False)),
    # Telegram failing for longer than our retries is a busy service to the user, not our bug.
    Row(TryLater, _fixed("telegram_unavailable", "error.busy", retry=True)),
    # Storage refusals when a task is created (nothing was reserved, so nothing to refund).
    Row(QuotaExhausted, _quota),
    Row(TooManyActiveTasks, _too_many),
    Row(GroupCapReached, _group_cap),
    # The portrait service (api_client's tree; see CODE_TABLE for which code raises which class).
    Row(RiskRejected, _risk),
    Row(NoFaceDetected, _api("no_face", "error.no_face")),
    Row(LocalValidationError, _local_rule),
    Row(StoredImageUnusable, _stored_image),
    Row(ImageRejected, _image),
    Row(InvalidRequest, _invalid),
    Row(AuthError, _api("auth", "error.config", alert=True)),
    Row(RateLimited, _api("rate_limited", "error.busy", retry=True)),
    Row(SubmitOutcomeUnknown, _fixed("submit_unknown", "error.submit_unknown", retry=True)),
    Row(TaskNotFound, _fixed("not_found", "error.expired", retry=True)),
    Row(PollDeadlineExceeded, _fixed("deadline", "error.expired", retry=True)),
    Row(ServerError, _api(None, "error.service", retry=True)),
    Row(TransportError, _fixed("transport", "error.service", retry=True)),
    Row(PortraitAPIError, _api(None, "error.unexpected", retry=True, alert=True)),
    # Anything else is a bug of ours: an apology and an admin alert.
    Row(BaseException, _fixed("unexpected", "error.unexpected", retry=True, alert=True)),
)


def describe(exc: BaseException) -> Described:
    """The code and the reply for any failure (the last row matches everything)."""
    for row in ERROR_TABLE:
        if isinstance(exc, row.match):
            return row.describe(exc)
    raise AssertionError("unreachable: the last row matches every exception")  # pragma: no cover


def friendly(exc: BaseException) -> FriendlyError:
    """What the user is told about `exc`."""
    return describe(exc).reply


def error_code(exc: BaseException) -> str:
    """The short code stored on a failed task."""
    return describe(exc).code


#: Replies about the input pictures whose cause may be the style image as well as the selfie.
STYLE_HINT: Final = "error.hint.style"
_STYLE_MAY_CAUSE: Final = frozenset(
    {"error.risk.input_image", "error.risk.copyright_input", *_IMAGE_KEYS.values(), *_IMAGE_CODES.values()}
)


def with_style_hint(reply: FriendlyError, *, style_used: bool) -> FriendlyError:
    """`reply` plus the "your style image may be the cause: /style clear" paragraph, when it applies."""
    if style_used and reply.key in _STYLE_MAY_CAUSE:
        return replace(reply, hint=STYLE_HINT)
    return reply


def upload_refusal(reason: str) -> FriendlyError:
    """The reply when a received picture is refused for an ImageRejected `reason` (nothing charged)."""
    return FriendlyError(
        _UPLOAD_KEYS.get(reason, "upload.not_image"), refund=False, values=dict(_IMAGE_VALUES)
    )


#: Every key the table can give (a test checks each exists in every catalogue).
KEYS: Final = frozenset(
    {
        *_RISK_KEYS.values(),
        *_IMAGE_KEYS.values(),
        *_UPLOAD_KEYS.values(),
        *_IMAGE_CODES.values(),
        "error.no_face",
        "error.busy",
        "error.service",
        "error.config",
        "error.expired",
        "error.submit_unknown",
        "error.delivery_uncertain",
        "error.prompt_too_long",
        "error.unexpected",
        "quota.exhausted",
        "error.image.stored_selfie",
        "error.image.stored_style",
        STYLE_HINT,
        "generate.busy",
        "generate.group_cap",
        BUSY_RETRYING,
        CANCELLED,
    }
)
