"""Async client of Volcengine's portrait-keeps-identity API: HTTP and upstream rules only (no Telegram, SQL).

    async with PortraitClient() as client:              # VOLC_ACCESSKEY / VOLC_SECRETKEY from the environment
        face = await prepare_image(raw_selfie)
        result = await client.generate(SubmitRequest.from_images(face.data, face_switch=True))
"""

import logging

from .client import DEFAULT_ENDPOINT, REGION, SERVICE, PortraitClient
from .clock import Clock, FakeClock, SystemClock
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
from .images import PreparedImage, prepare_image, sniff_format
from .learning import PollingLearner, TimingStore
from .models import DEFAULT_PROMPT, REQ_KEY, SubmitRequest, TaskResult, TaskStatus, Watermark
from .polling import LearnedSchedule, PollOutcome, PollSchedule, ProgressCallback
from .timing import bucket_of

# A library stays silent unless the application configures logging (no "last resort" output on stderr).
logging.getLogger("api_client").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_PROMPT",
    "REGION",
    "REQ_KEY",
    "SERVICE",
    "AuthError",
    "Clock",
    "FakeClock",
    "ImageRejected",
    "InvalidRequest",
    "LearnedSchedule",
    "LocalValidationError",
    "NoFaceDetected",
    "PollDeadlineExceeded",
    "PollOutcome",
    "PollSchedule",
    "PollingLearner",
    "PortraitAPIError",
    "PortraitClient",
    "PreparedImage",
    "ProgressCallback",
    "RateLimited",
    "RiskRejected",
    "RiskStage",
    "ServerError",
    "SubmitOutcomeUnknown",
    "SubmitRequest",
    "SystemClock",
    "TaskNotFound",
    "TaskResult",
    "TaskStatus",
    "TimingStore",
    "TransportError",
    "Watermark",
    "bucket_of",
    "prepare_image",
    "sniff_format",
]
