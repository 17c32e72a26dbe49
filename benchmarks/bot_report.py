"""What the bot benchmark measured, and how it prints: per scenario against the baseline of the same run.

Kept apart from `bench_bot` (which runs the processes) so the figures and their arithmetic can be read and
tested without starting anything.
"""

from __future__ import annotations

import math
import os
import pstats
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.procs import ROOT, Snapshot

if TYPE_CHECKING:
    from benchmarks.floor_worker import Floor


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank), so p50/p95/max are values that were actually measured."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Window:
    """What the bot spent over measured windows (summed): CPU, SQLite work, Bot API calls, downloads."""

    cpu: float = 0.0
    commits: int = 0
    hops: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    downloads: int = 0
    image_cpu: float = 0.0
    loop_cpu: float = 0.0
    sqlite_cpu: float = 0.0
    fsynced: int = 0

    def add(self, spent: Snapshot, calls: Counter[str], downloads: int) -> None:
        self.cpu += spent.cpu
        self.image_cpu += spent.image_cpu
        self.loop_cpu += spent.loop_cpu
        self.sqlite_cpu += spent.sqlite_cpu
        self.fsynced += spent.fsynced
        self.commits += spent.commits
        self.hops += spent.sqlite_hops
        self.calls.update(calls)
        self.downloads += downloads


@dataclass
class Scenario:
    """One scenario of one bot process: per-user intervals (seconds) and the two windows' totals."""

    label: str
    generations: int = 0
    seconds: float = 0.0  # summed over batches: first /anime queued -> last photo answered
    update_to_submit: list[float] = field(default_factory=list)
    queued_to_handed: list[float] = field(default_factory=list)
    done_to_photo: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)
    upload: Window = field(default_factory=Window)  # selfie sent -> acknowledged, bot quiet
    generate: Window = field(default_factory=Window)  # /anime sent -> photo, tasks finished, bot quiet
    problems: list[str] = field(default_factory=list)

    def per_generation(self, value: float) -> float:
        return value / self.generations if self.generations else float("nan")

    @property
    def cpu(self) -> float:
        """The bot's CPU seconds per generation, both windows."""
        return self.per_generation(self.upload.cpu + self.generate.cpu)

    @property
    def image_cpu(self) -> float:
        """CPU seconds per generation the bot spent decoding and preparing images, timed in the bot."""
        return self.per_generation(self.upload.image_cpu + self.generate.image_cpu)

    @property
    def calls(self) -> Counter[str]:
        return self.upload.calls + self.generate.calls


@dataclass
class Baseline:
    """Raw client round trips and raw sendPhoto uploads, each from its own process, no bot in between; for
    1 user at a time also the floor, the generation's whole I/O done by a minimal program."""

    label: str
    submit: list[float]
    round_trip: list[float]
    send_photo: list[float]
    cpu_per_generation: float  # the client process's CPU per task plus the uploader's per photo
    failures: int
    floor: Floor | None = None  # the same I/O as a generation, no framework (1 user at a time only)

    @property
    def floor_cpu(self) -> float:
        return self.floor.cpu_per_generation if self.floor is not None else float("nan")


@dataclass
class ImageCost:
    """CPU seconds per call of the bot's two decodes of the selfie, timed in the driver."""

    check: float  # check_image, when the selfie arrives
    prepare: float  # prepare_image, at generation

    @property
    def total(self) -> float:
        return self.check + self.prepare


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1000:,.1f}"


def _ratio(value: float, reference: float) -> str:
    return "-" if not reference or math.isnan(value + reference) else f"{value / reference:.2f}x"


def _p50_p95(values: Sequence[float]) -> str:
    return f"{_ms(pct(values, 50))} / {_ms(pct(values, 95))}"


Cell = Callable[[Scenario, Baseline], str]

#: (row name, Scenario attribute, Baseline attribute, what the baseline is)
INTERVALS = (
    ("update -> submit", "update_to_submit", "submit", "raw submit"),
    ("done -> sendPhoto", "done_to_photo", "send_photo", "raw sendPhoto"),
    ("end to end", "end_to_end", "round_trip", "raw submit+wait"),
)


def _interval(name: str) -> Cell:
    return lambda s, b: _p50_p95(getattr(s, name))


def _baseline_interval(name: str) -> Cell:
    return lambda s, b: _p50_p95(getattr(b, name))


def _interval_ratio(ours: str, theirs: str) -> Cell:
    return lambda s, b: _ratio(pct(getattr(s, ours), 50), pct(getattr(b, theirs), 50))


