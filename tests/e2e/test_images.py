"""Photos, image files, captions and albums: what becomes the selfie or the style image, what is refused."""

from __future__ import annotations

import io

import pillow_heif
import pytest
from PIL import Image

from storage import UserSettings
from tests.e2e.conftest import Harness, Person, says
from tests.e2e.images import bomb_png, draw_selfie, draw_style, jpeg, tiny_photo


async def _stored(harness: Harness, person: Person) -> UserSettings:
    return await harness.services.store.users.get_settings(person.user.id)


async def test_a_photo_becomes_the_selfie_largest_size(harness: Harness, alice: Person) -> None:
    sent = harness.fake.send_photo(alice.user, alice.chat, draw_selfie(1600))
    await alice.reply_after(sent, says("face.saved"))
    stored = await _stored(harness, alice)
    assert stored.selfie_file_id == sent.photo[-1].file_id
    assert stored.selfie_unique_id == sent.photo[-1].file_unique_id
    assert stored.style_file_id is None


async def test_style_command_then_photo_sets_the_style_image(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/style", says("style.waiting"))
    await alice.photo(draw_style(), expect=says("style.saved"))
    stored = await _stored(harness, alice)
    assert stored.selfie_file_id is not None and stored.style_file_id is not None
    await alice.photo(draw_selfie(400), expect=says("face.saved"))  # the next photo is a selfie again


async def test_face_command_then_photo_replaces_the_selfie(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    first = (await _stored(harness, alice)).selfie_file_id
    await alice.say("/face", says("face.waiting"))
    await alice.photo(draw_selfie(500), expect=says("face.saved"))
    assert (await _stored(harness, alice)).selfie_file_id not in (None, first)


async def test_caption_style_sets_the_style_image(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_style(), caption="/style", expect=says("style.saved"))
    assert (await _stored(harness, alice)).style_file_id is not None


async def test_caption_command_addressed_with_bot_name_works(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_style(), caption="/style@PortraitTestBot", expect=says("style.saved"))
    assert (await _stored(harness, alice)).style_file_id is not None


async def test_image_file_is_accepted_by_its_bytes_not_its_name(harness: Harness, alice: Person) -> None:
    png = io.BytesIO()
    Image.open(io.BytesIO(draw_selfie())).save(png, format="PNG")
    await alice.document(png.getvalue(), "selfie.dat", "application/octet-stream", expect=says("face.saved"))
    assert (await _stored(harness, alice)).selfie_file_id is not None


FILE_FORMATS = [("WEBP", "image/webp"), ("BMP", "image/bmp"), ("HEIF", "image/heic")]


@pytest.mark.parametrize(("fmt", "mime"), FILE_FORMATS)
async def test_other_image_formats_are_accepted(harness: Harness, alice: Person, fmt: str, mime: str) -> None:
    pillow_heif.register_heif_opener()
    encoded = io.BytesIO()
    Image.open(io.BytesIO(draw_selfie(400))).save(encoded, format=fmt)
    await alice.document(encoded.getvalue(), f"me.{fmt.lower()}", mime, expect=says("face.saved"))
    assert (await _stored(harness, alice)).selfie_file_id is not None


async def test_a_file_that_is_not_an_image_is_refused(harness: Harness, alice: Person) -> None:
    reply = await alice.document(b"%PDF-1.4 not a picture at all", "selfie.jpg", "image/jpeg")
    assert reply.body == alice.text("upload.not_image")
    assert (await _stored(harness, alice)).selfie_file_id is None


async def test_a_30_mb_file_is_refused_without_downloading_it(harness: Harness, alice: Person) -> None:
    huge = b"\0" * (30 * 1024 * 1024)
    reply = await alice.document(huge, "scan.heic", "application/octet-stream")
    assert reply.body == alice.text("upload.too_large", max_mb=20)
    assert harness.fake.calls_to("getFile") == []


async def test_a_tiny_photo_is_refused(harness: Harness, alice: Person) -> None:
    reply = await alice.photo(tiny_photo())
    assert reply.body == alice.text("upload.too_small", min_side=128)
    assert (await _stored(harness, alice)).selfie_file_id is None


async def test_a_tiny_image_file_is_refused(alice: Person) -> None:
    reply = await alice.document(tiny_photo(), "tiny.jpg", "image/jpeg")
    assert reply.body == alice.text("upload.too_small", min_side=128)


@pytest.mark.parametrize(
    ("side", "mime"),
    # 81 MP trips our 50 MP guard; 1.6 GP trips Pillow's own bomb check first. (The second goes as
    # octet-stream only because the fake's transcript itself cannot describe such an image/png.)
    [(9_000, "image/png"), (40_000, "application/octet-stream")],
)
async def test_a_decompression_bomb_is_refused(harness: Harness, alice: Person, side: int, mime: str) -> None:
    reply = await alice.document(bomb_png(side), "big.png", mime)
    assert reply.body == alice.text("upload.bomb")
    assert (await _stored(harness, alice)).selfie_file_id is None


async def test_an_album_of_two_sets_selfie_and_style(harness: Harness, alice: Person) -> None:
    first = harness.fake.send_photo(alice.user, alice.chat, draw_selfie(), media_group_id="album-1")
    second = harness.fake.send_photo(alice.user, alice.chat, draw_style(), media_group_id="album-1")
    reply = await alice.reply_after(second, says("album.saved"))
    assert reply.reply_to is not None and reply.reply_to.message_id == first.message_id
    stored = await _stored(harness, alice)
    assert stored.selfie_file_id == first.photo[-1].file_id
    assert stored.style_file_id == second.photo[-1].file_id
    assert [m.body for m in alice.sent()].count(alice.text("album.saved")) == 1


async def test_an_album_with_a_bad_part_names_the_problem(harness: Harness, alice: Person) -> None:
    harness.fake.send_photo(alice.user, alice.chat, draw_selfie(), media_group_id="album-2")
    small = jpeg(Image.new("RGB", (90, 90)))
    tiny = harness.fake.send_photo(alice.user, alice.chat, small, media_group_id="album-2")
    await alice.reply_after(tiny, says("upload.too_small", min_side=128))
    assert (await _stored(harness, alice)).style_file_id is None
