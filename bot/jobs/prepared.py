"""Prepared selfies on disk: each received image is made ready for the service once, when it arrives.

Why: every image is already downloaded and decoded in full when it arrives (the upload check,
bot/handlers/uploads.py). Before this, each generation downloaded it from Telegram again and decoded and
re-encoded it again (tens to hundreds of milliseconds of CPU for a phone photo), for "Again", "New seed"
and every later portrait of the same selfie too. Now the upload check keeps what `prepare_image` makes of
it, and `bot.jobs.upstream.build_request` reads it back; on a miss (evicted, deleted, an image from
before this cache) it downloads and prepares as before and keeps the result.

- Keyed by Telegram's `file_unique_id` (the same file keeps it, whatever file_id a later message gives) and
  by the base64 budget the image was prepared for: a selfie sent with a style image must fit a smaller
  budget (PAIR_BASE64_BYTES) than one sent alone (MAX_BASE64_BYTES). The quality ladder starts at the
  same quality for both, so an image whose first encoding fits the smaller budget is the same bytes for
  both, and is kept once under each key. Tasks store file ids only, so a small alias file maps a
  file_id to its unique id.
- Beside the database (`data/prepared/`), size-bounded (least recently used files go first) and safe to
  delete at any time: everything in it can be made again from Telegram. `/forgetme` deletes a user's
  entries with their other images.
- Blocking file and CPU work: call the methods in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Final

from api_client.images import MAX_BASE64_BYTES, PreparedImage, base64_length, prepare
from storage import Store

__all__ = ["DEFAULT_MAX_BYTES", "PAIR_BASE64_BYTES", "PreparedCache", "user_image_ids"]

log = logging.getLogger(__name__)

#: Two images must fit the 8 MB request limit together, so each gets a smaller budget than the 4.7 MB cap.
PAIR_BASE64_BYTES: Final = 3_900_000
#: The cache's size on disk: about 2,000 photo-sized selfies.
DEFAULT_MAX_BYTES: Final = 512 * 1024 * 1024
_BUDGETS: Final = (MAX_BASE64_BYTES, PAIR_BASE64_BYTES)


def _name(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


class PreparedCache:
    """Prepared JPEGs by (unique id, budget), least recently used evicted past `max_bytes`."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._index: dict[Path, tuple[float, int]] | None = None  # path -> (last used, size)
        self._total = 0
        self.hits = 0
        self.misses = 0

    @classmethod
    def beside(cls, db_path: str | os.PathLike[str], **kwargs: int) -> PreparedCache:
        return cls(Path(db_path).parent / "prepared", **kwargs)

    # -- the two users -----------------------------------------------------------------------------------

    def keep_upload(self, raw: bytes, file_id: str, unique_id: str) -> tuple[int, int]:
        """The upload check: decode and prepare `raw` (ImageRejected as `check_image` would), keep it under
        every budget its bytes fit, and return the prepared (width, height)."""
        prepared = prepare(raw, max_base64_bytes=MAX_BASE64_BYTES)
        try:
            self._keep(file_id, unique_id, prepared)
        except OSError:
            log.warning("could not keep a prepared image", exc_info=True)
        return prepared.width, prepared.height

    def get(self, file_id: str, budget: int) -> bytes | None:
        """The prepared bytes of `file_id` for `budget`, or None."""
        try:
            unique_id = self._alias(file_id).read_text(encoding="ascii")
            path = self._image(unique_id, budget)
            data = path.read_bytes()
        except (OSError, UnicodeDecodeError):
            self.misses += 1
            return None
        self._touch(path, len(data))
        self.hits += 1
        return data

    def put(self, file_id: str, budget: int, data: bytes, *, unique_id: str | None = None) -> None:
        """Keep bytes prepared on a miss (the unique id is unknown then: the file id stands in for it)."""
        try:
            self._write_alias(file_id, unique_id or f"file:{file_id}")
            self._write(self._image(unique_id or f"file:{file_id}", budget), data)
        except OSError:
            log.warning("could not keep a prepared image", exc_info=True)

    def forget(self, file_ids: list[str]) -> int:
        """Delete what is kept for these files (a user's /forgetme); returns how many files went."""
        removed = 0
        for file_id in file_ids:
            alias = self._alias(file_id)
            try:
                unique_id = alias.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError):
                continue
            for path in (alias, *(self._image(unique_id, b) for b in _BUDGETS)):
                removed += self._remove(path)
        return removed

    # -- files -------------------------------------------------------------------------------------------

    def _keep(self, file_id: str, unique_id: str, prepared: PreparedImage) -> None:
        self._write_alias(file_id, unique_id)
        for budget in _BUDGETS:
            if base64_length(len(prepared.data)) <= budget:  # the same bytes prepare() makes for it
                self._write(self._image(unique_id, budget), prepared.data)

    def _alias(self, file_id: str) -> Path:
        return self.root / "ids" / _name(file_id)

    def _image(self, unique_id: str, budget: int) -> Path:
        return self.root / f"{_name(unique_id)}-{budget}.jpg"

    def _write_alias(self, file_id: str, unique_id: str) -> None:
        self._write(self._alias(file_id), unique_id.encode("ascii", "replace"))

    def _write(self, path: Path, data: bytes) -> None:
        """Atomically (a reader never sees half a file), then evict past the bound."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        with self._lock:
            index = self._loaded()
            _, old = index.get(path, (0.0, 0))
            index[path] = (_now(), len(data))
            self._total += len(data) - old
            self._evict(index)

    def _touch(self, path: Path, size: int) -> None:
        with self._lock:
            index = self._loaded()
            _, old = index.get(path, (0.0, 0))
            index[path] = (_now(), size)
            self._total += size - old
        try:
            os.utime(path)  # the next process's index starts from the modification times
        except OSError:
            pass

    def _remove(self, path: Path) -> int:
        with self._lock:
            entry = self._loaded().pop(path, None)
            if entry is not None:
                self._total -= entry[1]
        try:
            path.unlink()
        except FileNotFoundError:
            return 0
        return 1

    def _loaded(self) -> dict[Path, tuple[float, int]]:
        """The index of what is on disk, read once (modification time = last use)."""
        if self._index is None:
            self._index = {}
            for path in self.root.rglob("*"):
                if path.is_file() and not path.name.startswith("."):
                    stat = path.stat()
                    self._index[path] = (stat.st_mtime, stat.st_size)
            self._total = sum(size for _, size in self._index.values())
        return self._index

    def _evict(self, index: dict[Path, tuple[float, int]]) -> None:
        if self._total <= self.max_bytes:
            return
        for path, (_, size) in sorted(index.items(), key=lambda item: item[1][0]):
            if self._total <= self.max_bytes:
                break
            del index[path]
            self._total -= size
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    @property
    def size(self) -> int:
        with self._lock:
            self._loaded()
            return self._total


async def user_image_ids(store: Store, user_id: int) -> list[str]:
    """Every file id of a user's photos the bot may have prepared (pending ones and their tasks'): what
    forgetting the user must delete here too. Read before the user's rows are deleted."""
    settings = await store.users.get_settings(user_id)
    ids = {settings.selfie_file_id, settings.style_file_id}
    for task in await store.tasks.recent_for_user(user_id, limit=100_000):
        ids.update((task.face_file_id, task.style_file_id))
    return sorted(i for i in ids if i)


def _now() -> float:
    return time.time()
