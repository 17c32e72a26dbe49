"""The error table: every failure maps to catalogue text in every language, never to the service's own
words, with its stored code, refund and alert decisions."""

from __future__ import annotations

import pytest

from api_client.errors import (
    CODE_TABLE,
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
    error_from_response,
)
from bot.jobs.notifier import DeliveryUncertain, RecipientGone, TryLater
from bot.jobs.params import PromptTooLong
from bot.jobs.upstream import StoredImageUnusable
from bot.replies import LANGUAGES, catalogue, t
from bot.replies.errors import (
    KEYS,
    STYLE_HINT,
    FriendlyError,
    describe,
    error_code,
    friendly,
    with_style_hint,
)
from storage import GroupCapReached, QuotaExhausted, TooManyActiveTasks

RAW = "Pre Img Risk Not Pass: internal detail 0xDEADBEEF"


@pytest.mark.parametrize(
    ("exc", "key", "code"),
    [
        (RiskRejected(RAW, stage=RiskStage.INPUT_IMAGE, code=50411), "error.risk.input_image", "50411"),
        (RiskRejected(RAW, stage=RiskStage.INPUT_TEXT, code=50412), "error.risk.input_text", "50412"),
        (RiskRejected(RAW, stage=RiskStage.BLOCKLIST, code=50413), "error.risk.blocklist", "50413"),
        (RiskRejected(RAW, stage=RiskStage.OUTPUT_IMAGE, code=50511), "error.risk.output", "50511"),
        (RiskRejected(RAW, stage=RiskStage.OUTPUT_TEXT, code=50512), "error.risk.output", "50512"),
        (
            RiskRejected(RAW, stage=RiskStage.COPYRIGHT_INPUT, code=50518),
            "error.risk.copyright_input",
            "50518",
        ),
        (
            RiskRejected(RAW, stage=RiskStage.COPYRIGHT_OUTPUT, code=50519),
            "error.risk.copyright_output",
            "50519",
        ),
        (NoFaceDetected(RAW, code=60102), "error.no_face", "60102"),
        (ImageRejected(RAW, reason="too_small"), "error.image.too_small", "image:too_small"),
        (ImageRejected(RAW, reason="too_large"), "error.image.too_large", "image:too_large"),
        (ImageRejected(RAW, reason="bomb"), "error.image.bomb", "image:bomb"),
        (ImageRejected(RAW, reason="not_image"), "error.image.unreadable", "image:not_image"),
        (ImageRejected(RAW, reason="unsupported"), "error.image.unreadable", "image:unsupported"),
        (InvalidRequest(RAW, code=50205), "error.image.too_large", "50205"),
        (InvalidRequest(RAW, code=50207), "error.image.unreadable", "50207"),
        (InvalidRequest(RAW, code=50215), "error.service", "50215"),
        (LocalValidationError(RAW, rule="output_size"), "error.service", "local:output_size"),
        (AuthError(RAW, code=100010), "error.config", "100010"),
        (AuthError(RAW), "error.config", "auth"),
        (RateLimited(RAW, code=50429), "error.busy", "50429"),
        (RateLimited(RAW, http_status=429), "error.busy", "rate_limited"),
        (ServerError(RAW, code=50500), "error.service", "50500"),
        (TransportError(RAW), "error.service", "transport"),
        (SubmitOutcomeUnknown(RAW), "error.submit_unknown", "submit_unknown"),
        (TaskNotFound(RAW), "error.expired", "not_found"),
        (PollDeadlineExceeded(RAW), "error.expired", "deadline"),
        (PromptTooLong(400, 300), "error.prompt_too_long", "prompt_too_long"),
        (DeliveryUncertain(RAW), "error.delivery_uncertain", "delivery_uncertain"),
        (RecipientGone(5), "error.unexpected", "blocked"),
        (KeyError(RAW), "error.unexpected", "unexpected"),
    ],
)
def test_each_failure_has_its_message_and_code(exc: BaseException, key: str, code: str) -> None:
    result = friendly(exc)
    assert (result.key, error_code(exc)) == (key, code)
    # Spent: the user blocked us (if started), or the portrait was made and its photo may have arrived
    # (the note offers "Send it again" instead of a refund).
    assert result.refund is not isinstance(exc, RecipientGone | DeliveryUncertain)
    for lang in LANGUAGES:
        text = t(result.key, lang, **result.values)
        assert "0xDEADBEEF" not in text and "Risk Not Pass" not in text
        assert text != catalogue(lang)["error.unexpected"] or key == "error.unexpected"


@pytest.mark.parametrize("code", sorted(CODE_TABLE))
def test_every_upstream_code_has_a_specific_or_deliberate_message(code: int) -> None:
    exc = error_from_response(400, {"code": code, "message": RAW, "request_id": "r"})
    result = friendly(exc)
    assert result.key in KEYS and result.key != "error.unexpected"
    assert error_code(exc) == str(code)


