"""The users' side of Telegram: people, chats, and the updates their actions produce for the bot.

Each producer stores the message as Telegram would (ids, entities, photo sizes), logs it for the transcript
and queues the update unless privacy mode keeps it from the bot, as Telegram does in groups.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fake_telegram.core import FakeCore
from fake_telegram.media import image_size
from fake_telegram.model import JSON, FakeChat, FakeMessage, FakeUser
from fake_telegram.origins import SERVICE_ACCOUNT, ForwardFrom, forward_origin, shown_sender
from fake_telegram.service import member_json
from fake_telegram.text import detect_entities, leading_command, mentions
from fake_telegram.transcript import describe

UserRef = FakeUser | int


class UserSide(FakeCore):
    """User actions; every producer returns what the user's client would show (the message or query id)."""

    def add_user(
        self, id: int, first_name: str, username: str | None = None, language_code: str | None = "en"
    ) -> FakeUser:
        user = FakeUser(id, first_name, username, language_code)
        self.users[id] = user
        return user

    def _user(self, ref: UserRef) -> FakeUser:
        return self.users[ref] if isinstance(ref, int) else ref

    def private_chat(self, user: UserRef) -> FakeChat:
        """The user's private chat with the bot (its id is the user's id)."""
        person = self._user(user)
        chat = self.chats.get(person.id)
        if chat is None:
            chat = FakeChat(person.id, "private", user=person)
            self.chats[person.id] = chat
        return chat

    def group(
        self,
        chat_id: int,
        title: str,
        type: str = "group",
        admins: Iterable[UserRef] = (),
        *,
        creator: UserRef | None = None,
        members: Iterable[UserRef] = (),
        bot_member: bool = True,
    ) -> FakeChat:
        """A group the bot is already in (bot_member=False: add it later with add_bot_to_group)."""
        if type not in ("group", "supergroup"):
            raise ValueError("type must be 'group' or 'supergroup'")
        admin_ids = {self._user(a).id for a in admins}
        creator_id = self._user(creator).id if creator is not None else None
        member_ids = {self._user(m).id for m in members} | admin_ids
        if creator_id is not None:
            member_ids.add(creator_id)
        chat = FakeChat(
            chat_id, type, title, admins=admin_ids, creator=creator_id, members=member_ids,
            bot_status="member" if bot_member else "left",
        )  # fmt: skip
        self.chats[chat_id] = chat
        return chat

    def channel(self, chat_id: int, title: str) -> FakeChat:
        """A channel: users post as it in groups (`as_chat=`), and messages are forwarded from it."""
        chat = FakeChat(chat_id, "channel", title, bot_status="left")
        self.chats[chat_id] = chat
        return chat

    # -- messages ----------------------------------------------------------------------------------
    def _deliverable(self, chat: FakeChat, message: FakeMessage) -> bool:
        """Privacy mode: in groups the bot sees commands for it, replies to it, mentions, service messages."""
        if chat.type == "private":
            return not chat.blocked
        if chat.bot_status in ("left", "kicked"):
            return False
        if not self.privacy_mode or message.service:
            return True
        command = leading_command(message.body)
        if command is not None and command[1] in (None, self.bot_user.username):
            return True
        if message.reply_to is not None and message.reply_to.from_bot:
            return True
        return mentions(message.body, self.bot_user.username or "")

    def _post(self, chat: FakeChat, message: FakeMessage) -> FakeMessage:
        if chat.type != "private":
            chat.members.add(message.sender.id)
        elif chat.blocked:  # writing to the bot again means pressing "Restart": unblocked
            chat.blocked, chat.bot_status = False, "member"
        message.delivered = self._deliverable(chat, message)
        self.note(chat, describe(message))
        if message.delivered:
            message.update_id = self.push_update("message", message.to_json())
        else:
            self._changed()
        return message

    def _reply(self, chat: FakeChat, reply_to: FakeMessage | int | None) -> FakeMessage | None:
        if reply_to is None or isinstance(reply_to, FakeMessage):
            return reply_to
        return self.messages[(chat.id, reply_to)]

    def _who(
        self, user: UserRef, chat: FakeChat, forward_from: ForwardFrom | None, as_chat: FakeChat | None
    ) -> dict[str, Any]:
        """`from`, `sender_chat` and `forward_origin` of a message `user` posts (see origins.py)."""
        person = self._user(user)
        origin = None if forward_from is None else forward_origin(forward_from, int(self.clock()) - 60)
        return {
            "sender": shown_sender(person, chat, as_chat),
            "sender_chat": as_chat,
            "forward_origin": origin,
        }

    def send_text(
        self,
        user: UserRef,
        chat: FakeChat,
        text: str,
        reply_to: FakeMessage | int | None = None,
        *,
        forward_from: ForwardFrom | None = None,
        as_chat: FakeChat | None = None,
    ) -> FakeMessage:
        """A text message; /commands (also /cmd@bot) and @mentions get their entities.

        `forward_from`: the user forwards someone else's message (text and entities kept, as Telegram does);
        `as_chat`: posted in a group on behalf of that group (anonymous admin) or of a channel.
        """
        message = self.new_message(
            chat,
            text=text,
            entities=detect_entities(text),
            reply_to=self._reply(chat, reply_to),
            **self._who(user, chat, forward_from, as_chat),
        )
        return self._post(chat, message)

    def auto_forward(self, channel: FakeChat, group: FakeChat, text: str) -> FakeMessage:
        """A linked channel's post copied into its discussion group (`is_automatic_forward`)."""
        message = self.new_message(
            group, SERVICE_ACCOUNT, text=text, entities=detect_entities(text), sender_chat=channel,
            forward_origin=forward_origin(channel, int(self.clock())), is_automatic_forward=True,
        )  # fmt: skip
        return self._post(group, message)

    def send_photo(
        self,
        user: UserRef,
        chat: FakeChat,
        image_bytes: bytes,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: FakeMessage | int | None = None,
        *,
        forward_from: ForwardFrom | None = None,
        as_chat: FakeChat | None = None,
    ) -> FakeMessage:
        """A compressed photo: PhotoSize list smallest first; a caption command gets caption_entities."""
        size = image_size(image_bytes)
        if size is None:
            raise ValueError("send_photo needs image bytes Pillow can read (use send_document otherwise)")
        ladder = self.store_photo(image_bytes, *size)
        message = self.new_message(
            chat, photo=ladder, caption=caption,
            caption_entities=detect_entities(caption or ""), media_group_id=media_group_id,
            reply_to=self._reply(chat, reply_to), **self._who(user, chat, forward_from, as_chat),
        )  # fmt: skip
        return self._post(chat, message)

    def send_document(
        self,
        user: UserRef,
        chat: FakeChat,
        data: bytes,
        file_name: str,
        mime_type: str | None,
        caption: str | None = None,
        reply_to: FakeMessage | int | None = None,
        *,
        report_size: bool = True,
        forward_from: ForwardFrom | None = None,
        as_chat: FakeChat | None = None,
    ) -> FakeMessage:
        """A file sent "as document": the bot gets it uncompressed, with the client's name and mime type.

        `report_size=False` leaves `file_size` out of the update and of getFile, as Telegram may.
        """
        stored = self.store_document(data, file_name, mime_type)
        stored.report_size = report_size
        message = self.new_message(
            chat, document=stored, caption=caption, caption_entities=detect_entities(caption or ""),
            reply_to=self._reply(chat, reply_to), **self._who(user, chat, forward_from, as_chat),
        )  # fmt: skip
        return self._post(chat, message)

    def edit_text(self, message: FakeMessage, text: str) -> FakeMessage:
        """The user edits their message: an edited_message update (bots must not treat it as new)."""
        message.history.append(message.body)
        message.text, message.entities = text, detect_entities(text)
        message.edit_date = int(self.clock())
        self.note(message.chat, describe(message, edited=True))
        if self._deliverable(message.chat, message):
            self.push_update("edited_message", message.to_json())
        return message

    def click(
        self,
        user: UserRef,
        message: FakeMessage,
        callback_data: str | None = None,
        *,
        text: str | None = None,
        forged: bool = False,
    ) -> str:
        """Press an inline button (by callback_data or by its label); returns the callback query id.

        `forged=True` sends `callback_data` whatever the message's buttons say, as a modified client can.
        """
        person = self._user(user)
        buttons = [b for row in message.buttons for b in row]
        pressed = next(
            (b for b in buttons if (b[1] == callback_data if text is None else b[0] == text)), None
        )
        if forged and callback_data is not None:
            pressed = ("(forged)", callback_data)
        if pressed is None or pressed[1] is None or message.deleted:
            raise LookupError(f"message #{message.message_id} has no such button; it has {buttons}")
        query_id = str(4_000_000_000 + self._next_query)
        self._next_query += 1
        self.callback_queries[query_id] = {
            "answered": False,
            "answer": None,
            "chat": message.chat,
            "user": person,
        }
        self.note(message.chat, f"{person.first_name} pressed [{pressed[0]}] on #{message.message_id}")
        self.push_update("callback_query", {
            "id": query_id, "from": person.to_json(), "message": message.to_json(),
            "chat_instance": str(-abs(message.chat.id) * 7919), "data": pressed[1],
        })  # fmt: skip
        return query_id

    def callback_answer(self, query_id: str) -> JSON | None:
        """What answerCallbackQuery said for this query (None while unanswered)."""
        query = self.callback_queries.get(query_id)
        return query["answer"] if query else None

    # -- membership --------------------------------------------------------------------------------
    def _bot_status(self, user: FakeUser, chat: FakeChat, status: str) -> None:
        old = member_json(self, chat, self.bot_user)
        chat.bot_status = status
        self.push_update("my_chat_member", {
            "chat": chat.to_json(), "from": user.to_json(), "date": int(self.clock()),
            "old_chat_member": old, "new_chat_member": member_json(self, chat, self.bot_user),
        })  # fmt: skip

    def add_bot_to_group(self, user: UserRef, chat: FakeChat) -> FakeMessage:
        """my_chat_member (left -> member) and the service message announcing the bot."""
        person = self._user(user)
        self._bot_status(person, chat, "member")
        self.note(chat, f"{person.first_name} added the bot")
        message = self.new_message(chat, person, service={"new_chat_members": [self.bot_user.to_json()]})
        return self._post(chat, message)

    def remove_bot_from_group(self, user: UserRef, chat: FakeChat) -> None:
        """my_chat_member to left (group) or kicked (supergroup); later sends get 403."""
        person = self._user(user)
        self._bot_status(person, chat, "kicked" if chat.type == "supergroup" else "left")
        self.note(chat, f"{person.first_name} removed the bot")

    def migrate_group(self, old_id: int, new_id: int, user: UserRef | None = None) -> FakeChat:
        """Group -> supergroup: migrate_to_chat_id in the old chat, migrate_from_chat_id in the new one."""
        old = self.chats[old_id]
        person = self._user(user) if user is not None else self.users.get(old.creator or 0, self.bot_user)
        new = FakeChat(
            new_id, "supergroup", old.title, admins=set(old.admins), creator=old.creator,
            members=set(old.members), bot_status=old.bot_status,
        )  # fmt: skip
        self.chats[new_id] = new
        self._post(old, self.new_message(old, person, service={"migrate_to_chat_id": new_id}))
        old.migrated_to = new_id
        self._post(new, self.new_message(new, person, service={"migrate_from_chat_id": old_id}))
        return new

    def set_admins(self, chat: FakeChat, admins: Iterable[UserRef]) -> None:
        chat.admins = {self._user(a).id for a in admins}
        chat.members |= chat.admins
