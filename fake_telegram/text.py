"""Message text as Telegram sees it: entity offsets in UTF-16 units, commands, mentions and parse modes.

Parsing `parse_mode` matters because Telegram refuses badly escaped markup with 400 "can't parse entities";
a bot that forgets to escape a user's name must fail here the way it would fail in production.
"""

from __future__ import annotations

import html
import re
from typing import Any

from fake_telegram.errors import ApiError, bad_request

JSON = dict[str, Any]

_COMMAND = re.compile(r"(?<![\w/@])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@])")
_MENTION = re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{4,32}(?!\w)")
_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^>]*)?)>")
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def detect_entities(text: str) -> list[JSON]:
    """What a Telegram client marks in plain text: bot commands (anywhere) and @mentions."""
    found: list[tuple[int, int, str]] = []
    for kind, pattern in (("bot_command", _COMMAND), ("mention", _MENTION)):
        found.extend((m.start(), m.end(), kind) for m in pattern.finditer(text))
    found.sort()
    return [
        {"type": kind, "offset": utf16_len(text[:start]), "length": utf16_len(text[start:end])}
        for start, end, kind in found
    ]


def leading_command(text: str | None) -> tuple[str, str | None] | None:
    """("/cmd", "botname" or None) when the text starts with a command."""
    match = _COMMAND.match(text or "")
    if match is None:
        return None
    command, _, target = match.group(0).partition("@")
    return command, target or None


def mentions(text: str | None, username: str) -> bool:
    return any(m.group(0)[1:].lower() == username.lower() for m in _MENTION.finditer(text or ""))


def parse(text: str, parse_mode: str | None) -> tuple[str, list[JSON]]:
    """Plain text and entities for `text` under `parse_mode`, or 400 like Telegram for broken markup."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown(text, v2=True)
    if mode == "markdown":
        return _parse_markdown(text, v2=False)
    if mode:
        raise bad_request(f"unsupported parse_mode {parse_mode}")
    return text, []


def _entity_error(reason: str) -> ApiError:
    return bad_request(f"can't parse entities: {reason}")


class _Builder:
    """Collects plain text and open/close entity spans as the markup is read."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.entities: list[JSON] = []

    @property
    def offset(self) -> int:
        return utf16_len("".join(self.parts))

    def close(self, kind: str, start: int, extra: JSON) -> None:
        length = self.offset - start
        if length > 0:
            self.entities.append({"type": kind, "offset": start, "length": length, **extra})

    def result(self) -> tuple[str, list[JSON]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


def _parse_html(text: str) -> tuple[str, list[JSON]]:
    out = _Builder()
    stack: list[tuple[str, int, JSON]] = []
    pos = 0
    while pos < len(text):
        lt = text.find("<", pos)
        chunk = text[pos:] if lt < 0 else text[pos:lt]
        out.parts.append(html.unescape(chunk))
        if lt < 0:
            break
        match = _TAG.match(text, lt)
        byte_offset = len(text[:lt].encode())
        if match is None:
            raise _entity_error(f'Unsupported start tag "" at byte offset {byte_offset}')
        closing, name, attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
        if name not in _HTML_TAGS:
            raise _entity_error(f'Unsupported start tag "{name}" at byte offset {byte_offset}')
        if closing:
            if not stack or stack[-1][0] != name:
                raise _entity_error(f"Unexpected end tag at byte offset {byte_offset}")
            open_name, start, extra = stack.pop()
            out.close(_html_kind(open_name, extra), start, extra)
        else:
            stack.append((name, out.offset, _html_extra(name, attrs)))
        pos = match.end()
    if stack:
        raise _entity_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _html_extra(name: str, attrs: str) -> JSON:
    values = {
        m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(attrs)
    }
    if name == "a":
        return {"url": html.unescape(values.get("href", ""))}
    if name == "tg-emoji":
        return {"custom_emoji_id": values.get("emoji-id", "")}
    if name == "blockquote" and "expandable" in attrs:
        return {"expandable": True}
    return {}


def _html_kind(name: str, extra: JSON) -> str:
    if name == "blockquote" and extra.pop("expandable", False):
        return "expandable_blockquote"
    return _HTML_TAGS[name]


_MD_MARKS_V2 = (("```", "pre"), ("||", "spoiler"), ("__", "underline"), ("*", "bold"), ("_", "italic"),
                ("~", "strikethrough"), ("`", "code"))  # fmt: skip
_MD_MARKS_V1 = (("```", "pre"), ("*", "bold"), ("_", "italic"), ("`", "code"))


def _parse_markdown(text: str, *, v2: bool) -> tuple[str, list[JSON]]:
    """MarkdownV2 (strict escaping) or legacy Markdown; links as [text](url)."""
    out = _Builder()
    marks = _MD_MARKS_V2 if v2 else _MD_MARKS_V1
    stack: list[tuple[str, str, int, int]] = []  # (mark, kind, utf16 start, byte offset)
    link_start: int | None = None
    pos = 0
    while pos < len(text):
        char = text[pos]
        in_code = bool(stack) and stack[-1][1] in ("code", "pre")
        if char == "\\" and (v2 or in_code) and pos + 1 < len(text):
            out.parts.append(text[pos + 1])
            pos += 2
            continue
        mark = next((m for m, _ in marks if text.startswith(m, pos)), None)
        if in_code and mark != stack[-1][0]:
            mark = None
        if mark is not None:
            kind = dict(marks)[mark]
            if stack and stack[-1][0] == mark:
                _, kind, start, _ = stack.pop()
                out.close(kind, start, {})
            else:
                stack.append((mark, kind, out.offset, len(text[:pos].encode())))
            pos += len(mark)
            continue
        if char == "[" and not in_code:
            link_start = out.offset
            pos += 1
            continue
        if char == "]" and link_start is not None:
            close = text.find(")", pos)
            if not text.startswith("(", pos + 1) or close < 0:
                raise _entity_error(f"Can't find end of a URL at byte offset {len(text[:pos].encode())}")
            out.close("text_link", link_start, {"url": text[pos + 2 : close]})
            link_start, pos = None, close + 1
            continue
        if v2 and char in _MDV2_RESERVED and not in_code:
            raise _entity_error(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
        out.parts.append(char)
        pos += 1
    if stack:
        raise _entity_error(f"Can't find end of the entity starting at byte offset {stack[-1][3]}")
    return out.result()
