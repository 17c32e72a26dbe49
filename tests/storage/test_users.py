"""Users: first/last seen, lookup, roles and bans (audited), settings with pending image ids."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import pytest

from storage import NotFound, Role, Store, UserSettings

from .conftest import FakeClock


async def test_upsert_seen_keeps_first_seen_and_chosen_language(store: Store, clock: FakeClock) -> None:
    first = await store.users.upsert_seen(1, username="alice", first_name="A", language_code="zh-hans")
    assert (first.first_seen, first.last_seen, first.language, first.role) == (
        clock.t,
        clock.t,
        "zh-hans",
        Role.USER,
    )
    await store.users.set_language(1, "en")
    clock.advance(60)
    later = await store.users.upsert_seen(1, username="alice2", first_name="A2", language_code="de")
    assert (later.first_seen, later.last_seen) == (clock.t - 60, clock.t)
    assert (later.username, later.first_name, later.language) == ("alice2", "A2", "en")
    assert await store.users.get(1) == later


async def test_a_known_user_seen_again_soon_is_read_not_written(store: Store, clock: FakeClock) -> None:
    """Every update upserts its sender: for a returning user whose details did not change that is a read,
    until last_seen is a minute old, so a generation's two updates cost no commit."""
    db = store._ctx.db

    async def seen(**details: object) -> int:
        before = db.commits
        fields: dict[str, object] = {"username": "ann", "first_name": "Ann", "language_code": "en"}
        await store.users.upsert_seen(1, **(fields | details))  # type: ignore[arg-type]
        return db.commits - before

    assert await seen() == 1  # new
    clock.advance(1)
    assert await seen() == 1  # a new user's second update is written: first_seen == last_seen means "first"
    first = await store.users.get(1)
    assert first is not None and first.first_seen < first.last_seen
    clock.advance(1)
    assert await seen() == 0
    assert await seen(language_code="de") == 0  # Telegram's language only counts while none is stored
    assert await seen(first_name="Annie") == 1  # a change is written at once
    assert await seen(username="annie", first_name="Annie") == 1
    clock.advance(30)
    assert await seen(username="annie", first_name="Annie") == 0
    clock.advance(31)
    assert await seen(username="annie", first_name="Annie") == 1  # last_seen refreshed after a minute
    user = await store.users.get(1)
    assert user is not None and user.last_seen == clock.t


async def test_find_by_id_and_username(store: Store) -> None:
    await store.users.upsert_seen(42, username="Alice_B", first_name="A", language_code=None)
    for ref in ("42", "@alice_b", "ALICE_B", " @Alice_B "):
        found = await store.users.find(ref)
        assert found is not None and found.id == 42, ref
    for ref in ("43", "@nobody", "@", ""):
        assert await store.users.find(ref) is None, ref
    assert await store.users.get(43) is None


async def test_list_most_recent_first_with_paging(store: Store, clock: FakeClock) -> None:
    for uid in (1, 2, 3):
        clock.advance(1)
        await store.users.upsert_seen(uid, username=None, first_name="", language_code=None)
    assert [u.id for u in await store.users.list()] == [3, 2, 1]
    assert [u.id for u in await store.users.list(limit=1, offset=1)] == [2]


async def test_roles_and_bans_are_audited(store: Store) -> None:
    await store.users.upsert_seen(1, username="a", first_name="A", language_code=None)
    assert (await store.users.set_role(1, Role.ADMIN, actor=7, reason="helper")).role == Role.ADMIN
    banned = await store.users.ban(1, actor=7, reason="spam")
    assert (banned.banned, banned.ban_reason, banned.role) == (True, "spam", Role.ADMIN)
    unbanned = await store.users.unban(1, actor=7)
    assert (unbanned.banned, unbanned.ban_reason) == (False, None)
    log = await store.admin.audit_log()
    assert [(e.action, e.actor, e.target) for e in log] == [
        ("unban", 7, "1"),
        ("ban", 7, "1"),
        ("set_role", 7, "1"),
    ]
    assert log[1].details == "spam"


@pytest.mark.parametrize("call", ["set_role", "ban", "unban", "set_language", "update_settings"])
async def test_changes_to_unknown_users_are_not_found(store: Store, call: str) -> None:
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "set_role": lambda: store.users.set_role(404, Role.ADMIN, actor=1),
        "ban": lambda: store.users.ban(404, actor=1, reason="x"),
        "unban": lambda: store.users.unban(404, actor=1),
        "set_language": lambda: store.users.set_language(404, "en"),
        "update_settings": lambda: store.users.update_settings(404, seed=1),
    }
    with pytest.raises(NotFound):
        await calls[call]()
    assert await store.admin.audit_log() == []


async def test_settings_defaults_updates_and_pending_images(store: Store) -> None:
    assert await store.users.get_settings(1) == UserSettings()
    await store.users.upsert_seen(1, username="a", first_name="A", language_code=None)
    s = await store.users.update_settings(1, prompt="cat ears", seed=42, hyper=True, identity="face_style")
    s = await store.users.update_settings(1, selfie_file_id="AgAC-1", selfie_unique_id="AQAD-1")
    assert (s.prompt, s.seed, s.hyper, s.identity, s.selfie_file_id, s.width) == (
        "cat ears",
        42,
        True,
        "face_style",
        "AgAC-1",
        1000,
    )
    assert await store.users.get_settings(1) == s
    cleared = await store.users.update_settings(1, selfie_file_id=None, selfie_unique_id=None)
    assert cleared.selfie_file_id is None and cleared.prompt == "cat ears"


async def test_settings_saved_before_a_field_existed_read_with_its_default(
    db_path: Path, clock: FakeClock
) -> None:
    """Why a new setting needs no migration: a row written by an older version lacks the key."""
    async with await Store.open(db_path, clock=clock) as store:
        await store.users.upsert_seen(1, username="a", first_name="A", language_code=None)
    older = {"hyper": True, "seed": 7, "selfie_file_id": "AgAC-1"}  # written before full_size_file existed
    async with aiosqlite.connect(db_path) as conn:
        await conn.execute("UPDATE users SET settings = ? WHERE id = 1", (json.dumps(older),))
        await conn.commit()
    async with await Store.open(db_path, clock=clock) as store:
        assert await store.users.get_settings(1) == UserSettings(hyper=True, seed=7, selfie_file_id="AgAC-1")
        s = await store.users.update_settings(1, full_size_file=True)
        assert (s.full_size_file, s.hyper, s.seed, s.selfie_file_id) == (True, True, 7, "AgAC-1")
        assert (await store.users.get_settings(1)).full_size_file is True


@pytest.mark.parametrize(
    "changes",
    [
        {"colour": "red"},
        {"seed": "7"},
        {"hyper": 1},
        {"full_size_file": "yes"},
        {"width": True},
        {"prompt": None},
        {"identity": "both"},
    ],
)
async def test_bad_settings_are_refused_and_nothing_saved(store: Store, changes: dict[str, object]) -> None:
    await store.users.upsert_seen(1, username="a", first_name="A", language_code=None)
    await store.users.update_settings(1, seed=5)
    with pytest.raises(ValueError):
        await store.users.update_settings(1, preset="kept?", **changes)
    assert await store.users.get_settings(1) == UserSettings(seed=5)