def test_only_our_own_faults_alert_the_admins() -> None:
    alerting = {
        type(e).__name__
        for e in (AuthError(), InvalidRequest(code=50200), LocalValidationError(rule="seed"), KeyError())
        if friendly(e).alert_admins
    }
    assert alerting == {"AuthError", "InvalidRequest", "LocalValidationError", "KeyError"}
    user_side = (RiskRejected(stage="input_image"), NoFaceDetected(), RateLimited(), TaskNotFound())
    assert not any(friendly(e).alert_admins for e in user_side)


def test_output_rejections_invite_a_retry_input_rejections_do_not() -> None:
    assert friendly(RiskRejected(stage="output_image")).retryable_by_user
    assert friendly(RiskRejected(stage="copyright_output")).retryable_by_user
    assert not friendly(RiskRejected(stage="input_image")).retryable_by_user


@pytest.mark.parametrize("key", sorted(KEYS))
def test_every_key_exists_in_every_catalogue(key: str) -> None:
    for lang in LANGUAGES:
        assert key in catalogue(lang), (lang, key)


def test_values_fill_every_placeholder() -> None:
    error = friendly(PromptTooLong(400, 300))
    assert t(error.key, "en", **error.values) == catalogue("en")[error.key].format(length=400, limit=300)
    assert isinstance(error, FriendlyError)


def _every_subclass(base: type[BaseException]) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for cls in base.__subclasses__():
        found += [cls, *_every_subclass(cls)]
    return found


def _instances(cls: type[BaseException]) -> list[BaseException]:
    """Every way `cls` can be raised: per reason, per risk stage, or plain."""
    if issubclass(cls, StoredImageUnusable):
        return [cls(which, "f", ImageRejected(reason=r)) for which in ("selfie", "style")  # type: ignore[call-arg]
                for r in ImageRejected.REASONS]  # fmt: skip
    if issubclass(cls, ImageRejected):
        return [cls(reason=reason) for reason in ImageRejected.REASONS]  # type: ignore[call-arg]
    if issubclass(cls, RiskRejected):
        return [cls(stage=stage) for stage in RiskStage]  # type: ignore[call-arg]
    if issubclass(cls, LocalValidationError):
        return [cls(rule="seed")]  # type: ignore[call-arg]
    return [cls()]


@pytest.mark.parametrize(
    "cls", sorted(_every_subclass(PortraitAPIError), key=lambda c: c.__name__), ids=lambda c: c.__name__
)
def test_every_api_client_exception_class_has_a_reply_in_both_catalogues(cls: type[BaseException]) -> None:
    for exc in _instances(cls):
        described = describe(exc)
        assert described.reply.key in KEYS, exc
        assert described.code and described.code != "unexpected", exc
        for lang in LANGUAGES:
            assert described.reply.key in catalogue(lang), (lang, described.reply.key)


@pytest.mark.parametrize(
    ("exc", "key", "values"),
    [
        (QuotaExhausted(1, 1_800_000_000.0), "quota.exhausted", {"resets_at": 1_800_000_000.0}),
        (TooManyActiveTasks(1, 1, 1), "generate.busy", {"limit": 1}),
        (
            GroupCapReached(-5, 10, 1_800_000_000.0),
            "generate.group_cap",
            {"cap": 10, "resets_at": 1_800_000_000.0},
        ),
        (TryLater("later"), "error.busy", {}),
    ],
)
def test_storage_refusals_and_the_chat_seam_are_in_the_table(
    exc: BaseException, key: str, values: dict
) -> None:
    reply = friendly(exc)
    assert (reply.key, reply.values) == (key, values)
    assert not reply.alert_admins


@pytest.mark.parametrize("which", ["selfie", "style"])
def test_an_unusable_stored_image_is_named(which: str) -> None:
    exc = StoredImageUnusable(which, "file-1", ImageRejected(reason="not_image"))  # type: ignore[arg-type]
    described = describe(exc)
    assert described.reply.key == f"error.image.stored_{which}"
    assert described.code == f"image:{which}:not_image"


def test_the_style_hint_joins_only_the_picture_refusals_of_tasks_that_sent_a_style_image() -> None:
    picture = friendly(RiskRejected(stage="input_image"))
    text = friendly(RiskRejected(stage="input_text"))
    assert with_style_hint(picture, style_used=True).hint == STYLE_HINT
    assert with_style_hint(picture, style_used=False).hint is None
    assert with_style_hint(text, style_used=True).hint is None
    assert with_style_hint(friendly(InvalidRequest(code=50207)), style_used=True).hint == STYLE_HINT
