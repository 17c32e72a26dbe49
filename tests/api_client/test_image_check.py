"""check_image: the upload-time check decodes every pixel, so what passes it also passes prepare_image."""

from __future__ import annotations

import pytest
from PIL import Image

from api_client.errors import ImageRejected
from api_client.images import check_image, prepare_image, read_header_size
from tests.api_client.test_images import encode, noise, png_claiming


def truncated(fmt: str) -> bytes:
    """A real photo-like image cut off after 60 %: the header is intact, the pixel data is not."""
    whole = encode(noise((640, 480)), fmt)
    return whole[: len(whole) * 6 // 10]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
async def test_a_truncated_image_passes_the_header_check_but_not_the_decode(fmt: str) -> None:
    raw = truncated(fmt)
    assert read_header_size(raw) == (640, 480)  # what the upload check used to look at
    with pytest.raises(ImageRejected) as refused:
        check_image(raw)
    assert refused.value.reason == "not_image"
    with pytest.raises(ImageRejected):  # and generation would have failed on it
        await prepare_image(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (png_claiming(9000, 9000), "bomb"),
        (encode(Image.new("RGB", (64, 300))), "too_small"),
        (b"%PDF-1.4 not a picture", "not_image"),
        (encode(Image.new("RGB", (200, 200)), "GIF"), "unsupported"),
    ],
)
def test_refusals_name_the_same_reasons_as_prepare_image(raw: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as refused:
        check_image(raw)
    assert refused.value.reason == reason


def test_a_whole_image_is_accepted_with_its_decoded_size() -> None:
    assert check_image(encode(noise((640, 480)), "PNG")) == (640, 480)
    assert check_image(encode(noise((6000, 1500)), "JPEG")) == (4096, 1024)  # fitted like prepare_image
    with pytest.raises(ImageRejected) as narrow:
        check_image(encode(noise((9000, 200)), "JPEG"))  # 91 px high once fitted
    assert narrow.value.reason == "too_small"
