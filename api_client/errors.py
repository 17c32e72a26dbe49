"""The one exception tree of api_client, the code table, and the mapping from an HTTP answer to an error.

Volcengine answers 400 both for bad parameters and for risk rejections, so errors are chosen by the
business/gateway code first and by the HTTP status only when the code is unknown. Errors carry plain data
(never the httpx request, whose headers hold the signature) so they can be logged, pickled and shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

import httpx

__all__ = [
    "CODE_TABLE",
    "AuthError",
    "CodeRule",
    "ImageRejected",
    "InvalidRequest",
    "LocalValidationError",
    "NoFaceDetected",
    "PollDeadlineExceeded",
    "PortraitAPIError",
    "RateLimited",
    "RiskRejected",
    "RiskStage",
    "ServerError",
    "SubmitOutcomeUnknown",
    "TaskNotFound",
    "TransportError",
    "error_from_response",
    "error_from_transport",
]

_MAX_MESSAGE = 200


def _rebuild(cls: type[PortraitAPIError], state: dict[str, Any]) -> PortraitAPIError:
    """Unpickle without calling __init__, so subclasses with required fields round-trip."""
    obj = cls.__new__(cls)
    Exception.__init__(obj, state.get("message", ""))
    obj.__dict__.update(state)
    return obj


class PortraitAPIError(Exception):
    """Root of every error api_client raises.

    `retryable` says whether sending the same request again later may work.
    """

    default_message: ClassVar[str] = "request failed"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        code: int | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.message: str = (message or self.default_message)[:_MAX_MESSAGE]
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.retryable: bool = self.default_retryable if retryable is None else retryable
        super().__init__(self.message)

    def __str__(self) -> str:
        details = []
        if self.code is not None:
            details.append(f"code={self.code}")
        if self.http_status is not None:
            details.append(f"http={self.http_status}")
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{type(self).__name__}: {self.message}{suffix}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, code={self.code!r}, "
            f"http_status={self.http_status!r}, request_id={self.request_id!r}, retryable={self.retryable!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__)))


class InvalidRequest(PortraitAPIError):
    """The service refused the parameters; sending the same request again cannot help."""

    default_message = "invalid request"


class NoFaceDetected(InvalidRequest):
    """60102: the face image has no detectable face."""

    default_message = "no face detected in the face image"


class LocalValidationError(InvalidRequest):
    """Refused before sending: `rule` names the api.md rule that the request breaks."""

    default_message = "request breaks an API rule"

    def __init__(self, message: str | None = None, *, rule: str, **kwargs: Any) -> None:
        self.rule = rule
        super().__init__(message or f"request breaks rule {rule!r}", **kwargs)


class ImageRejected(InvalidRequest):
    """A local image check failed; `reason` is not_image | too_small | too_large | bomb | unsupported."""

    default_message = "image rejected"
    REASONS: ClassVar[frozenset[str]] = frozenset(
        {"not_image", "too_small", "too_large", "bomb", "unsupported"}
    )

    def __init__(self, message: str | None = None, *, reason: str, **kwargs: Any) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown ImageRejected reason {reason!r}")
        self.reason = reason
        super().__init__(message or f"image rejected: {reason}", **kwargs)


class RiskStage(StrEnum):
    """Which content audit refused the task."""

    INPUT_IMAGE = "input_image"
    INPUT_TEXT = "input_text"
    BLOCKLIST = "blocklist"
    OUTPUT_IMAGE = "output_image"
    OUTPUT_TEXT = "output_text"
    COPYRIGHT_INPUT = "copyright_input"
    COPYRIGHT_OUTPUT = "copyright_output"


_OUTPUT_STAGES = frozenset({RiskStage.OUTPUT_IMAGE, RiskStage.OUTPUT_TEXT, RiskStage.COPYRIGHT_OUTPUT})


class RiskRejected(PortraitAPIError):
    """A content audit refused the input or the output. Never resent automatically."""

    default_message = "content audit rejected the task"

    def __init__(self, message: str | None = None, *, stage: RiskStage | str, **kwargs: Any) -> None:
        self.stage = RiskStage(stage)
        super().__init__(message, **kwargs)

    @property
    def new_seed_may_pass(self) -> bool:
        """An output audit judged one random result; another seed may pass (api.md: 50511, 50519)."""
        return self.stage in _OUTPUT_STAGES


class AuthError(PortraitAPIError):
    """Credentials missing, wrong, or not allowed to call this API; also a bad signature or clock skew."""

    default_message = "authentication failed"


class RateLimited(PortraitAPIError):
    """QPS or concurrency quota exceeded; back off and retry. `retry_after` is the server's hint, if any."""

    default_message = "rate limited"
    default_retryable = True

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(PortraitAPIError):
    """The service failed internally; the same request may work later."""

    default_message = "server error"
    default_retryable = True

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class TaskNotFound(PortraitAPIError):
    """The task read not_found after the grace period (unknown id, or expired after 12 h)."""

    default_message = "task not found"


class PollDeadlineExceeded(PortraitAPIError):
    """wait() gave up at its deadline; the task may still finish upstream."""

    default_message = "gave up waiting for the task"


