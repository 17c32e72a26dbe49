"""Every combination of a user's choices becomes a request the API accepts, and means what the user chose."""

import io
import itertools
import json

import pytest
from PIL import Image

from api_client.errors import LocalValidationError
from api_client.models import MAX_PROMPT_CHARS, SubmitRequest
from bot import preferences
from bot.jobs.params import (
    IDENTITIES,
    PRESET_PROMPTS,
    PromptTooLong,
    build_params,
    switches_for,
    to_submit_request,
    watermark_for,
)
from bot.replies import LANGUAGES, catalogue
from storage import UserSettings


def _jpeg(size: tuple[int, int] = (256, 256), color: tuple[int, int, int] = (120, 90, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


FACE = _jpeg()
STYLE = _jpeg(color=(10, 200, 30))

SIZES = [(1000, 1000), (864, 1152), (1152, 864), (100, 5000), (600, 1500)]


@pytest.mark.parametrize("identity", (*IDENTITIES, "bogus"))
@pytest.mark.parametrize("has_style", [False, True])
@pytest.mark.parametrize("hyper", [False, True])
def test_every_choice_yields_a_valid_request(identity: str, has_style: bool, hyper: bool) -> None:
    for preset, size, watermark in itertools.product((*preferences.PRESETS, "unknown"), SIZES, (False, True)):
        settings = UserSettings(
            identity=identity, hyper=hyper, preset=preset, width=size[0], height=size[1],
            watermark=watermark, prompt="smiling, red scarf",
        )
        params = build_params(settings, has_style=has_style, prompt_override=None, max_prompt_length=300)
        json.dumps(params)  # persisted as JSON: must round-trip
        request = to_submit_request(params, FACE, STYLE if has_style else None)
        request.validate()
        assert request.positive_prompt.endswith("smiling, red scarf")
        if hyper:  # fast mode wins: no switch, no style image sent
            assert request.hyper_switch and not (request.face_switch or request.facestyle_switch)
            assert not request.style_switch and len(request.images) == 1
        assert 600 <= request.width <= 1500 and 600 <= request.height <= 1500
        assert (watermark_for(params) is not None) is watermark


@pytest.mark.parametrize(
    ("identity", "has_style", "expected"),
    [
        ("face", True, (True, False, True, 2)),
        ("face", False, (True, False, False, 1)),
        ("face_style", True, (True, True, False, 1)),
        ("face_style", False, (True, True, False, 1)),
        ("style", True, (False, False, True, 2)),
        ("style", False, (False, True, False, 1)),
        ("none", True, (False, False, False, 1)),
        ("none", False, (False, False, False, 1)),
    ],
)
def test_identity_choice_maps_to_switches(
    identity: str, has_style: bool, expected: tuple[bool, bool, bool, int]
) -> None:
    params = build_params(
        UserSettings(identity=identity), has_style=has_style, prompt_override=None, max_prompt_length=300
    )
    request = to_submit_request(params, FACE, STYLE if has_style else None)
    got = (request.face_switch, request.facestyle_switch, request.style_switch, len(request.images))
    assert got == expected
    assert request.hyper_switch is False


def test_style_switch_is_dropped_when_the_style_image_is_missing_at_run_time() -> None:
    params = build_params(UserSettings(identity="style"), has_style=True, prompt_override=None,
                          max_prompt_length=300)
    request = to_submit_request(params, FACE, None)  # e.g. the style file could not be fetched
    request.validate()
    assert not request.style_switch and request.style_image_index is None


def test_hostile_params_from_storage_still_validate() -> None:
    params: dict[str, object] = {
        "hyper_switch": True, "face_switch": True, "facestyle_switch": True, "style_switch": True,
        "use_style_image": True, "width": "big", "height": 99999, "seed": True, "prompt": "",
    }
    request = to_submit_request(params, FACE, STYLE)
    request.validate()
    assert request.hyper_switch and not request.face_switch and request.seed == -1


def test_the_api_would_refuse_the_unguarded_combination() -> None:
    """Guards against a vacuous suite: the raw combination the mapping avoids really is invalid."""
    with pytest.raises(LocalValidationError) as caught:
        SubmitRequest.from_images(FACE, None, hyper_switch=True, face_switch=True).validate()
    assert caught.value.rule == "hyper_switch"


def test_preset_prompt_is_joined_with_the_users_text() -> None:
    params = build_params(UserSettings(preset="cyberpunk", prompt="  blue   hair "), has_style=False,
                          prompt_override=None, max_prompt_length=300)
    assert params["prompt"] == PRESET_PROMPTS["cyberpunk"].rstrip(",") + ",blue hair"
    assert params["user_prompt"] == "blue   hair"


def test_prompt_override_wins_and_empty_text_keeps_the_preset_alone() -> None:
    s = UserSettings(prompt="stored text")
    override = build_params(s, has_style=False, prompt_override="cute", max_prompt_length=300)
    assert str(override["prompt"]).endswith(",cute")
    assert build_params(s, has_style=False, prompt_override="", max_prompt_length=300)["prompt"] == (
        PRESET_PROMPTS["anime"]
    )


def test_prompt_over_the_limit_is_refused_with_the_numbers() -> None:
    with pytest.raises(PromptTooLong) as caught:
        build_params(UserSettings(prompt="x" * 31), has_style=False, prompt_override=None,
                     max_prompt_length=30)
    assert (caught.value.length, caught.value.limit) == (31, 30)
    build_params(UserSettings(prompt="x" * 30), has_style=False, prompt_override=None, max_prompt_length=30)


def test_configured_limit_never_lets_the_joined_prompt_exceed_the_api_limit() -> None:
    with pytest.raises(PromptTooLong) as caught:
        build_params(UserSettings(preset="oil", prompt="y" * MAX_PROMPT_CHARS), has_style=False,
                     prompt_override=None, max_prompt_length=MAX_PROMPT_CHARS)
    limit = caught.value.limit
    params = build_params(UserSettings(preset="oil", prompt="y" * limit), has_style=False,
                          prompt_override=None, max_prompt_length=MAX_PROMPT_CHARS)
    to_submit_request(params, FACE, None).validate()


def test_every_preset_has_a_name_in_every_language_and_no_brand_words() -> None:
    for preset, prompt in PRESET_PROMPTS.items():
        for lang in LANGUAGES:
            assert f"preset.{preset}" in catalogue(lang)
        assert not {"ghibli", "disney", "pixar", "makoto"} & set(prompt.lower().replace(",", " ").split())


def test_seed_override_and_watermark_settings() -> None:
    s = UserSettings(seed=1234, watermark=True, watermark_language=0, watermark_position=3)
    params = build_params(s, has_style=False, prompt_override=None, max_prompt_length=300)
    assert to_submit_request(params, FACE, None).seed == 1234
    reseeded = build_params(s, has_style=False, prompt_override=None, max_prompt_length=300, seed=-1)
    assert to_submit_request(reseeded, FACE, None).seed == -1
    mark = watermark_for(params)
    assert mark is not None and (mark.language, mark.position, mark.add_logo) == (0, 3, True)


def test_full_size_file_setting_asks_delivery_for_the_document() -> None:
    def params(s: UserSettings) -> dict[str, object]:
        return build_params(s, has_style=False, prompt_override=None, max_prompt_length=300)

    on, off = params(UserSettings(full_size_file=True)), params(UserSettings())
    assert (on["send_document"], off["send_document"]) == (True, False)
    assert to_submit_request(on, FACE, None) == to_submit_request(off, FACE, None)  # upstream never sees it


def test_switches_for_hyper_ignores_identity() -> None:
    assert all(switches_for(i, has_style=s, hyper=True).hyper for i in IDENTITIES for s in (True, False))
