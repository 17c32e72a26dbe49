"""The rendered result: deterministic, sized, styled, and watermarked where logo_info says."""

import base64
import io

import pytest
from PIL import Image, ImageChops

from api_client.emulator.render import LogoInfo, add_watermark, render_result, stylise

from ._support import EmulatorClient, b64, image_bytes

FACE = image_bytes((300, 400))


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _corner_difference(a: Image.Image, b: Image.Image) -> dict[int, bool]:
    """Which corners (by logo_info position) differ between two renders."""
    w, h = a.size
    boxes = {0: (w // 2, h * 3 // 4, w, h), 1: (0, h * 3 // 4, w // 2, h),
             2: (0, 0, w // 2, h // 4), 3: (w // 2, 0, w, h // 4)}
    diff = ImageChops.difference(a, b)
    return {position: diff.crop(box).getbbox() is not None for position, box in boxes.items()}


def test_render_is_deterministic_and_sized() -> None:
    first = render_result(FACE, None, 700, 650, LogoInfo())
    assert first == render_result(FACE, None, 700, 650, LogoInfo())
    assert _decode(first).size == (700, 650)


def test_style_image_changes_the_colours() -> None:
    style = image_bytes((200, 200))
    recoloured = Image.new("RGB", (200, 200), (20, 200, 40))
    out = io.BytesIO()
    recoloured.paste(Image.new("RGB", (100, 200), (250, 250, 10)), (0, 0))
    recoloured.save(out, "PNG")
    assert stylise(FACE, style, 600, 600).tobytes() != stylise(FACE, out.getvalue(), 600, 600).tobytes()


@pytest.mark.parametrize("position", [0, 1, 2, 3])
@pytest.mark.parametrize("language", [0, 1])
def test_watermark_lands_only_in_its_corner(position: int, language: int) -> None:
    plain = stylise(FACE, None, 800, 800)
    marked = add_watermark(plain, LogoInfo(True, position, language, 0.8))
    changed = _corner_difference(plain, marked)
    assert changed == {p: p == position for p in range(4)}


def test_no_logo_and_zero_opacity_draw_nothing() -> None:
    plain = stylise(FACE, None, 600, 600)
    assert add_watermark(plain, LogoInfo(add_logo=False)).tobytes() == plain.tobytes()
    assert add_watermark(plain, LogoInfo(True, 0, 1, 0.0)).tobytes() == plain.tobytes()


async def test_get_result_draws_the_requested_watermark(emu: EmulatorClient) -> None:
    task_id = await emu.submit_id(binary_data_base64=[b64(FACE)])
    emu.time.advance(10)

    async def fetch(req_json: dict[str, object] | None) -> Image.Image:
        data = (await emu.result(task_id, req_json)).json()["data"]
        return _decode(base64.b64decode(data["binary_data_base64"][0]))

    plain = await fetch(None)
    marked = await fetch({"logo_info": {"add_logo": True, "position": 3, "language": 1, "opacity": 1}})
    changed = _corner_difference(plain, marked)
    assert changed[3] and not changed[0] and not changed[1]


def test_another_seed_draws_another_portrait_and_a_seed_repeats() -> None:
    first = render_result(FACE, None, 640, 640, LogoInfo(), seed=7)
    assert first == render_result(FACE, None, 640, 640, LogoInfo(), seed=7)
    assert first != render_result(FACE, None, 640, 640, LogoInfo(), seed=8)


async def test_new_seed_tasks_return_different_images(emu: EmulatorClient) -> None:
    """Regression: the bot's "New seed" button returned the very same bytes, because renders ignored it."""
    ids = [await emu.submit_id(binary_data_base64=[b64(FACE)], seed=seed) for seed in (11, 12, -1, -1)]
    emu.time.advance(10)
    images = []
    for task_id in ids:
        data = (await emu.result(task_id)).json()["data"]
        images.append(base64.b64decode(data["binary_data_base64"][0]))
    assert len(set(images)) == 4
