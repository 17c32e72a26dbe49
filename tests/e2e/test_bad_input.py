"""Bad input of every kind, through the fake Telegram: each gets a friendly catalogue reply or deliberate
silence, never raw text, an apology or an admin alert; no balance changes; a normal portrait works after.

A table: each `Case` names the input, how to send it and what must follow. Add a row for a new kind.
Kinds the fake has no sender for (stickers, voice, locations, contacts, channel posts) are pushed as the
raw updates Telegram sends. Deliberate silence: messages with nothing for the bot in them (a sticker, a
voice note, a location, a contact, a command for another bot, a channel's post) get no answer.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from bot.handlers.flood import FloodGuard
from bot.jobs.params import DEFAULT_PRESET, PRESET_PROMPTS, prompt_limit
from bot.replies import t
from fake_telegram import FakeChat, FakeMessage, FakeUser
from fake_telegram.origins import CHANNEL_BOT
from storage import Task, TaskState
from tests.e2e.conftest import ADMIN_CHAT, WAIT, Harness, HarnessFactory, Person, is_photo, says
from tests.e2e.images import bomb_png, draw_selfie, tiny_photo

OWNER, ALICE, BOB, EVE, ADA, BANNED, SAM = 1, 1001, 1002, 1003, 1004, 1005, 1006
GROUP, CHANNEL = -100800, -100801
RATE, BURST = 6.0, 3
MB = 1_000_000
LONG_PROMPT = "x" * 400
#: What must never reach a user: exception and upstream texts, codes, unfilled placeholders, control bytes.
RAW = re.compile(r"Traceback|Exception|Error\b|Risk Not Pass|request_id|Internal|\b50\d{3}\b|None|[{}\0-\10]")


@dataclass
class Anchor:
    """Where to look for the answer: bot messages in `chat` after message `after`."""

    chat: FakeChat
    after: int


@dataclass
class World:
    harness: Harness
    clock: list[float]
    owner: Person
    alice: Person
    eve: Person
    banned: Person
    sam: Person  # the one user whose generations run here (refused upstream, so refunded)
    bob: FakeUser
    ada: FakeUser
    group: FakeChat
    channel: FakeChat

    @property
    def fake(self) -> Any:
        return self.harness.fake

    def private(self, person: Person, text: str, **options: Any) -> Anchor:
        sent = self.fake.send_text(person.user, person.chat, text, **options)
        return Anchor(person.chat, sent.message_id)

    def in_group(self, user: FakeUser, text: str, **options: Any) -> Anchor:
        sent = self.fake.send_text(user, self.group, text, **options)
        return Anchor(self.group, sent.message_id)

    def document(self, data: bytes, name: str, **options: Any) -> Anchor:
        sent = self.fake.send_document(self.alice.user, self.alice.chat, data, name, "image/jpeg", **options)
        return Anchor(self.alice.chat, sent.message_id)

    def photo(self, data: bytes, **options: Any) -> Anchor:
        sent = self.fake.send_photo(self.alice.user, self.alice.chat, data, **options)
        return Anchor(self.alice.chat, sent.message_id)

    def a_bot_message(self, person: Person | None = None) -> FakeMessage:
        message = self.fake.last_sent((person or self.alice).chat.id)
        assert message is not None
        return message

    def raw(self, **fields: Any) -> Anchor:
        """A message from Alice with `fields` as Telegram sends them (kinds the fake has no sender for)."""
        message = self.fake.new_message(self.alice.chat, self.alice.user, service=fields)
        self.fake.push_update("message", message.to_json())
        return Anchor(self.alice.chat, message.message_id)

    def file_fields(self, data: bytes, name: str, mime: str) -> dict[str, Any]:
        stored = self.fake.store_document(data, name, mime)
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": len(data)}

    def chats(self) -> list[FakeChat]:
        people = (self.owner, self.alice, self.eve, self.banned, self.sam)
        return [p.chat for p in people] + [self.group, self.channel]


Send = Callable[[World], Anchor | Awaitable[Anchor]]
Run = Callable[[World], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    name: str
    run: Run

    def __str__(self) -> str:
        return self.name


async def _anchor(world: World, send: Send) -> Anchor:
    anchor = send(world)
    return anchor if isinstance(anchor, Anchor) else await anchor


def replies(send: Send, key: str, **values: object) -> Run:
    """The first bot message after the input is exactly catalogue `key` (in English: every user here)."""

    async def run(world: World) -> None:
        anchor = await _anchor(world, send)
        reply = await world.fake.wait_for_message(anchor.chat, after=anchor.after, timeout=WAIT)
        assert reply.body == t(key, "en", **values), world.fake.transcript(anchor.chat.id)

    return run


def silent(send: Send) -> Run:
    """Nothing answers the input: the next bot message in that chat answers a probe sent after it."""

    async def run(world: World) -> None:
        anchor = await _anchor(world, send)
        prober = world.alice.user if anchor.chat.id == world.alice.chat.id else world.bob
        probe = world.fake.send_text(prober, anchor.chat, "/help")
        reply = await world.fake.wait_for_message(anchor.chat, after=anchor.after, timeout=WAIT)
        assert reply.reply_to is not None and reply.reply_to.message_id == probe.message_id

    return run


def toast(data: str, key: str) -> Run:
    """A forged button press on one of the bot's messages is answered with catalogue `key` as a toast."""

    async def run(world: World) -> None:
        query = world.fake.click(world.alice.user, world.a_bot_message(), data, forged=True)
        answer = await world.fake.wait_for(lambda: world.fake.callback_answer(query), WAIT)
        assert answer["text"] == t(key, "en")

    return run


