"""The structured setting values behind Settings: credit packs, allow lists, proxy URLs, the log format.

Why a module of their own: each is parsed from one environment string with its own rules, and each must
print safely (a proxy URL may hold a password). `bot/config.py` only reads them; the parsers raise
ValueError with a short reason, which Settings.from_env collects into its one-line report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

LogFormat = Literal["text", "json"]
#: The Bot API's HTTP stack: aiohttp (bot/chat/botapi.py) or PTB's own HTTPXRequest.
TelegramHttp = Literal["aiohttp", "httpx"]
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
#: Telegram's limits for one Stars invoice (whole Stars); the credits side is a typo guard.
MAX_PACK_STARS = 100_000
MAX_PACK_CREDITS = 1_000_000


@dataclass(frozen=True)
class CreditPack:
    """`credits` for `stars` Telegram Stars; the invoice payload names both, so a changed price is caught."""

    credits: int
    stars: int

    @property
    def payload(self) -> str:
        return f"pack:{self.credits}:{self.stars}"

    @staticmethod
    def from_payload(payload: str) -> CreditPack | None:
        kind, _, rest = payload.partition(":")
        credits, _, stars = rest.partition(":")
        if kind != "pack" or not credits.isdigit() or not stars.isdigit():
            return None
        pack = CreditPack(int(credits), int(stars))
        return pack if pack.credits > 0 and pack.stars > 0 else None


def parse_packs(text: str) -> tuple[CreditPack, ...]:
    """`10:50,50:200` (credits:stars), cheapest first; every pack a different size."""
    packs: list[CreditPack] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        credits, sep, stars = part.partition(":")
        if not sep or not credits.isdigit() or not stars.isdigit():
            raise ValueError(f"{part!r} is not credits:stars")
        pack = CreditPack(int(credits), int(stars))
        if not (0 < pack.credits <= MAX_PACK_CREDITS and 0 < pack.stars <= MAX_PACK_STARS):
            raise ValueError(f"{part!r}: credits 1..{MAX_PACK_CREDITS}, stars 1..{MAX_PACK_STARS}")
        packs.append(pack)
    if len({p.credits for p in packs}) != len(packs):
        raise ValueError("two packs with the same number of credits")
    return tuple(sorted(packs, key=lambda p: p.credits))


@dataclass(frozen=True)
class AccessList:
    """Telegram ids and @usernames (matched without case); empty means "no restriction from this list"."""

    ids: frozenset[int] = frozenset()
    usernames: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.ids or self.usernames)

    def admits(self, id_: int | None, username: str | None) -> bool:
        if id_ is not None and id_ in self.ids:
            return True
        return username is not None and username.lower() in self.usernames


def parse_access_list(text: str) -> AccessList:
    ids: set[int] = set()
    names: set[str] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if part.lstrip("-").isdigit():
            ids.add(int(part))
        elif part.startswith("@") and len(part) > 1 and part[1:].replace("_", "").isalnum():
            names.add(part[1:].lower())
        else:
            raise ValueError(f"{part!r} is neither an id nor an @username")
    return AccessList(frozenset(ids), frozenset(names))


@dataclass(frozen=True)
class ProxyUrl:
    """A proxy URL whose password never prints (repr shows `user:***@host`)."""

    value: str = field(repr=False)

    @property
    def password(self) -> str:
        return urlsplit(self.value).password or ""

    def masked(self) -> str:
        parts = urlsplit(self.value)
        if not parts.password:
            return self.value
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    def __repr__(self) -> str:
        return f"ProxyUrl({self.masked()!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class DatabaseUrl:
    """DATABASE_URL: a `postgresql://` URL (its password never prints) or `sqlite:///path`."""

    value: str = field(repr=False)

    @property
    def password(self) -> str:
        return urlsplit(self.value).password or ""

    @property
    def sqlite_path(self) -> str | None:
        """The file of a `sqlite:///path` URL (`sqlite:////abs/path` for an absolute one); None otherwise."""
        return self.value.removeprefix("sqlite://")[1:] if self.value.startswith("sqlite:///") else None

    def masked(self) -> str:
        parts = urlsplit(self.value)
        if not parts.password:
            return self.value
        netloc = f"{parts.username}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.masked()!r})"

    __str__ = __repr__


def parse_database_url(text: str) -> DatabaseUrl:
    if text.startswith(("postgresql://", "postgres://", "sqlite:///")) and text.rstrip("/") not in (
        "sqlite:",
        "postgresql:",
        "postgres:",
    ):
        return DatabaseUrl(text)
    raise ValueError("use postgresql://user[:password]@host[:port]/database or sqlite:///path/to/file.db")


def parse_proxy(text: str) -> ProxyUrl:
    parts = urlsplit(text)
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise ValueError(f"use {', '.join(s + '://host:port' for s in PROXY_SCHEMES[::2])}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("bad port") from None
    return ProxyUrl(text)


def parse_telegram_http(text: str) -> TelegramHttp:
    value = text.lower()
    if value == "aiohttp":
        return "aiohttp"
    if value == "httpx":
        return "httpx"
    raise ValueError("use aiohttp or httpx")


def parse_log_format(text: str) -> LogFormat:
    value = text.lower()
    if value == "text":
        return "text"
    if value == "json":
        return "json"
    raise ValueError("use text or json")


@dataclass(frozen=True)
class Listen:
    """Where an HTTP server binds: `host:port` (WEBHOOK_LISTEN)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listen:
    """`0.0.0.0:8080`, `127.0.0.1:8443`, `[::]:8080` or a bare `:8080` (every interface)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("use host:port, e.g. 0.0.0.0:8080")
    return Listen(host.strip("[]") or "0.0.0.0", int(port))


def parse_port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError("a TCP port, 1-65535")
    return int(text)


#: Telegram's rule for setWebhook's secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -.
WEBHOOK_SECRET_RULE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