class TransportError(PortraitAPIError):
    """No usable HTTP answer. `connect_phase` means the request surely never reached the service."""

    default_message = "transport error"

    def __init__(self, message: str | None = None, *, connect_phase: bool = False, **kwargs: Any) -> None:
        self.connect_phase = connect_phase
        kwargs.setdefault("retryable", connect_phase)
        super().__init__(message, **kwargs)


class SubmitOutcomeUnknown(TransportError):
    """A submit that may have reached the service (read timeout, 5xx): never resent, it may bill twice."""

    default_message = "submit outcome unknown"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs["connect_phase"] = False
        kwargs["retryable"] = False
        super().__init__(message, **kwargs)


class CodeRule(NamedTuple):
    """One CODE_TABLE row: the class to raise, whether a resend may work, and extra constructor arguments."""

    cls: type[PortraitAPIError]
    retryable: bool
    kwargs: Mapping[str, Any]


def _rule(cls: type[PortraitAPIError], **kwargs: Any) -> CodeRule:
    return CodeRule(cls, cls.default_retryable, kwargs)


def _build_code_table() -> dict[int, CodeRule]:
    table: dict[int, CodeRule] = {}
    for code in (50200, 50201, 50204, 50205, 50206, 50207, 50213, 50215, 50402):
        table[code] = _rule(InvalidRequest)
    table[60102] = _rule(NoFaceDetected)
    stages = {
        50411: RiskStage.INPUT_IMAGE,
        50412: RiskStage.INPUT_TEXT,
        50413: RiskStage.BLOCKLIST,
        50511: RiskStage.OUTPUT_IMAGE,
        50512: RiskStage.OUTPUT_TEXT,
        50518: RiskStage.COPYRIGHT_INPUT,
        50519: RiskStage.COPYRIGHT_OUTPUT,
    }
    for code, stage in stages.items():
        table[code] = _rule(RiskRejected, stage=stage)
    table[50400] = _rule(AuthError)
    for code in range(100002, 100017):  # gateway 100002..100016, including 100013 AccessDenied
        table[code] = _rule(AuthError)
    for code in (50429, 50430, 100018):
        table[code] = _rule(RateLimited)
    for code in (50500, 50501, 50520, 50521, 50522):
        table[code] = _rule(ServerError)
    return table


#: Every code api.md names -> how it is raised. Codes not here fall back to the HTTP status.
CODE_TABLE: Mapping[int, CodeRule] = _build_code_table()


def _by_status(http_status: int) -> type[PortraitAPIError]:
    if http_status == 429:
        return RateLimited
    if http_status >= 500:
        return ServerError
    if http_status in (401, 403):
        return AuthError
    return InvalidRequest


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_body(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if body is None:
        return None
    if isinstance(body, Mapping):
        return body
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, Mapping) else None


def _fields(parsed: Mapping[str, Any]) -> tuple[int | None, str | None, str | None]:
    """(code, message, request_id) from either body shape."""
    meta = parsed.get("ResponseMetadata")
    if isinstance(meta, Mapping):
        error = meta.get("Error")
        error = error if isinstance(error, Mapping) else {}
        name, text = _as_str(error.get("Code")), _as_str(error.get("Message"))
        message = f"{name}: {text}" if name and text else (text or name)
        return _as_int(error.get("CodeN")), message, _as_str(meta.get("RequestId"))
    return _as_int(parsed.get("code")), _as_str(parsed.get("message")), _as_str(parsed.get("request_id"))


def error_from_response(
    http_status: int,
    body: bytes | str | Mapping[str, Any] | None,
    *,
    retry_after: float | None = None,
) -> PortraitAPIError:
    """The error for a failed answer: business `{code, message, request_id}` or gateway `ResponseMetadata`.

    The code decides the class; an unknown or missing code (or a non-JSON body, e.g. a proxy's HTML page)
    falls back to the HTTP status. `retry_after` (seconds, already parsed) is kept on RateLimited/ServerError.
    """
    parsed = _parse_body(body)
    code, message, request_id = _fields(parsed) if parsed is not None else (None, None, None)
    rule = CODE_TABLE.get(code) if code is not None else None
    cls = rule.cls if rule is not None else _by_status(http_status)
    kwargs: dict[str, Any] = dict(rule.kwargs) if rule is not None else {}
    if rule is not None:
        kwargs["retryable"] = rule.retryable
    if issubclass(cls, (RateLimited, ServerError)):
        kwargs["retry_after"] = retry_after
    if message is None:
        message = f"HTTP {http_status}" + ("" if parsed is not None else " with a non-JSON body")
    return cls(message, code=code, http_status=http_status, request_id=request_id, **kwargs)


#: httpx errors raised before any byte of the request could reach the service.
_CONNECT_PHASE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def error_from_transport(exc: BaseException) -> TransportError:
    """Wrap an httpx transport failure, recording whether the request surely never left (connect phase).

    Only the exception's type name is kept: httpx messages and `exc.request` may carry URLs and headers.
    """
    connect_phase = isinstance(exc, _CONNECT_PHASE)
    phase = "connect" if connect_phase else "send/read"
    return TransportError(f"{type(exc).__name__} during {phase}", connect_phase=connect_phase)