async def flood(world: World) -> None:
    """BURST answered, one "slow down", then nothing until the budget refills."""
    sent = [world.fake.send_text(world.alice.user, world.alice.chat, "/quota") for _ in range(BURST + 3)]
    chat = world.alice.chat

    def answers() -> list[FakeMessage] | None:
        after = [m for m in world.fake.sent_messages(chat.id) if m.message_id > sent[0].message_id]
        return after if len(after) >= BURST + 1 else None

    got = await world.fake.wait_for(answers, WAIT)
    slow = t("flood.slow_down", "en", seconds=10)
    assert sorted(m.body == slow for m in got) == [False] * BURST + [True]
    world.clock[0] += 600
    await silent(lambda w: Anchor(chat, got[-1].message_id))(world)


async def edited(world: World) -> Anchor:
    sent = world.fake.send_text(world.alice.user, world.alice.chat, "/help")
    reply = await world.fake.wait_for_message(world.alice.chat, after=sent.message_id, timeout=WAIT)
    world.fake.edit_text(sent, "/anime")
    return Anchor(world.alice.chat, reply.message_id)


async def channel_post(world: World) -> None:
    """A post in a channel the bot is in: no `from`, nobody to answer; nothing is said anywhere."""
    post = world.fake.new_message(world.channel, CHANNEL_BOT, text="/anime", sender_chat=world.channel)
    world.fake.push_update("channel_post", post.to_json())
    messages = world.fake.chat_messages(world.alice.chat.id)
    await silent(lambda w: Anchor(w.alice.chat, messages[-1].message_id))(world)  # probed in Alice's chat
    assert world.fake.sent_messages(world.channel.id) == []


async def refused_generation(world: World) -> Task:
    """Sam's selfie and an /anime with a blocklisted word: the service refuses it, the unit comes back."""
    sam = world.sam
    await sam.photo(draw_selfie(), expect=says("face.saved"))
    sent = world.fake.send_text(sam.user, sam.chat, "/anime blocklisted logo")
    refusal = says("error.risk.blocklist")
    await world.fake.wait_for_message(sam.chat, refusal, after=sent.message_id, timeout=WAIT)
    task = await world.harness.until_state(sam, TaskState.FAILED)
    assert task.reservation == "refunded"
    return task


async def blocklisted(world: World) -> None:
    await refused_generation(world)


async def someone_elses_task(world: World) -> None:
    """Eve presses "Again" with the id of Sam's task: told the buttons are someone else's."""
    task = await refused_generation(world)
    eve = world.eve
    query = world.fake.click(eve.user, world.a_bot_message(eve), f"again:{task.id}", forged=True)
    answer = await world.fake.wait_for(lambda: world.fake.callback_answer(query), WAIT)
    assert answer["text"] == t("callback.not_yours", "en")


def gif(size: tuple[int, int] = (300, 300)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 160, 90)).save(buffer, format="GIF")
    return buffer.getvalue()


