"""The fake's records: users, chats, messages, files and recorded calls, each printing its Bot API JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

#: Telegram's service accounts (GroupAnonymousBot, Channel_Bot, "Telegram"): marked as bots or not, they
#: stand in for people and chats, so their messages are never the bot's own.
SERVICE_ACCOUNT_IDS = frozenset({1087968824, 136817688, 777000})


@dataclass(frozen=True)
class FakeUser:
    """A simulated Telegram account (a person, or the bot itself)."""

    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False

    def to_json(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class FakeChat:
    """A private chat, group or supergroup; `bot_status` is the bot's own membership in it."""

    id: int
    type: str
    title: str | None = None
    user: FakeUser | None = None  # the other side of a private chat
    admins: set[int] = field(default_factory=set)
    creator: int | None = None
    members: set[int] = field(default_factory=set)
    bot_status: str = "member"
    blocked: bool = False  # private chat: the user blocked the bot
    migrated_to: int | None = None

    def to_json(self) -> JSON:
        data: JSON = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.username:
                data["username"] = self.user.username
        elif self.title is not None:
            data["title"] = self.title
        return data

    @property
    def label(self) -> str:
        if self.type == "private" and self.user is not None:
            return f"private {self.user.first_name}"
        return f"{self.type} {self.title or self.id}"


@dataclass
class StoredFile:
    """Bytes behind a file_id; `max_side` marks a downscaled photo size rendered on first download."""

    file_id: str
    file_unique_id: str
    kind: str  # "photo" | "document"
    path: str
    source: bytes
    max_side: int | None = None
    width: int | None = None
    height: int | None = None
    file_name: str | None = None
    mime_type: str | None = None
    rendered: bytes | None = None
    #: False: the size is said nowhere (update, getFile, download headers): the bot must bound what it reads.
    report_size: bool = True

    @property
    def size(self) -> int:
        return len(self.rendered if self.rendered is not None else self.source)

    def photo_size_json(self) -> JSON:
        data: JSON = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
        }
        if self.max_side is None or self.rendered is not None:
            data["file_size"] = self.size
        return data

    def document_json(self) -> JSON:
        data: JSON = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.report_size:
            data["file_size"] = self.size
        if self.file_name:
            data["file_name"] = self.file_name
        if self.mime_type:
            data["mime_type"] = self.mime_type
        return data


@dataclass
class FakeMessage:
    """A message in a chat, sent by a user or by the bot; edits change it in place and keep `history`."""

    message_id: int
    chat: FakeChat
    sender: FakeUser
    date: int
    text: str | None = None
    entities: list[JSON] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[JSON] = field(default_factory=list)
    photo: list[StoredFile] = field(default_factory=list)
    document: StoredFile | None = None
    reply_to: FakeMessage | None = None
    reply_markup: JSON | None = None
    media_group_id: str | None = None
    edit_date: int | None = None
    deleted: bool = False
    delivered: bool = True  # False: privacy mode kept it from the bot
    history: list[str] = field(default_factory=list)
    service: JSON = field(default_factory=dict)  # new_chat_members, migrate_to_chat_id, ...
    #: A forwarded message's MessageOrigin (its text is someone else's words, entities included).
    forward_origin: JSON | None = None
    #: Posted on behalf of a chat: the group itself (anonymous admin) or a channel.
    sender_chat: FakeChat | None = None
    is_automatic_forward: bool = False  # a linked channel's post copied into its discussion group
    #: The update that carried it to the bot (None: not delivered, e.g. kept back by privacy mode).
    update_id: int | None = None

    @property
    def from_bot(self) -> bool:
        return self.sender.is_bot and self.sender.id not in SERVICE_ACCOUNT_IDS

    @property
    def body(self) -> str:
        """Text or caption, whichever the message has."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def photo_dimensions(self) -> tuple[int, int] | None:
        if not self.photo:
            return None
        largest = self.photo[-1]
        return (largest.width or 0, largest.height or 0)

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """The inline keyboard as rows of (text, callback_data)."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [[(b.get("text", ""), b.get("callback_data")) for b in row] for row in rows]

    def to_json(self, *, with_reply: bool = True) -> JSON:
        data: JSON = {
            "message_id": self.message_id,
            "from": self.sender.to_json(),
            "chat": self.chat.to_json(),
            "date": self.date,
        }
        if self.text is not None:
            data["text"] = self.text
            if self.entities:
                data["entities"] = self.entities
        if self.photo:
            data["photo"] = [size.photo_size_json() for size in self.photo]
        if self.document is not None:
            data["document"] = self.document.document_json()
        if self.caption is not None:
            data["caption"] = self.caption
            if self.caption_entities:
                data["caption_entities"] = self.caption_entities
        if self.media_group_id:
            data["media_group_id"] = self.media_group_id
        if self.reply_to is not None and with_reply:
            data["reply_to_message"] = self.reply_to.to_json(with_reply=False)
        if self.reply_markup:
            data["reply_markup"] = self.reply_markup
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.forward_origin is not None:
            data["forward_origin"] = self.forward_origin
        if self.sender_chat is not None:
            data["sender_chat"] = self.sender_chat.to_json()
        if self.is_automatic_forward:
            data["is_automatic_forward"] = True
        data.update(self.service)
        return data


@dataclass(frozen=True)
class BotCall:
    """One request the bot made, with its decoded parameters and the answer it got."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float  # when the request arrived (its body not read yet)
    status: int = 200
    error: str | None = None
    result: Any = None
    answered_at: float | None = None  # when its answer was ready (the upload read, the call carried out)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None


# -- payments in Telegram Stars (fake_telegram/payments.py, fake_telegram/paying.py) -----------------------
@dataclass
class Invoice:
    """What the bot put in an invoice message (the payload is the bot's secret, not in the message)."""

    message: FakeMessage
    title: str
    payload: str
    currency: str
    total_amount: int


@dataclass
class PreCheckout:
    id: str
    user: FakeUser
    invoice: Invoice
    asked_at: float
    answered: bool = False
    ok: bool | None = None
    error_message: str | None = None


@dataclass
class Charge:
    charge_id: str
    user: FakeUser
    chat: FakeChat
    invoice: Invoice
    message: FakeMessage  # the successful_payment message
    query_id: str = ""  # the pre_checkout_query that made it
    refunded: bool = False


@dataclass
class PaymentsState:
    invoices: dict[tuple[int, int], Invoice] = field(default_factory=dict)
    queries: dict[str, PreCheckout] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    next_number: int = 1

    def number(self) -> int:
        value = self.next_number
        self.next_number += 1
        return value
