"""Every other Bot API method PTB v22 calls: identity, updates, commands, callbacks, files and chats.

`METHODS` maps lower-case method names (Telegram ignores case) to handlers; `send.py` holds the rest.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fake_telegram import payments, profile, send
from fake_telegram.core import DEFAULT_UPDATES, FakeCore
from fake_telegram.errors import ApiError, bad_request
from fake_telegram.media import render
from fake_telegram.model import JSON, FakeChat, FakeUser
from fake_telegram.params import Params
from fake_telegram.profile import checked_scope, scope_key

Handler = Callable[[FakeCore, Params], Awaitable[Any]]
CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
}  # fmt: skip
_ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
    "can_delete_stories",
)  # fmt: skip
CONFLICT = ApiError(
    409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)


async def get_me(fake: FakeCore, p: Params) -> Any:
    return {
        **fake.bot_user.to_json(),
        "can_join_groups": True,
        "can_read_all_group_messages": not fake.privacy_mode,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def get_updates(fake: FakeCore, p: Params) -> Any:
    """Long-poll: answer as soon as an update is pending; a newer poll ends an older one with 409."""
    if fake.webhook_url:
        raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
    allowed = p.obj("allowed_updates")
    if isinstance(allowed, list):
        fake.allowed_updates = set(allowed) or set(DEFAULT_UPDATES)
    offset, limit = p.integer("offset"), min(max(p.integer("limit", 100) or 100, 1), 100)
    try:
        timeout = float(p.string("timeout") or 0)
    except ValueError:
        raise bad_request("invalid timeout specified") from None
    fake._poll_generation += 1
    generation = fake._poll_generation
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    parked = False
    try:
        while True:
            if generation != fake._poll_generation:
                raise CONFLICT
            updates = fake.pending_updates(offset, limit)
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or fake.closed:
                fake.note_handed_out(updates)
                return updates
            if not parked:
                parked = True
                fake.waiting_polls += 1
                fake._changed()
            await fake._wait_change(remaining)
    finally:
        fake.waiting_polls -= parked


async def delete_webhook(fake: FakeCore, p: Params) -> Any:
    fake.webhook.url = fake.webhook.secret = ""
    if p.flag("drop_pending_updates"):
        fake.updates.clear()
    fake.notify()
    return True


async def set_webhook(fake: FakeCore, p: Params) -> Any:
    """Register the URL (and secret); deliveries start at once (fake_telegram/webhook.py)."""
    url, secret = p.string("url") or "", p.string("secret_token") or ""
    if not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise bad_request("secret token contains unallowed characters")
    allowed = p.obj("allowed_updates")
    if isinstance(allowed, list):
        fake.allowed_updates = set(allowed) or set(DEFAULT_UPDATES)
    if p.flag("drop_pending_updates"):
        fake.updates.clear()
    fake.webhook.url, fake.webhook.secret = url, secret
    fake.webhook.start(fake)
    fake.notify()
    return True


async def get_webhook_info(fake: FakeCore, p: Params) -> Any:
    failures = [d for d in fake.webhook.deliveries if not d.ok]
    info: dict[str, Any] = {
        "url": fake.webhook_url,
        "has_custom_certificate": False,
        "pending_update_count": len(fake.updates),
        "max_connections": 40,
        "allowed_updates": sorted(fake.allowed_updates),
    }
    if failures and fake.webhook_url:
        info["last_error_date"] = int(fake.clock())
        info["last_error_message"] = f"Wrong response from the webhook: {failures[-1].status}"
    return info


def _scope_key(p: Params) -> str:
    scope = p.obj("scope") or {"type": "default"}
    return scope_key(scope, p.string("language_code"))


async def set_my_commands(fake: FakeCore, p: Params) -> Any:
    key = checked_scope(fake, p)
    commands = p.obj("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("commands must be an array of at most 100 BotCommand")
    for command in commands:
        name = str(command.get("command", "")) if isinstance(command, dict) else ""
        if not (1 <= len(name) <= 32 and all(c.islower() or c.isdigit() or c == "_" for c in name)):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    fake.commands[key] = [dict(c) for c in commands]
    return True


async def get_my_commands(fake: FakeCore, p: Params) -> Any:
    return fake.commands.get(_scope_key(p), [])


async def delete_my_commands(fake: FakeCore, p: Params) -> Any:
    fake.commands.pop(_scope_key(p), None)
    return True


async def send_chat_action(fake: FakeCore, p: Params) -> Any:
    fake.chat_for_send(p.chat_id())
    if p.string("action") not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


async def answer_callback_query(fake: FakeCore, p: Params) -> Any:
    query = fake.callback_queries.get(p.string("callback_query_id") or "")
    if query is None or query["answered"]:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    if len(p.string("text") or "") > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query["answered"] = True
    query["answer"] = {"text": p.string("text"), "show_alert": p.flag("show_alert"), "url": p.string("url")}
    if p.string("text"):
        kind = "alert" if p.flag("show_alert") else "toast"
        fake.note(query["chat"], f"bot ({kind} to {query['user'].first_name}): {p.string('text')}")
    return True


async def get_file(fake: FakeCore, p: Params) -> Any:
    stored = fake.files.get(p.string("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.max_side is not None and stored.rendered is None:
        stored.rendered = await asyncio.to_thread(render, stored.source, stored.max_side)
    if fake.max_download is not None and stored.size > fake.max_download:
        raise bad_request("file is too big")
    result: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if stored.report_size:
        result["file_size"] = stored.size
    result["file_path"] = stored.path
    return result


def member_json(fake: FakeCore, chat: FakeChat, user: FakeUser) -> JSON:
    """A ChatMember with every field PTB requires for its status."""
    if user.id == fake.bot_user.id:
        status = chat.bot_status
    elif user.id == chat.creator:
        status = "creator"
    elif user.id in chat.admins:
        status = "administrator"
    elif chat.type == "private" or user.id in chat.members:
        status = "member"
    else:
        status = "left"
    data: JSON = {"status": status, "user": user.to_json()}
    if status == "creator":
        data["is_anonymous"] = False
    elif status == "administrator":
        data.update({"can_be_edited": False, "is_anonymous": False}, **dict.fromkeys(_ADMIN_RIGHTS, True))
    elif status == "kicked":
        data["until_date"] = 0
    return data


async def get_chat_member(fake: FakeCore, p: Params) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    user_id = p.integer("user_id")
    user = fake.bot_user if user_id == fake.bot_user.id else fake.users.get(user_id or 0)
    if user is None:
        raise bad_request("user not found" if user_id else "user_id is empty")
    return member_json(fake, chat, user)


async def get_chat_administrators(fake: FakeCore, p: Params) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    ids = sorted({*chat.admins, *([chat.creator] if chat.creator else [])})
    return [member_json(fake, chat, fake.users[i]) for i in ids if i in fake.users]


async def get_chat(fake: FakeCore, p: Params) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    gifts = dict.fromkeys(
        ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels"),
        False,
    )
    return {**chat.to_json(), "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}


async def leave_chat(fake: FakeCore, p: Params) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    if chat.type == "private":
        raise bad_request("chat member status can't be changed in private chats")
    old = member_json(fake, chat, fake.bot_user)
    chat.bot_status = "left"
    fake.push_update("my_chat_member", {
        "chat": chat.to_json(), "from": fake.bot_user.to_json(), "date": int(fake.clock()),
        "old_chat_member": old, "new_chat_member": member_json(fake, chat, fake.bot_user),
    })  # fmt: skip
    fake.note(chat, "bot left the chat")
    return True


async def set_message_reaction(fake: FakeCore, p: Params) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    message = fake.find_message(chat.id, p.integer("message_id"), missing="message to react not found")
    emojis = [r.get("emoji", "?") for r in p.obj("reaction") or [] if isinstance(r, dict)]
    fake.note(chat, f"bot reacted {' '.join(emojis) or '(none)'} to #{message.message_id}")
    return True


async def accept(fake: FakeCore, p: Params) -> Any:
    """Methods whose effect the fake does not model but must not refuse (setMyDescription, close...)."""
    return True


METHODS: dict[str, Handler] = {
    "getme": get_me,
    "getupdates": get_updates,
    "deletewebhook": delete_webhook,
    "setwebhook": set_webhook,
    "getwebhookinfo": get_webhook_info,
    "setmycommands": set_my_commands,
    "getmycommands": get_my_commands,
    "deletemycommands": delete_my_commands,
    "sendmessage": send.send_message,
    "sendphoto": send.send_photo,
    "senddocument": send.send_document,
    "sendmediagroup": send.send_media_group,
    "editmessagetext": send.edit_message_text,
    "editmessagecaption": send.edit_message_caption,
    "editmessagereplymarkup": send.edit_message_reply_markup,
    "deletemessage": send.delete_message,
    "sendchataction": send_chat_action,
    "answercallbackquery": answer_callback_query,
    "getfile": get_file,
    "getchatmember": get_chat_member,
    "getchatadministrators": get_chat_administrators,
    "getchat": get_chat,
    "leavechat": leave_chat,
    "setmessagereaction": set_message_reaction,
    **payments.METHODS,
    **profile.METHODS,
    **dict.fromkeys(
        ("setmyname", "close", "logout",
         "setchatmenubutton", "setmydefaultadministratorrights"),
        accept,
    ),
}  # fmt: skip
