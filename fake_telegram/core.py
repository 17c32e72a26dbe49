"""The fake's state: chats, messages, files, the update queue, recorded calls and the change signal.

Every change calls `_changed()`, which wakes long-polls and `wait_for` at once: tests wait on events,
never on sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fake_telegram.errors import ApiError, bad_request, forbidden
from fake_telegram.media import MAX_DOWNLOAD, photo_ladder
from fake_telegram.model import JSON, BotCall, FakeChat, FakeMessage, FakeUser, PaymentsState, StoredFile
from fake_telegram.webhook import WebhookPusher

T = TypeVar("T")
DEFAULT_TOKEN = "123456789:TEST-fake-telegram-token"
RECHECK = 0.02
DEFAULT_UPDATES = {  # what Telegram sends when allowed_updates was never set
    "message", "edited_message", "channel_post", "edited_channel_post", "callback_query",
    "inline_query", "chosen_inline_result", "my_chat_member", "shipping_query", "pre_checkout_query",
    "poll", "poll_answer", "chat_join_request",
}  # fmt: skip


class FakeCore:
    """State shared by the bot-facing methods and the user-side driver."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "PortraitTestBot",
        bot_name: str = "Portrait Bot",
        privacy_mode: bool = True,
        clock: Callable[[], float] = time.time,
        max_download: int | None = MAX_DOWNLOAD,
    ) -> None:
        self.token = token
        #: getFile refuses bigger files (None: a self-hosted Bot API server, which serves up to 2 GB).
        self.max_download = max_download
        self.clock = clock
        self.privacy_mode = privacy_mode
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.bot_user = FakeUser(bot_id, bot_name, bot_username, None, is_bot=True)
        self.users: dict[int, FakeUser] = {}
        self.chats: dict[int, FakeChat] = {}
        self.messages: dict[tuple[int, int], FakeMessage] = {}
        self.by_chat: dict[int, list[FakeMessage]] = {}  # oldest first
        self.files: dict[str, StoredFile] = {}
        self.paths: dict[str, StoredFile] = {}
        self.photo_sets: dict[str, list[StoredFile]] = {}
        self.calls: list[BotCall] = []
        self.log: list[tuple[int, str]] = []  # (chat_id, transcript line)
        self.commands: dict[str, list[JSON]] = {}  # scope key -> commands
        self.callback_queries: dict[str, JSON] = {}  # id -> {"answered": bool, "answer": {...}}
        self.updates: list[JSON] = []
        #: update_id -> when a getUpdates answer first carried it, or the webhook's first successful POST of
        #: it began (the clock's time): load runs measure from the moment the bot had the update, not from
        #: when it was queued.
        self.handed_out: dict[int, float] = {}
        self.allowed_updates: set[str] = set(DEFAULT_UPDATES)
        self.webhook = WebhookPusher()  # setWebhook's URL and secret, and the deliveries (webhook.py)
        self.closed = False
        self.waiting_polls = 0  # getUpdates calls parked in their long-poll right now
        self._next_update_id = 100_000_001
        self._next_message_id: dict[int, int] = {}
        self._next_file = 1
        self._next_query = 1
        self._poll_generation = 0
        self._signal = asyncio.Event()
        self.faults: dict[str, list[ApiError]] = {}  # lower-case method -> errors for its next calls
        self.delays: dict[str, list[float]] = {}  # lower-case method -> late answers for its next calls
        self.payments = PaymentsState()
        self.descriptions: dict[tuple[str, str], str] = {}  # (description|short_description, lang) -> text

    # -- change signal ---------------------------------------------------------------------------
    def _changed(self) -> None:
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()

    async def _wait_change(self, timeout: float) -> None:  # noqa: ASYNC109 - wakes on change, not a deadline
        """Wait until something changes or `timeout` passes, whichever is first."""
        if timeout <= 0:
            return
        try:
            await asyncio.wait_for(self._signal.wait(), timeout)
        except TimeoutError:
            pass

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Return the predicate's first truthy value; TimeoutError (with the transcript tail) otherwise.

        Re-checked on every change to the fake (at once), and every `RECHECK` seconds for predicates
        over state the fake cannot see (the bot's own database, a handler's list).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            signal = self._signal
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                tail = "\n".join(line for _, line in self.log[-15:])
                raise TimeoutError(f"condition not met within {timeout}s; transcript tail:\n{tail}")
            try:
                await asyncio.wait_for(signal.wait(), min(remaining, RECHECK))
            except TimeoutError:
                continue

    def notify(self) -> None:
        """Wake `wait_for` now, e.g. from a bot-side hook after a change the fake cannot see."""
        self._changed()

    def close(self) -> None:
        """Wake every long-poll so a server shutdown does not wait for their timeouts."""
        self.closed = True
        self._changed()

    @property
    def webhook_url(self) -> str:
        return self.webhook.url

    # -- updates -----------------------------------------------------------------------------------
    def push_update(self, kind: str, payload: JSON) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self.updates.append({"update_id": update_id, kind: payload})
        self._changed()
        return update_id

    def pending_updates(self, offset: int | None, limit: int) -> list[JSON]:
        """Confirm everything below `offset` (forgotten for good), then the next `limit` allowed ones."""
        if offset is not None and offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        allowed = [u for u in self.updates if next(k for k in u if k != "update_id") in self.allowed_updates]
        return allowed[:limit]

    def note_handed_out(self, updates: list[JSON]) -> None:
        """Remember when each update was first handed to the bot (a re-delivery keeps the first time)."""
        now = self.clock()
        for update in updates:
            self.handed_out.setdefault(update["update_id"], now)

    # -- chats and messages ------------------------------------------------------------------------
    def chat_for_send(self, chat_ref: int | str) -> FakeChat:
        """The chat a bot call targets, with Telegram's refusals for gone, blocked and left chats."""
        if isinstance(chat_ref, int) and chat_ref not in self.chats and chat_ref in self.users:
            raise forbidden("bot can't initiate conversation with a user")  # never pressed Start
        chat = self.find_chat(chat_ref)
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": chat.migrated_to}
            )
        if chat.type == "private" and chat.blocked:
            raise forbidden("bot was blocked by the user")
        if chat.type != "private" and chat.bot_status in ("left", "kicked"):
            raise forbidden(f"bot was kicked from the {chat.type} chat")
        return chat

    def find_chat(self, chat_ref: int | str) -> FakeChat:
        if isinstance(chat_ref, str):
            name = chat_ref.lstrip("@").lower()
            for candidate in self.chats.values():
                if candidate.user is not None and (candidate.user.username or "").lower() == name:
                    return candidate
            raise bad_request("chat not found")
        chat = self.chats.get(chat_ref)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def new_message(self, chat: FakeChat, sender: FakeUser, **fields: Any) -> FakeMessage:
        message_id = self._next_message_id.get(chat.id, 1)
        self._next_message_id[chat.id] = message_id + 1
        message = FakeMessage(message_id, chat, sender, int(self.clock()), **fields)
        self.messages[(chat.id, message_id)] = message
        self.by_chat.setdefault(chat.id, []).append(message)
        return message

    def find_message(self, chat_id: int, message_id: int | None, *, missing: str) -> FakeMessage:
        message = self.messages.get((chat_id, message_id or 0))
        if message is None or message.deleted:
            raise bad_request(missing)
        return message

    def note(self, chat: FakeChat, line: str) -> None:
        self.log.append((chat.id, f"[{chat.label}] {line}"))

    # -- files -------------------------------------------------------------------------------------
    def _file_ids(self, kind: str, data: bytes, tag: str) -> tuple[str, str, int]:
        number = self._next_file
        self._next_file += 1
        prefix = "AgAC" if kind == "photo" else "BQAC"
        digest = hashlib.sha256(data).hexdigest()[:12]
        return f"{prefix}fake{number:06d}{digest[:6]}", f"AQAD{digest}{tag}", number

    def store_photo(self, data: bytes, width: int, height: int) -> list[StoredFile]:
        """The PhotoSize ladder for one photo; every size's file_id maps back to the whole ladder."""
        ladder: list[StoredFile] = []
        for side, w, h in photo_ladder(width, height):
            file_id, unique_id, number = self._file_ids("photo", data, str(side or "o"))
            path = f"photos/file_{number}.jpg"
            stored = StoredFile(file_id, unique_id, "photo", path, data, side, w, h, mime_type="image/jpeg")
            ladder.append(stored)
            self.files[file_id] = self.paths[stored.path] = stored
        for stored in ladder:
            self.photo_sets[stored.file_id] = ladder
        return ladder

    def store_document(self, data: bytes, file_name: str | None, mime_type: str | None) -> StoredFile:
        file_id, unique_id, number = self._file_ids("document", data, "d")
        suffix = (file_name or "").rpartition(".")[2] if "." in (file_name or "") else "bin"
        stored = StoredFile(
            file_id, unique_id, "document", f"documents/file_{number}.{suffix}", data,
            file_name=file_name, mime_type=mime_type,
        )  # fmt: skip
        self.files[file_id] = self.paths[stored.path] = stored
        return stored

    def file_by_path(self, path: str) -> StoredFile | None:
        return self.paths.get(path)

    def record(self, call: BotCall) -> None:
        self.calls.append(call)
        self._changed()

    def take_fault(self, method: str) -> ApiError | None:
        queue = self.faults.get(method.lower())
        return queue.pop(0) if queue else None

    def take_delay(self, method: str) -> float:
        queue = self.delays.get(method.lower())
        return queue.pop(0) if queue else 0.0
