"""Users: who they are, their role and ban, and their per-user settings (incl. the pending image file ids).

Settings live in one JSON column because the bot reads and writes them whole and nothing queries by them;
a new setting is a new dataclass field with a default, not a migration.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any, Literal

from .audit import write_audit
from .context import StoreContext
from .db import Row
from .errors import NotFound

IDENTITIES = frozenset({"face", "face_style", "style", "none"})


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
    OWNER = "owner"


@dataclass(frozen=True)
class User:
    id: int
    username: str | None
    first_name: str
    language: str | None
    role: Role
    banned: bool
    ban_reason: str | None
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class UserSettings:
    """One user's stored settings and pending images, with the defaults a new user gets.

    What a user may choose for each field (and which buttons write it) is described by the bot's table of
    user settings, which this package cannot import; a bot test checks that every field the table writes is
    here with the same default.
    """

    prompt: str = ""
    preset: str = "anime"
    width: int = 1000
    height: int = 1000
    seed: int = -1
    hyper: bool = False
    identity: str = "face"  # "face" | "face_style" | "style" | "none" (the bot maps it to the switches)
    watermark: bool = False
    watermark_language: int = 1
    watermark_position: int = 0  # logo_info.position: 0 bottom-right, 1 bottom-left, 2 top-left, 3 top-right
    full_size_file: bool = False  # True: every result also comes as an untouched document, not only big ones
    selfie_file_id: str | None = None
    selfie_unique_id: str | None = None
    style_file_id: str | None = None
    style_unique_id: str | None = None


_SETTING_TYPES: dict[str, tuple[type, bool]] = {
    # field -> (type, may be None); bool is checked before int because bool is an int subclass.
    f.name: (type(f.default) if f.default is not None else str, f.default is None)
    for f in fields(UserSettings)
}


def settings_from_json(text: str) -> UserSettings:
    """Unknown keys (from a newer version) are dropped and missing ones take their defaults."""
    data = json.loads(text or "{}")
    return UserSettings(**{k: v for k, v in data.items() if k in _SETTING_TYPES})


def validate_settings(changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if name not in _SETTING_TYPES:
            raise ValueError(f"unknown setting {name!r}")
        kind, nullable = _SETTING_TYPES[name]
        if value is None and nullable:
            continue
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise ValueError(f"setting {name!r} must be {kind.__name__}, not {type(value).__name__}")
    if "identity" in changes and changes["identity"] not in IDENTITIES:
        raise ValueError(f"identity must be one of {sorted(IDENTITIES)}")


def user_from_row(row: Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        first_name=row["first_name"],
        language=row["language"],
        role=Role(row["role"]),
        banned=bool(row["banned"]),
        ban_reason=row["ban_reason"],
        first_seen=float(row["first_seen"]),
        last_seen=float(row["last_seen"]),
    )


_USER_COLUMNS = "id, username, first_name, language, role, banned, ban_reason, first_seen, last_seen"

#: How stale `last_seen` may get before an update writes it again (admin lists sort by it; reports count
#: users seen today or this week).
SEEN_REFRESH_SECONDS = 60.0


def _seen_recently(
    user: User, username: str | None, first_name: str, language: str | None, now: float
) -> bool:
    """Nothing an upsert would change but a `last_seen` that is fresh enough (see upsert_seen)."""
    return (
        user.username == username
        and user.first_name == first_name
        and (user.language is not None or language is None)
        and user.first_seen < user.last_seen
        and now - user.last_seen < SEEN_REFRESH_SECONDS
    )


class UsersRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def upsert_seen(
        self, user_id: int, *, username: str | None, first_name: str, language_code: str | None
    ) -> User:
        """Record that the user was seen now. The language is taken from Telegram only the first time:
        afterwards it is the user's own choice (set_language).

        Every update passes here, so a known user whose name and language are as stored is only read, not
        written, until `last_seen` is SEEN_REFRESH_SECONDS old: a write per update was two commits of each
        generation (the selfie and the command). A brand-new user's next update is always written, because
        `first_seen == last_seen` is how the bot tells a first update (bot/handlers/invite.py). The write
        is not fsynced: a lost `last_seen` is harmless, and a new user's row is flushed by the next durable
        commit that refers to it (a task, a quota), which in WAL mode carries every earlier commit."""
        now = self._ctx.now()
        async with self._ctx.db.read() as r:
            row = await r.one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        if row is not None:
            known = user_from_row(row)
            if _seen_recently(known, username, first_name or "", language_code, now):
                return known
        (row,) = await self._ctx.db.write_one(
            "INSERT INTO users (id, username, first_name, language, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET username = excluded.username, "
            "first_name = excluded.first_name, last_seen = excluded.last_seen, "
            "language = COALESCE(users.language, excluded.language) "  # none after /forgetme
            f"RETURNING {_USER_COLUMNS}",
            (user_id, username, first_name or "", language_code, now, now),
            durable=False,
        )
        return user_from_row(row)

    async def get(self, user_id: int) -> User | None:
        async with self._ctx.db.read() as r:
            row = await r.one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return None if row is None else user_from_row(row)

    async def find(self, ref: str) -> User | None:
        """Find by id ("123") or by username ("@name" or "name", case-insensitive)."""
        ref = ref.strip()
        if ref.lstrip("-").isdigit():
            return await self.get(int(ref))
        name = ref.removeprefix("@")
        if not name:
            return None
        async with self._ctx.db.read() as r:
            row = await r.one(
                f"SELECT {_USER_COLUMNS} FROM users WHERE username = ? COLLATE NOCASE "
                "ORDER BY last_seen DESC LIMIT 1",
                (name,),
            )
        return None if row is None else user_from_row(row)

    async def list(self, *, limit: int = 50, offset: int = 0) -> list[User]:
        """Most recently seen first."""
        async with self._ctx.db.read() as r:
            rows = await r.all(
                f"SELECT {_USER_COLUMNS} FROM users ORDER BY last_seen DESC, id LIMIT ? OFFSET ?",
                (limit, offset),
            )
        return [user_from_row(row) for row in rows]

    async def set_language(self, user_id: int, lang: str) -> None:
        async with self._ctx.db.transaction() as tx:
            if not await tx.execute("UPDATE users SET language = ? WHERE id = ?", (lang, user_id)):
                raise NotFound(f"user {user_id}")

    async def set_role(self, user_id: int, role: Role, *, actor: int, reason: str = "") -> User:
        role = Role(role)
        return await self._audited_update(
            user_id, "role = ?", (role.value,), actor=actor, action="set_role", details=f"{role}: {reason}"
        )

    async def ban(self, user_id: int, *, actor: int, reason: str) -> User:
        return await self._audited_update(
            user_id, "banned = 1, ban_reason = ?", (reason,), actor=actor, action="ban", details=reason
        )

    async def unban(self, user_id: int, *, actor: int, reason: str = "") -> User:
        return await self._audited_update(
            user_id, "banned = 0, ban_reason = NULL", (), actor=actor, action="unban", details=reason
        )

    async def get_settings(self, user_id: int) -> UserSettings:
        """Defaults for a user never seen: the bot may render a settings menu before the first upsert."""
        async with self._ctx.db.read() as r:
            text = await r.value("SELECT settings FROM users WHERE id = ?", (user_id,))
        return UserSettings() if text is None else settings_from_json(text)

    async def update_settings(self, user_id: int, **changes: Any) -> UserSettings:
        """Change some settings; an unknown field or a mistyped value raises ValueError, nothing saved."""
        validate_settings(changes)
        async with self._ctx.db.transaction() as tx:
            text = await tx.value("SELECT settings FROM users WHERE id = ?", (user_id,))
            if text is None:
                raise NotFound(f"user {user_id}")
            settings = replace(settings_from_json(text), **changes)
            await tx.execute(
                "UPDATE users SET settings = ? WHERE id = ?",
                (json.dumps(asdict(settings), sort_keys=True), user_id),
            )
        return settings

    async def drop_image(self, user_id: int, which: Literal["selfie", "style"], file_id: str) -> bool:
        """Forget a stored image that turned out unusable, unless the user has replaced it meanwhile.

        True when it was dropped. Compared and written in one transaction, so a new selfie that arrives
        while a failing task is being ended is never the one thrown away."""
        id_field = f"{which}_file_id"
        cleared: dict[str, Any] = {id_field: None, f"{which}_unique_id": None}
        async with self._ctx.db.transaction() as tx:
            text = await tx.value("SELECT settings FROM users WHERE id = ?", (user_id,))
            if text is None:
                return False
            settings = settings_from_json(text)
            if getattr(settings, id_field) != file_id:
                return False
            settings = replace(settings, **cleared)
            await tx.execute(
                "UPDATE users SET settings = ? WHERE id = ?",
                (json.dumps(asdict(settings), sort_keys=True), user_id),
            )
        return True

    async def _audited_update(
        self,
        user_id: int,
        assignments: str,
        params: tuple[Any, ...],
        *,
        actor: int,
        action: str,
        details: str,
    ) -> User:
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            row = await tx.one(
                f"UPDATE users SET {assignments} WHERE id = ? RETURNING {_USER_COLUMNS}", (*params, user_id)
            )
            if row is None:
                raise NotFound(f"user {user_id}")
            await write_audit(tx, actor=actor, action=action, target=str(user_id), details=details, at=now)
        return user_from_row(row)
