"""A local emulator of Volcengine's CV async portrait API (CVSync2AsyncSubmitTask / CVSync2AsyncGetResult).

Build it in-process with ``create_app(EmulatorConfig(...))`` and talk to it through
``httpx.ASGITransport(app=app)``, or serve it: ``serve_in_thread(config)`` in tests, or
``python -m api_client.emulator --host 127.0.0.1 --port 8080 --access-key AK --secret-key SK``.

Requests must be signed (Volcengine V4; checked by ``verify.py``, an implementation independent of
``api_client.signing``). Tasks go in_queue -> generating -> done on the injected clock, and done tasks
return a real stylised JPEG of the face image, watermarked per ``logo_info``.

Deterministic triggers (details in ``config.py``):

* prompt containing ``risky`` -> 50412, containing ``blocklisted`` -> 50413, at submit;
* an input image whose centre pixel is magenta (255, 0, 255) -> 50411 at submit;
* ``seed`` 50511, 50512, 50519, 60102 or 50500 -> the task ends done with that error on GetResult.

Faults (``faults.py``; ``EmulatorConfig`` fields, CLI flags, or ``app.state.emulator.faults`` at runtime):
50429/50430/50500 rates, added latency, dropped connections, tasks stuck in_queue, and scripted one-offs
via ``faults.push(Fault.X, action)``. ``app.state.emulator`` also counts requests per action
(``received``, ``submits_received``), logs every answer (``calls``) and holds the ``tasks``.
"""

from api_client.emulator.app import Call, EmulatorState, create_app
from api_client.emulator.config import EmulatorConfig
from api_client.emulator.faults import Fault, FaultState
from api_client.emulator.server import RunningEmulator, serve_in_thread
from api_client.emulator.verify import VerifyResult, verify_request

__all__ = [
    "Call",
    "EmulatorConfig",
    "EmulatorState",
    "Fault",
    "FaultState",
    "RunningEmulator",
    "VerifyResult",
    "create_app",
    "serve_in_thread",
    "verify_request",
]
