"""Chats the bot is in: per-group switches, the group's daily cap, and supergroup migration."""

from __future__ import annotations

from dataclasses import dataclass

from .audit import write_audit
from .context import StoreContext
from .db import Row, Session
from .errors import NotFound

NO_CAP = -1
"""Pass as `daily_cap` to remove a group's cap (None means "leave unchanged")."""


@dataclass(frozen=True)
class Chat:
    id: int
    type: str
    title: str
    enabled: bool = True
    daily_cap: int | None = None
    results_private: bool = False
    active: bool = True


_COLUMNS = "id, type, title, enabled, daily_cap, results_private, active"


def _chat(row: Row) -> Chat:
    return Chat(
        id=row["id"],
        type=row["type"],
        title=row["title"],
        enabled=bool(row["enabled"]),
        daily_cap=row["daily_cap"],
        results_private=bool(row["results_private"]),
        active=bool(row["active"]),
    )


async def _get(s: Session, chat_id: int) -> Chat | None:
    row = await s.one(f"SELECT {_COLUMNS} FROM chats WHERE id = ?", (chat_id,))
    return None if row is None else _chat(row)


class ChatsRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def upsert(self, chat_id: int, *, type: str, title: str) -> Chat:
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            row = await tx.one(
                "INSERT INTO chats (id, type, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET type = excluded.type, title = excluded.title, "
                f"updated_at = excluded.updated_at RETURNING {_COLUMNS}",
                (chat_id, type, title or "", now, now),
            )
        assert row is not None
        return _chat(row)

    async def get(self, chat_id: int) -> Chat | None:
        async with self._ctx.db.read() as r:
            return await _get(r, chat_id)

    async def update_settings(
        self,
        chat_id: int,
        *,
        enabled: bool | None = None,
        daily_cap: int | None = None,
        results_private: bool | None = None,
        actor: int,
    ) -> Chat:
        """Change a group's switches (None: unchanged; daily_cap=NO_CAP removes the cap). Audited."""
        changes: dict[str, object] = {}
        if enabled is not None:
            changes["enabled"] = int(enabled)
        if daily_cap is not None:
            changes["daily_cap"] = None if daily_cap < 0 else daily_cap
        if results_private is not None:
            changes["results_private"] = int(results_private)
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            if await _get(tx, chat_id) is None:
                raise NotFound(f"chat {chat_id}")
            if changes:
                assignments = ", ".join(f"{name} = ?" for name in changes)
                await tx.execute(
                    f"UPDATE chats SET {assignments}, updated_at = ? WHERE id = ?",
                    (*changes.values(), now, chat_id),
                )
            details = ", ".join(f"{k}={v}" for k, v in changes.items())
            await write_audit(
                tx, actor=actor, action="chat_settings", target=str(chat_id), details=details, at=now
            )
            chat = await _get(tx, chat_id)
        assert chat is not None
        return chat

    async def set_active(self, chat_id: int, active: bool) -> None:
        """The bot was added to (True) or removed from (False) the chat; settings are kept either way."""
        async with self._ctx.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE chats SET active = ?, updated_at = ? WHERE id = ?",
                (int(active), self._ctx.now(), chat_id),
            )
            if not changed:
                raise NotFound(f"chat {chat_id}")

    async def migrate(self, old_id: int, new_id: int) -> Chat:
        """A group became a supergroup with a new id: move its settings and tasks over, drop the old row.

        Repeating it is harmless (the old row is gone, the new one is returned). If the bot already saw
        the new id, the old group's settings win: they are the ones an admin chose.
        """
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            old = await _get(tx, old_id)
            if old is None:
                existing = await _get(tx, new_id)
                if existing is None:
                    raise NotFound(f"chat {old_id}")
                return existing
            await tx.execute(
                "INSERT INTO chats (id, type, title, enabled, daily_cap, results_private, active, "
                "created_at, updated_at) SELECT ?, 'supergroup', title, enabled, daily_cap, results_private, "
                "active, created_at, ? FROM chats WHERE id = ? "
                "ON CONFLICT (id) DO UPDATE SET type = 'supergroup', enabled = excluded.enabled, "
                "daily_cap = excluded.daily_cap, results_private = excluded.results_private, "
                "active = excluded.active, updated_at = excluded.updated_at",
                (new_id, now, old_id),
            )
            await tx.execute("UPDATE tasks SET chat_id = ? WHERE chat_id = ?", (new_id, old_id))
            await tx.execute("UPDATE tasks SET charge_chat_id = ? WHERE charge_chat_id = ?", (new_id, old_id))
            await tx.execute("DELETE FROM chats WHERE id = ?", (old_id,))
            chat = await _get(tx, new_id)
        assert chat is not None
        return chat