def strip_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 5000), (40, 160, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="900"><circle r="400"/></svg>'
INVISIBLE = "\u200b\u200b\u2060\u200e"


def animation(world: World) -> Anchor:
    file = world.file_fields(gif(), "loop.mp4", "video/mp4")
    return world.raw(
        animation={**file, "width": 300, "height": 300, "duration": 2, "mime_type": "video/mp4"},
        document={**file, "file_name": "loop.mp4", "mime_type": "video/mp4"},
    )


def sticker(world: World) -> Anchor:
    file = world.file_fields(gif(), "sticker.webp", "image/webp")
    kind = {"type": "regular", "is_animated": False, "is_video": False}
    return world.raw(sticker={**file, **kind, "width": 512, "height": 512, "emoji": "😀"})


def voice(world: World) -> Anchor:
    file = world.file_fields(b"OggS" + b"\0" * 400, "voice.ogg", "audio/ogg")
    return world.raw(voice={**file, "duration": 3, "mime_type": "audio/ogg"})


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((640, 480), 60).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()[: buffer.tell() * 6 // 10]


def padded_jpeg(total: int) -> bytes:
    head = draw_selfie(400)
    return head + b"\0" * (total - len(head))


def unsized_huge(world: World) -> Anchor:
    world.fake.max_download = None  # a self-hosted Bot API server: no 20 MB getFile limit
    return world.document(padded_jpeg(25 * MB), "huge.jpg", report_size=False)


TOO_LARGE = {"max_mb": 20}
LIMIT = prompt_limit(PRESET_PROMPTS[DEFAULT_PRESET], 300)

CASES = [
    Case("forwarded admin command", replies(
        lambda w: w.private(w.owner, "/grant @alice 50", forward_from=w.alice.user),
        "forwarded.command_admin")),
    Case("forwarded /anime", replies(
        lambda w: w.private(w.alice, "/anime", forward_from=w.bob), "forwarded.command")),
    Case("forwarded photo captioned /anime", replies(
        lambda w: w.photo(draw_selfie(), caption="/anime", forward_from="Hidden Hal"), "forwarded.command")),
    Case("anonymous group admin", replies(
        lambda w: w.in_group(w.ada, "/anime", as_chat=w.group), "sender.anonymous_admin")),
    Case("posting as a channel", replies(
        lambda w: w.in_group(w.bob, "/anime", as_chat=w.channel), "sender.channel")),
    Case("linked channel's automatic forward", silent(
        lambda w: Anchor(w.group, w.fake.auto_forward(w.channel, w.group, "/anime").message_id))),
    Case("flood of messages", flood),
    Case("file that is not an image", replies(
        lambda w: w.document(b"%PDF-1.7 quarterly report", "selfie.jpg"), "upload.not_image")),
    Case("truncated image", replies(lambda w: w.document(truncated_jpeg(), "cut.jpg"), "upload.not_image")),
    Case("decompression bomb", replies(lambda w: w.document(bomb_png(), "bomb.png"), "upload.bomb")),
    Case("tiny photo", replies(lambda w: w.photo(tiny_photo()), "upload.too_small", min_side=128)),
    Case("30 MB document", replies(
        lambda w: w.document(padded_jpeg(30 * MB), "scan.jpg"), "upload.too_large", **TOO_LARGE)),
    Case("huge file with no size", replies(unsized_huge, "upload.too_large", **TOO_LARGE)),
    Case("unknown command", replies(
        lambda w: w.private(w.alice, "/frobnicate now"), "unknown.command", command="/frobnicate")),
    Case("stranger calling an admin command", replies(
        lambda w: w.private(w.eve, "/grant @eve 1000"), "unknown.command", command="/grant")),
    Case("admin typo in an amount", replies(
        lambda w: w.private(w.owner, "/grant @alice 1e9"), "admin.error.not_a_number", value="1e9")),
    Case("over-long prompt", replies(
        lambda w: w.private(w.alice, "/prompt " + LONG_PROMPT),
        "error.prompt_too_long", length=400, limit=LIMIT)),
    Case("/anime before any selfie", replies(lambda w: w.private(w.alice, "/anime"), "generate.no_selfie")),
    Case("garbage callback data", toast("💥'; DROP TABLE tasks;--", "callback.stale")),
    Case("button for a task that does not exist", toast("again:999999", "callback.stale")),
    Case("edited command", silent(edited)),
    Case("command for another bot in a group", silent(lambda w: w.in_group(w.bob, "/anime@OtherBot"))),
    Case("banned user", replies(lambda w: w.private(w.banned, "/anime"), "banned")),
    Case("GIF sent as a file", replies(
        lambda w: Anchor(w.alice.chat, w.fake.send_document(
            w.alice.user, w.alice.chat, gif(), "funny.gif", "image/gif").message_id), "upload.not_image")),
    Case("animation", replies(animation, "upload.not_image")),
    Case("empty file named .jpg", replies(lambda w: w.document(b"", "empty.jpg"), "upload.not_image")),
    Case("SVG drawing", replies(
        lambda w: Anchor(w.alice.chat, w.fake.send_document(
            w.alice.user, w.alice.chat, SVG, "face.svg", "image/svg+xml").message_id), "upload.not_image")),
    Case("1 x 5000 strip", replies(lambda w: w.document(strip_png(), "strip.png"), "upload.too_small",
                                   min_side=128)),
    Case("sticker", silent(sticker)),
    Case("voice message", silent(voice)),
    Case("location", silent(lambda w: w.raw(location={"latitude": 48.85, "longitude": 2.35}))),
    Case("contact", silent(lambda w: w.raw(contact={"phone_number": "+15550100", "first_name": "Bob"}))),
    Case("post in a channel", channel_post),
    Case("command for another bot, in private", silent(lambda w: w.private(w.alice, "/anime@OtherBot"))),
    Case("prompt of only spaces", replies(lambda w: w.private(w.alice, "/prompt      "), "prompt.none")),
    Case("prompt of only invisible characters", replies(
        lambda w: w.private(w.alice, "/prompt " + INVISIBLE), "prompt.none")),
    Case("prompt of only control characters", replies(
        lambda w: w.private(w.alice, "/prompt \x00\x07 \x1b"), "prompt.none")),
    Case("a 4096-character message", replies(lambda w: w.private(w.alice, "ж" * 4096), "hint.send_selfie")),
    Case("/lang with an unknown language", replies(
        lambda w: w.private(w.alice, "/lang xx"), "lang.usage", current="English")),
    Case("/setdaily with garbage", replies(
        lambda w: w.private(w.owner, "/setdaily @alice lots"), "admin.error.not_a_number", value="lots")),
    Case("/grant to an unknown user", replies(
        lambda w: w.private(w.owner, "/grant @nobody 5"), "admin.error.unknown_user", user="@nobody")),
    Case("/style clear with nothing stored", replies(
        lambda w: w.private(w.alice, "/style clear"), "style.none")),
    Case("/cancel with nothing running", replies(lambda w: w.private(w.alice, "/cancel"), "cancel.nothing")),
    Case("settings button with a forged value", toast("set:size:gigantic", "callback.stale")),
    Case("/anime with a blocklisted word", blocklisted),
    Case("button for someone else's task", someone_elses_task),
]  # fmt: skip


@pytest.fixture
async def world(make_harness: HarnessFactory) -> AsyncIterator[World]:
    harness = await make_harness(admin_ids=frozenset({OWNER}), user_rate_limit=RATE, user_rate_burst=BURST)
    clock = [0.0]
    harness.services.flood = FloodGuard(RATE, BURST, clock=lambda: clock[0])
    names = [(OWNER, "Olga"), (ALICE, "Alice"), (EVE, "Eve"), (BANNED, "Mallory"), (SAM, "Sam")]
    people = {uid: harness.person(uid, name) for uid, name in names}
    for person in people.values():
        await person.say("/start")
        clock[0] += 600
    store = harness.services.store
    await store.users.ban(BANNED, actor=OWNER, reason="spam")
    bob, ada = harness.fake.add_user(BOB, "Bob", "bob"), harness.fake.add_user(ADA, "Ada", "ada")
    group = harness.fake.group(GROUP, "Club", type="supergroup", admins=[ada], members=[bob])
    channel = harness.fake.channel(CHANNEL, "Bob's channel")
    yield World(harness, clock, people[OWNER], people[ALICE], people[EVE], people[BANNED], people[SAM], bob,
                ada, group, channel)  # fmt: skip


async def everyone_untouched(world: World) -> None:
    """Balances as they were; only Sam has tasks (refused upstream, refunded); no alert; nothing raw."""
    store = world.harness.services.store
    for user_id in (OWNER, ALICE, BOB, EVE, ADA, BANNED, SAM):
        balance = await store.quotas.balance(user_id)
        assert (balance.free_left, balance.credits) == (3, 0), user_id
        tasks = await store.tasks.recent_for_user(user_id)
        if user_id == SAM:
            assert all((t.state, t.reservation) == (TaskState.FAILED, "refunded") for t in tasks), tasks
        else:
            assert tasks == [], user_id
    assert world.fake.sent_messages(ADMIN_CHAT) == []  # no apology-and-alert path was taken
    for chat in world.chats():
        for message in world.fake.sent_messages(chat.id, include_deleted=True):
            for text in (message.body, *message.history):
                assert not RAW.search(text or ""), (chat.label, text)


async def test_there_are_at_least_thirty_kinds() -> None:
    assert len({case.name for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_input_gets_a_friendly_answer_or_silence(world: World, case: Case) -> None:
    await case.run(world)
    await everyone_untouched(world)


async def test_after_all_of_it_a_normal_portrait_still_works(world: World) -> None:
    for case in CASES:
        world.clock[0] += 600  # a fresh budget for each kind, as if they came minutes apart
        await case.run(world)
    await everyone_untouched(world)
    world.clock[0] += 600
    alice = world.alice
    await alice.photo(draw_selfie(), expect=lambda m: m.body == t("face.saved", "en"))
    await alice.say("/anime", is_photo)
    task = await world.harness.until_state(alice, TaskState.DONE)
    assert task.user_id == ALICE
    assert (await world.harness.services.store.quotas.balance(ALICE)).free_left == 2
