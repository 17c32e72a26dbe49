"""Every failure maps to catalogue text in every language, never to the service's own words."""

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
    RateLimited,
    RiskRejected,
    RiskStage,
    ServerError,
    SubmitOutcomeUnknown,
    TaskNotFound,
    TransportError,
    error_from_response,
)
from bot.jobs.notifier import DeliveryUncertain, RecipientGone
from bot.jobs.params import PromptTooLong
from bot.replies import LANGUAGES, catalogue, t
from bot.replies.errors import KEYS, FriendlyError, error_code, friendly

RAW = "Pre Img Risk Not Pass: internal detail 0xDEADBEEF"


@pytest.mark.parametrize(
    ("exc", "key", "code"),
    [
        (RiskRejected(RAW, stage=RiskStage.INPUT_IMAGE, code=50411), "error.risk.input_image", "50411"),
        (RiskRejected(RAW, stage=RiskStage.INPUT_TEXT, code=50412), "error.risk.input_text", "50412"),
        (RiskRejected(RAW, stage=RiskStage.BLOCKLIST, code=50413), "error.risk.blocklist", "50413"),
        (RiskRejected(RAW, stage=RiskStage.OUTPUT_IMAGE, code=50511), "error.risk.output", "50511"),
        (RiskRejected(RAW, stage=RiskStage.OUTPUT_TEXT, code=50512), "error.risk.output", "50512"),
        (RiskRejected(RAW, stage=RiskStage.COPYRIGHT_INPUT, code=50518), "error.risk.copyright_input",
         "50518"),
        (RiskRejected(RAW, stage=RiskStage.COPYRIGHT_OUTPUT, code=50519), "error.risk.copyright_output",
         "50519"),
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
    assert result.refund is True
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