def _method(method: str) -> Cell:
    return lambda s, b: f"{s.per_generation(s.calls[method]):.2f}"


def _both_windows(count: Callable[[Window], int]) -> Callable[[Scenario, Baseline], str]:
    """Per generation, both windows and then each: "13.0 (3.0 + 10.0)"."""

    def cell(s: Scenario, b: Baseline) -> str:
        selfie, anime = s.per_generation(count(s.upload)), s.per_generation(count(s.generate))
        return f"{selfie + anime:.1f} ({selfie:.1f} + {anime:.1f})"

    return cell


def report_rows(scenarios: Sequence[tuple[Scenario, Baseline]], images: ImageCost) -> list[tuple[str, ...]]:
    """The table: one column per scenario (with the baseline it is compared with)."""
    rows: list[tuple[str, ...]] = [("", *(s.label for s, _ in scenarios))]

    def row(name: str, cell: Cell) -> None:
        rows.append((name, *(cell(s, b) for s, b in scenarios)))

    row("generations", lambda s, b: f"{s.generations}")
    row("generations/s", lambda s, b: f"{s.generations / s.seconds:.1f}" if s.seconds else "-")
    row("bot CPU ms/generation", lambda s, b: _ms(s.cpu))
    row("  selfie window", lambda s, b: _ms(s.per_generation(s.upload.cpu)))
    row("  /anime window", lambda s, b: _ms(s.per_generation(s.generate.cpu)))
    row("  image preparation (driver)", lambda s, b: _ms(images.total))
    row("  bot's own: CPU - image prep", lambda s, b: _ms(s.cpu - images.total))
    row("  baseline: raw generate+send", lambda s, b: _ms(b.cpu_per_generation))
    row("  own / baseline", lambda s, b: _ratio(s.cpu - images.total, b.cpu_per_generation))
    row("  baseline: floor (same exchanges + commits, no framework)", lambda s, b: _ms(b.floor_cpu))
    row("  own / floor", lambda s, b: _ratio(own_cpu(s, images), b.floor_cpu))
    row("  image work timed in the bot", lambda s, b: _ms(s.image_cpu))
    row("  bot's own: CPU - that", lambda s, b: _ms(s.cpu - s.image_cpu))
    row("  own (timed in bot) / baseline", lambda s, b: _ratio(s.cpu - s.image_cpu, b.cpu_per_generation))
    row(
        "  of which event-loop thread",
        lambda s, b: _ms(s.per_generation(s.upload.loop_cpu + s.generate.loop_cpu)),
    )
    row(
        "  of which SQLite threads",
        lambda s, b: _ms(s.per_generation(s.upload.sqlite_cpu + s.generate.sqlite_cpu)),
    )
    for name, ours, theirs, what in INTERVALS:
        row(f"{name} p50 / p95 ms", _interval(ours))
        row(f"  baseline {what}", _baseline_interval(theirs))
        row("  p50 / baseline p50", _interval_ratio(ours, theirs))
        if ours == "update_to_submit":
            row("  baseline floor",
                lambda s, b: _p50_p95(b.floor.update_to_submit) if b.floor else "-")  # fmt: skip
    row("queued -> handed out p50 / p95", lambda s, b: _p50_p95(s.queued_to_handed))
    row("SQLite commits/gen (selfie+anime)", _both_windows(lambda w: w.commits))
    row("  of which fsynced", _both_windows(lambda w: w.fsynced))
    row(
        "SQLite thread hops/generation",
        lambda s, b: f"{s.per_generation(s.upload.hops + s.generate.hops):.1f}",
    )
    row("Bot API calls/generation", lambda s, b: f"{s.per_generation(s.calls.total()):.1f}")
    every = Counter[str]()
    for scenario, _ in scenarios:
        every.update(scenario.calls)
    for method, _ in every.most_common():
        row(f"  {method}", _method(method))
    row(
        "  (file downloads)",
        lambda s, b: f"{s.per_generation(s.upload.downloads + s.generate.downloads):.2f}",
    )
    return rows


def print_report(scenarios: Sequence[tuple[Scenario, Baseline]], images: ImageCost) -> None:
    rows = report_rows(scenarios, images)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for line in [rows[0], tuple("-" * w for w in widths), *rows[1:]]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    print(
        f"image preparation: CPU per call on the same selfie, in the driver: check_image {_ms(images.check)} "
        f"ms (on arrival), prepare_image {_ms(images.prepare)} ms (at generation)"
    )
    floors = [base.floor for _, base in scenarios if base.floor is not None]
    if floors:
        print(floor_line(floors[0]))


