"""`FakeTelegram`: the state, the users' side, fault injection and the questions tests ask about it."""

from __future__ import annotations

from fake_telegram.errors import ApiError, too_many_requests
from fake_telegram.model import JSON, BotCall, FakeChat, FakeMessage
from fake_telegram.paying import PayingSide
from fake_telegram.profile import scope_key


class FakeTelegram(PayingSide):
    """A Telegram for one bot: serve it with `create_app`/`serve`, drive it with the user-side methods.

    Faults are per method name (case-insensitive) and apply to the next calls in order.
    """

    # -- faults ------------------------------------------------------------------------------------
    def block(self, chat_id: int, *, announce: bool = False) -> None:
        """The user blocks the bot: sends to this private chat get 403 (announce: my_chat_member kicked)."""
        chat = self.chats[chat_id]
        if announce and chat.user is not None:
            self._bot_status(chat.user, chat, "kicked")
        chat.blocked = True
        self.note(chat, f"{chat.label} blocked the bot")

    def unblock(self, chat_id: int) -> None:
        chat = self.chats[chat_id]
        chat.blocked = False
        chat.bot_status = "member"

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get 429 with parameters.retry_after."""
        self.fail_next(method, too_many_requests(retry_after), times)

    def fail_next(self, method: str, error: ApiError, times: int = 1) -> None:
        """Any error answer, e.g. ApiError(500, "Internal Server Error"), for the next `times` calls."""
        self.faults.setdefault(method.lower(), []).extend([error] * times)

    def answer_late(self, method: str, seconds: float, times: int = 1) -> None:
        """The call takes effect, but its answer comes `seconds` late (so the client may time out)."""
        self.delays.setdefault(method.lower(), []).extend([seconds] * times)

    # -- questions ---------------------------------------------------------------------------------
    def calls_to(self, method: str, *, chat_id: int | None = None, ok: bool | None = None) -> list[BotCall]:
        """Recorded calls of `method` (any case), optionally for one chat or only (un)successful ones."""
        return [
            call
            for call in self.calls
            if call.method.lower() == method.lower()
            and (chat_id is None or call.chat_id == chat_id)
            and (ok is None or call.ok == ok)
        ]

    def sent_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[FakeMessage]:
        """The bot's messages in a chat, oldest first, in their current (edited) state."""
        return [m for m in self.chat_messages(chat_id, include_deleted=include_deleted) if m.from_bot]

    def chat_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[FakeMessage]:
        return [m for m in self.by_chat.get(chat_id, []) if include_deleted or not m.deleted]

    def last_sent(self, chat_id: int) -> FakeMessage | None:
        sent = self.sent_messages(chat_id)
        return sent[-1] if sent else None

    def commands_for(
        self, scope: str = "default", *, chat_id: int | None = None, language_code: str | None = None
    ) -> list[str]:
        """The command names set for exactly this scope and language (not Telegram's fallback)."""
        data: JSON = {"type": scope} if chat_id is None else {"type": scope, "chat_id": chat_id}
        return [str(c["command"]) for c in self.commands.get(scope_key(data, language_code), [])]

    def description(self, short: bool = False, language_code: str | None = None) -> str:
        """The bot's (short) description in a language, as set with setMy(Short)Description."""
        kind = "short_description" if short else "description"
        return self.descriptions.get((kind, language_code or ""), "")

    def file_bytes(self, file_id: str) -> bytes:
        """The original bytes behind a file_id (what the bot uploaded or the user sent)."""
        return self.files[file_id].source

    async def wait_for_message(
        self,
        chat: FakeChat | int,
        predicate: object = None,
        *,
        after: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> FakeMessage:
        """The first bot message in `chat` after message `after` matching `predicate` (callable or text)."""
        chat_id = chat if isinstance(chat, int) else chat.id

        def match(message: FakeMessage) -> bool:
            if predicate is None:
                return True
            if isinstance(predicate, str):
                return predicate in message.body
            return bool(predicate(message)) if callable(predicate) else False

        def found() -> FakeMessage | None:
            return next((m for m in self.sent_messages(chat_id) if m.message_id > after and match(m)), None)

        return await self.wait_for(found, timeout)

    def transcript(self, chat_id: int | None = None) -> str:
        """The conversation as readable lines (all chats, or one)."""
        return "\n".join(line for cid, line in self.log if chat_id is None or cid == chat_id)
