"""Who a message says it is from: forwarded messages, anonymous group admins, posts as a channel.

Telegram's rules (Bot API, Message): a forwarded message keeps the original text and entities and carries a
`forward_origin` (`user`, `hidden_user` when the sender hides their account, `chat`, `channel`). An anonymous
group admin posts as the group: `sender_chat` is the group itself and `from` is the service account
GroupAnonymousBot. A member posting as one of their channels has `sender_chat` = that channel and `from` =
Channel_Bot. A linked channel's posts are copied into its discussion group as automatic forwards
(`is_automatic_forward`, `sender_chat` = the channel, `from` = the Telegram service account 777000).
"""

from __future__ import annotations

from fake_telegram.model import JSON, FakeChat, FakeUser

#: Telegram's service accounts (telegram.constants.ChatID).
ANONYMOUS_ADMIN = FakeUser(1087968824, "Group", "GroupAnonymousBot", None, is_bot=True)
CHANNEL_BOT = FakeUser(136817688, "Channel", "Channel_Bot", None, is_bot=True)
SERVICE_ACCOUNT = FakeUser(777000, "Telegram", None, None)

#: Whom a message was forwarded from: a person, a hidden account's display name, or a chat.
ForwardFrom = FakeUser | FakeChat | str


def forward_origin(source: ForwardFrom, date: int, message_id: int = 1) -> JSON:
    """The MessageOrigin JSON for a message forwarded from `source`, originally sent at `date`."""
    if isinstance(source, FakeUser):
        return {"type": "user", "date": date, "sender_user": source.to_json()}
    if isinstance(source, str):
        return {"type": "hidden_user", "date": date, "sender_user_name": source}
    if source.type == "channel":
        return {"type": "channel", "date": date, "chat": source.to_json(), "message_id": message_id}
    return {"type": "chat", "date": date, "sender_chat": source.to_json()}


def shown_sender(person: FakeUser, chat: FakeChat, as_chat: FakeChat | None) -> FakeUser:
    """The `from` of a message `person` posts in `chat`, on behalf of `as_chat` if given."""
    if as_chat is None:
        return person
    if chat.type not in ("group", "supergroup"):
        raise ValueError("only group members can post on behalf of a chat")
    return ANONYMOUS_ADMIN if as_chat.id == chat.id else CHANNEL_BOT
