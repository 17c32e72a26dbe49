"""Scripted users for load runs: a batch of N users who each send a selfie, then one command all at once.

Why in the fake: a bot under load is best driven from outside its process, and the moments that matter
(when the bot was handed the command's update, when its photo arrived) are the fake's own observations,
taken on the fake's clock (`FakeCore.clock`, wall time by default, which every process on one machine
shares). The driver only says when each phase starts and waits for it to end (`control.py` serves this
over HTTP for a driver in another process).

Progress is read from the call log incrementally (each check looks only at the calls recorded since the
last one), so waiting on 200 users costs the fake next to nothing while the bot under test works.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from fake_telegram.fake import FakeTelegram
from fake_telegram.model import JSON, FakeChat, FakeUser

Phase = Literal["acknowledged", "photos"]

#: Bot calls that put a message in the chat: the first one after a selfie is the bot's acknowledgement.
MESSAGE_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument", "sendmediagroup"})


@dataclass
class LoadUser:
    """One scripted user and what the fake saw of them."""

    user: FakeUser
    chat: FakeChat
    selfie_at: float | None = None
    acknowledged_at: float | None = None
    command_update: int | None = None
    command_at: float | None = None  # queued for the bot
    #: Successful sendPhoto calls after the command: when each was answered (the upload read and stored,
    #: so comparable with a client's round trip) and when it arrived.
    photos: list[float] = field(default_factory=list)
    photos_arrived: list[float] = field(default_factory=list)

    def to_json(self, handed_out: dict[int, float]) -> JSON:
        update = self.command_update
        return {
            "user_id": self.user.id,
            "chat_id": self.chat.id,
            "selfie_at": self.selfie_at,
            "acknowledged_at": self.acknowledged_at,
            "command_update_id": update,
            "command_queued_at": self.command_at,
            "command_handed_out_at": handed_out.get(update) if update is not None else None,
            "photos": self.photos,
            "photos_arrived": self.photos_arrived,
        }


@dataclass
class Batch:
    id: int
    users: dict[int, LoadUser]  # by chat id

    def count(self, phase: Phase) -> int:
        if phase == "acknowledged":
            return sum(1 for u in self.users.values() if u.acknowledged_at is not None)
        return sum(1 for u in self.users.values() if u.photos)


class ScriptedLoad:
    """Batches of scripted users over one fake; user ids are handed out from `first_user_id` upwards."""

    def __init__(self, fake: FakeTelegram, selfie: bytes, *, first_user_id: int = 500_000_001) -> None:
        self.fake = fake
        self.selfie = selfie
        self.batches: dict[int, Batch] = {}
        self._user_ids = itertools.count(first_user_id)
        self._batch_ids = itertools.count(1)
        self._by_chat: dict[int, LoadUser] = {}
        self._scanned = 0

    def add_batch(self, size: int) -> Batch:
        """`size` new users, each having pressed Start (a private chat with the bot)."""
        users: dict[int, LoadUser] = {}
        for _ in range(size):
            user_id = next(self._user_ids)
            user = self.fake.add_user(user_id, f"Load{user_id}", f"load{user_id}")
            chat = self.fake.private_chat(user)
            users[chat.id] = self._by_chat[chat.id] = LoadUser(user, chat)
        batch = Batch(next(self._batch_ids), users)
        self.batches[batch.id] = batch
        return batch

    def send_selfies(self, batch: Batch) -> None:
        """Every user of the batch sends the selfie as a photo, one after the other with no pause."""
        self.scan()
        for member in batch.users.values():
            member.selfie_at = self.fake.clock()
            self.fake.send_photo(member.user, member.chat, self.selfie)

    def send_command(self, batch: Batch, text: str) -> None:
        """Every user of the batch sends `text` (e.g. `/anime`) at the same instant."""
        self.scan()
        for member in batch.users.values():
            member.command_at = self.fake.clock()
            member.command_update = self.fake.send_text(member.user, member.chat, text).update_id

    def scan(self) -> None:
        """Fold the calls recorded since the last scan into the users' progress."""
        calls = self.fake.calls
        for call in calls[self._scanned :]:
            member = self._by_chat.get(call.chat_id) if isinstance(call.chat_id, int) else None
            if member is None or not call.ok or call.method.lower() not in MESSAGE_METHODS:
                continue
            if (
                member.selfie_at is not None
                and member.acknowledged_at is None
                and call.at >= member.selfie_at
            ):
                member.acknowledged_at = call.at
            if call.method.lower() == "sendphoto" and member.command_at is not None:
                member.photos.append(call.answered_at or call.at)
                member.photos_arrived.append(call.at)
        self._scanned = len(calls)

    def progress(self, batch: Batch, phase: Phase) -> int:
        self.scan()
        return batch.count(phase)

    async def wait(self, batch: Batch, phase: Phase, timeout: float) -> int:  # noqa: ASYNC109
        """Until every user of the batch reached `phase`; TimeoutError (transcript tail) past `timeout`."""
        size = len(batch.users)
        return await self.fake.wait_for(lambda: self.progress(batch, phase) >= size and size, timeout)

    def report(self, batch: Batch) -> list[JSON]:
        self.scan()
        return [member.to_json(self.fake.handed_out) for member in batch.users.values()]

    def calls_by_method(self, since: int, until: int | None = None) -> dict[str, int]:
        """How many calls of each method the bot made between two positions of the call log."""
        return dict(Counter(call.method for call in self.fake.calls[since:until]))


def default_selfie(side: int = 1280) -> bytes:
    """A photo-like JPEG of `side` px (a gradient under sensor-like noise): what a phone sends compresses
    and decodes like this, while a flat drawing would make the bot's image work look free."""
    import io

    from PIL import Image

    noise = Image.effect_noise((side, side), 24).convert("RGB")
    gradient = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    buffer = io.BytesIO()
    Image.blend(gradient, noise, 0.35).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