def floor_line(floor: Floor) -> str:
    """What the floor worker did per generation, to be read against the bot's rows of the same names."""
    per = 1 / max(1, floor.generations)
    calls = ", ".join(f"{method} {count * per:.2f}" for method, count in sorted(floor.calls.items()))
    return (f"floor, per generation over {floor.generations}: Bot API calls "
            f"{sum(floor.calls.values()) * per:.1f} ({calls}), file downloads {floor.downloads * per:.2f}, "
            f"SQLite commits {floor.commits * per:.1f} (fsynced {floor.fsynced * per:.1f}), thread hops "
            f"{floor.hops * per:.1f}")  # fmt: skip


def own_cpu(one: Scenario, images: ImageCost) -> float:
    """The bot's CPU per generation less its image work: as it timed that itself (bot_proc), else as the
    driver timed the same decodes."""
    return one.cpu - (one.image_cpu if one.image_cpu > 0 else images.total)


def goals(one: Scenario, images: ImageCost) -> str:
    """Issue 11's two goals, for one user: the bot's own CPU < 10 ms, update -> submit p50 < 20 ms."""
    own, submit = own_cpu(one, images), pct(one.update_to_submit, 50)
    verdict = {True: "met", False: "not met"}
    return (f"goals (1 user): bot's own CPU {_ms(own)} ms/generation (< 10: {verdict[own < 0.010]}); "
            f"update -> submit p50 {_ms(submit)} ms (< 20: {verdict[submit < 0.020]})")  # fmt: skip


# --- the profile -------------------------------------------------------------------------------------------


def _where(key: tuple[str, int, str]) -> str:
    """`package/module.py:line(function)`, without the interpreter's or the checkout's prefix."""
    file, line, func = key
    for marker in ("site-packages/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    else:
        if file.startswith(str(ROOT)):
            file = os.path.relpath(file, ROOT)
    return f"{file}:{line}({func})"


def library(key: tuple[str, int, str]) -> str:
    """Whose code a profiled function is: an installed package's name, `python` for the standard library
    and builtins, or the project's top folder (`bot/jobs`, `storage`, ...)."""
    file = key[0]
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0]
    if file.startswith(str(ROOT)):
        parts = Path(os.path.relpath(file, ROOT)).parts
        return "/".join(parts[:2]) if parts[0] == "bot" and len(parts) > 2 else parts[0]
    return "python"


def print_profile(path: Path, generations: int, top: int, users: int) -> None:
    """The event loop thread's time per generation under cProfile (whose overhead inflates every figure):
    its share by library, the functions that spent the most themselves, then the project's functions by
    cumulative time."""
    entries: dict[tuple[str, int, str], Any] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    per = 1000 / max(1, generations)
    total = sum(value[2] for value in entries.values())
    print(f"\nprofile of the bot's event loop thread, {generations} generations, {users} user(s) at once: "
          f"{total * per:.1f} ms/generation under cProfile")  # fmt: skip
    shares: Counter[str] = Counter()
    for key, value in entries.items():
        shares[library(key)] += value[2]
    print("  by library: " + ", ".join(
        f"{name} {own / total:.0%}" for name, own in shares.most_common(8) if total
    ))  # fmt: skip
    head = f"{'self ms/gen':>11}  {'cum ms/gen':>10}  {'calls/gen':>9}  function"

    def line(key: tuple[str, int, str], value: Any) -> str:
        _, calls, own, cumulative, _ = value
        return f"{own * per:>11.2f}  {cumulative * per:>10.2f}  {calls / generations:>9.1f}  {_where(key)}"

    print(head)
    for key, value in sorted(entries.items(), key=lambda item: -item[1][2])[:top]:
        print(line(key, value))
    project = [
        item
        for item in entries.items()
        if any(p in item[0][0] for p in ("/bot/", "/storage/", "/api_client/"))
    ]
    print(f"\nproject functions by cumulative time:\n{head}")
    for key, value in sorted(project, key=lambda item: -item[1][3])[:top]:
        print(line(key, value))


def verdict(problems: list[str]) -> int:
    """Print the problems a run found (the first 20) or that there were none; the exit status."""
    for problem in problems[:20]:
        print("FAIL", problem)
    print(f"{len(problems)} problem(s)" if problems else "every user got exactly one photo; ledger check ok")
    return 1 if problems else 0
