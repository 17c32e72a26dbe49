"""The client benchmark still runs end to end, tiny (it spawns an upstream and one process per client
variant, so it rots when the client, the transports or the SDK wiring change). No timing is asserted."""

from __future__ import annotations

import pytest

from benchmarks import bench_client


@pytest.mark.slow
def test_bench_client_runs_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    tiny = ["--tasks", "3", "--concurrency", "3", "--warmup", "1", "--poll", "0.05", "--seconds", "0.05",
            "--variants", "httpx/asyncio"]
    code = bench_client.main(["--quick", *tiny])

    out = capsys.readouterr().out
    assert code == 0, out  # no task failed in any variant
    for row in (
        "SDK volcengine 1.0.229, 3 threads",
        "(default)",
        "ours: httpx + asyncio",
        "CPU ms per finished task",
        "signatures per CPU-second",
        "GetResult calls per CPU-second, stub server",
    ):
        assert row in out, row


def test_variants_start_with_the_sdk_then_our_default() -> None:
    variants = bench_client.variants(100)
    assert variants[0].client == "sdk" and variants[1].label.endswith("(default)")
    assert {(v.transport, v.loop) for v in variants[2:]} >= {("httpx", "asyncio")}
    assert len(set(variants)) == len(variants)
