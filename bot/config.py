"""Typed, frozen settings read once from the environment (and an optional `.env`).

Why one place: every bad variable is reported together in one line at start-up, instead of a traceback
from deep inside a handler the first time a value is used. Secrets are kept as `Secret` so that printing
the settings (or an exception holding them) never shows a token or key.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config_values import (
    WEBHOOK_SECRET_RULE,
    AccessList,
    CreditPack,
    DatabaseUrl,
    Listen,
    LogFormat,
    ProxyUrl,
    TelegramHttp,
    parse_access_list,
    parse_database_url,
    parse_listen,
    parse_log_format,
    parse_packs,
    parse_port,
    parse_proxy,
    parse_telegram_http,
)

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org/bot"
DEFAULT_VOLC_ENDPOINT = "https://visual.volcengineapi.com"
DEFAULT_DB_PATH = "data/portrait-bot.db"
DEFAULT_WEBHOOK_LISTEN = Listen("0.0.0.0", 8080)

T = TypeVar("T")


class ConfigError(Exception):
    """Raised with one human-readable line naming every missing or invalid variable."""


@dataclass(frozen=True)
class Secret:
    """A string that never shows itself in repr/str, so it cannot leak through logs or tracebacks."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')" if self.value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True)
class Settings:
    telegram_bot_token: Secret
    volc_access_key: Secret
    volc_secret_key: Secret
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    volc_endpoint: str = DEFAULT_VOLC_ENDPOINT
    db_path: Path = Path(DEFAULT_DB_PATH)
    #: DATABASE_URL when it names PostgreSQL (None: SQLite at db_path; `sqlite:///path` sets db_path).
    database_url: DatabaseUrl | None = None
    admin_ids: frozenset[int] = frozenset()
    admin_chat_id: int | None = None
    #: At most one admin alert of a kind per this many seconds; the next says how many were held back.
    admin_alert_interval: float = 300.0
    daily_free_quota: int = 3
    quota_timezone: str = "UTC"
    max_concurrent_tasks: int = 4
    upstream_qps: float = 2.0
    #: The bot token's Bot API messages a second (Telegram's overall limit is about 30); on PostgreSQL for
    #: all processes together (bot/ops/ratelimit.py).
    telegram_send_rate: float = 30.0
    max_active_tasks_per_user: int = 1
    task_deadline_seconds: float = 300.0
    status_edit_interval: float = 3.0
    #: Groups get fewer edits: each counts against the group's ~20 messages a minute (bot/pacing.py).
    group_status_edit_interval: float = 10.0
    #: Seconds between the job side's messages to one chat after a short burst (0: no pacing).
    chat_send_interval: float = 1.0
    max_prompt_length: int = 300
    #: Images being downloaded and checked at once, whole process: each holds up to 20 MB while it runs.
    max_concurrent_downloads: int = 4
    #: Updates per minute one user may send (token bucket; 0 = no limit) and how many may come at once.
    user_rate_limit: float = 30.0
    user_rate_burst: int = 10
    log_level: str = "INFO"
    worker_id: str = "portrait-bot"
    #: Packs sold for Telegram Stars (`/buy`); empty: no selling at all.
    credit_packs: tuple[CreditPack, ...] = ()
    #: Who to contact about payments and exhausted quotas (`@name`, a URL or an e-mail); shown as given.
    support_contact: str = ""
    #: Credits both sides get for a new user joining through an invite link; 0 turns invites off.
    referral_bonus: int = 0
    #: Private mode: when either list is set, only these users / chats (and ADMIN_IDS) are served.
    allowed_users: AccessList = field(default_factory=AccessList)
    allowed_chats: AccessList = field(default_factory=AccessList)
    #: Proxies: the Bot API's (bot and getUpdates requests) and, separately, the upstream API's.
    telegram_proxy: ProxyUrl | None = None
    volc_proxy: ProxyUrl | None = None
    #: The Bot API's HTTP stack; `httpx` is PTB's own, kept as a fallback (and used with a socks5 proxy).
    telegram_http: TelegramHttp = "aiohttp"
    log_format: LogFormat = "text"
    #: Webhook mode (bot/ops/webhook.py): the public URL given to setWebhook (empty: long polling), where
    #: the HTTP server binds, and the secret Telegram sends back in X-Telegram-Bot-Api-Secret-Token.
    webhook_url: str = ""
    webhook_listen: Listen = DEFAULT_WEBHOOK_LISTEN
    webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    #: /healthz, /readyz and /metrics for polling and worker processes (None: not served).
    metrics_port: int | None = None
    #: How long a task lease lasts unless renewed (renewed every 5 s): how soon a dead worker's tasks move.
    task_lease_seconds: float = 90.0
    #: False for `run --no-jobs`: this process takes updates and creates tasks, and another process (a
    #: `worker`) runs them. Not from the environment: it is the process's role, chosen on its command line.
    run_jobs: bool = True

    @property
    def database(self) -> str | Path:
        """What Store.open gets: the PostgreSQL URL when DATABASE_URL names one, else the SQLite file."""
        return self.database_url.value if self.database_url is not None else self.db_path

    @property
    def database_variable(self) -> str:
        """The variable that chose the database, for messages about it."""
        return "DATABASE_URL" if self.database_url is not None else "PORTRAIT_BOT_DB"

    #: Benchmarks: where the event-loop lag probe (bot/ops/looplag.py) writes its figures; unset: no probe.
    lag_probe_file: Path | None = None

    @property
    def telegram_file_url(self) -> str:
        """Files live under the same host's `/file/bot` (Bot API convention, also for self-hosted servers)."""
        base = self.telegram_api_url.rstrip("/")
        if base.endswith("/bot"):
            return base[: -len("/bot")] + "/file/bot"
        return base + "/file/bot"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        require_telegram: bool = True,
        require_volc: bool = True,
        dotenv: bool = True,
    ) -> Settings:
        """Build settings; raise ConfigError listing every problem at once."""
        source = dict(_load_dotenv() if dotenv and env is None else {})
        source.update(os.environ if env is None else env)
        problems: list[str] = []
        reader = _Reader(source, problems)

        token = reader.secret("TELEGRAM_BOT_TOKEN", required=require_telegram)
        access_key = reader.secret("VOLC_ACCESSKEY", required=require_volc)
        secret_key = reader.secret("VOLC_SECRETKEY", required=require_volc)
        # DATABASE_URL wins over PORTRAIT_BOT_DB; its sqlite:///path form is another way to name the file.
        database_url = reader.parse("DATABASE_URL", None, parse_database_url)
        db_path = Path(source.get("PORTRAIT_BOT_DB") or DEFAULT_DB_PATH)
        if database_url is not None and database_url.sqlite_path is not None:
            db_path, database_url = Path(database_url.sqlite_path), None
        settings = cls(
            telegram_bot_token=token,
            volc_access_key=access_key,
            volc_secret_key=secret_key,
            telegram_api_url=reader.url("TELEGRAM_API_URL", DEFAULT_TELEGRAM_API_URL),
            volc_endpoint=reader.url("VOLC_ENDPOINT", DEFAULT_VOLC_ENDPOINT),
            db_path=db_path,
            database_url=database_url,
            admin_ids=reader.parse("ADMIN_IDS", frozenset(), _id_set),
            admin_chat_id=reader.parse("ADMIN_CHAT_ID", None, int),
            admin_alert_interval=reader.number("ADMIN_ALERT_INTERVAL", 300.0, float, 0.0, 86_400.0),
            daily_free_quota=reader.number("DAILY_FREE_QUOTA", 3, int, 0, 1_000_000),
            quota_timezone=reader.parse("QUOTA_TIMEZONE", "UTC", _timezone),
            max_concurrent_tasks=reader.number("MAX_CONCURRENT_TASKS", 4, int, 1, 1000),
            upstream_qps=reader.number("UPSTREAM_QPS", 2.0, float, 0.01, 1000.0),
            telegram_send_rate=reader.number("TELEGRAM_SEND_RATE", 30.0, float, 1.0, 1000.0),
            max_active_tasks_per_user=reader.number("MAX_ACTIVE_TASKS_PER_USER", 1, int, 1, 100),
            task_deadline_seconds=reader.number("TASK_DEADLINE_SECONDS", 300.0, float, 10.0, 86_400.0),
            status_edit_interval=reader.number("STATUS_EDIT_INTERVAL", 3.0, float, 0.0, 600.0),
            group_status_edit_interval=reader.number("GROUP_STATUS_EDIT_INTERVAL", 10.0, float, 0.0, 600.0),
            chat_send_interval=reader.number("CHAT_SEND_INTERVAL", 1.0, float, 0.0, 60.0),
            max_prompt_length=reader.number("MAX_PROMPT_LENGTH", 300, int, 1, 2000),
            max_concurrent_downloads=reader.number("MAX_CONCURRENT_DOWNLOADS", 4, int, 1, 64),
            user_rate_limit=reader.number("USER_RATE_LIMIT", 30.0, float, 0.0, 6000.0),
            user_rate_burst=reader.number("USER_RATE_BURST", 10, int, 1, 1000),
            log_level=reader.parse("LOG_LEVEL", "INFO", _log_level),
            # Task leases are held under this name: stable across restarts so a restarted (even killed)
            # bot takes its own tasks back at once; distinct per worker when several share a database.
            worker_id=source.get("WORKER_ID", "").strip() or socket.gethostname(),
            credit_packs=reader.parse("CREDIT_PACKS", (), parse_packs),
            support_contact=(source.get("SUPPORT_CONTACT") or "").strip(),
            referral_bonus=reader.number("REFERRAL_BONUS", 0, int, 0, 1_000_000),
            allowed_users=reader.parse("ALLOWED_USERS", AccessList(), parse_access_list),
            allowed_chats=reader.parse("ALLOWED_CHATS", AccessList(), parse_access_list),
            telegram_proxy=reader.parse("TELEGRAM_PROXY", None, parse_proxy),
            volc_proxy=reader.parse("VOLC_PROXY", None, parse_proxy),
            telegram_http=reader.parse("TELEGRAM_HTTP", "aiohttp", parse_telegram_http),
            log_format=reader.parse("LOG_FORMAT", "text", parse_log_format),
            webhook_url=reader.url("WEBHOOK_URL", "") if reader.has("WEBHOOK_URL") else "",
            webhook_listen=reader.parse("WEBHOOK_LISTEN", DEFAULT_WEBHOOK_LISTEN, parse_listen),
            webhook_secret=reader.secret(
                "WEBHOOK_SECRET", required=reader.has("WEBHOOK_URL"), why=" with WEBHOOK_URL"
            ),
            metrics_port=reader.parse("METRICS_PORT", None, parse_port),
            task_lease_seconds=reader.number("TASK_LEASE_SECONDS", 90.0, float, 10.0, 3600.0),
            lag_probe_file=Path(source["LAG_PROBE_FILE"]) if source.get("LAG_PROBE_FILE") else None,
        )
        if settings.webhook_secret and not WEBHOOK_SECRET_RULE.match(settings.webhook_secret.value):
            problems.append("WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return settings

    @property
    def private_mode(self) -> bool:
        return bool(self.allowed_users or self.allowed_chats)

    def secret_values(self) -> list[str]:
        """Every secret text the logs must mask: the token, the keys and any proxy password."""
        values = [
            self.telegram_bot_token.value,
            self.volc_access_key.value,
            self.volc_secret_key.value,
            self.webhook_secret.value,
        ]
        values.extend(proxy.password for proxy in (self.telegram_proxy, self.volc_proxy) if proxy is not None)
        values.append(self.database_url.password if self.database_url is not None else "")
        return [value for value in values if value]

    def describe(self) -> dict[str, str]:
        """Every setting as text, secrets masked: what `portrait-bot run` logs at start."""
        return {f.name: repr(getattr(self, f.name)) for f in fields(self)}


class _Reader:
    """Collects problems instead of raising at the first one, so the operator fixes all in one go."""

    def __init__(self, source: Mapping[str, str], problems: list[str]) -> None:
        self._source = source
        self._problems = problems

    def has(self, name: str) -> bool:
        return self._raw(name) is not None

    def _raw(self, name: str) -> str | None:
        value = self._source.get(name)
        return value.strip() if value is not None and value.strip() else None

    def secret(self, name: str, *, required: bool, why: str = "") -> Secret:
        value = self._raw(name)
        if value is None and required:
            self._problems.append(f"{name} is required{why}")
        return Secret(value or "")

    def url(self, name: str, default: str) -> str:
        value = self._raw(name) or default
        if not value.startswith(("http://", "https://")):
            self._problems.append(f"{name} must start with http:// or https://")
        return value.rstrip("/")

    def parse(self, name: str, default: T, convert: Callable[[str], T]) -> T:
        value = self._raw(name)
        if value is None:
            return default
        try:
            return convert(value)
        except (ValueError, ZoneInfoNotFoundError) as exc:
            self._problems.append(f"{name}={value!r} is invalid ({exc or 'bad value'})")
            return default

    def number(self, name: str, default: T, convert: Callable[[str], T], low: T, high: T) -> T:
        value = self.parse(name, default, convert)
        if not low <= value <= high:  # type: ignore[operator]
            self._problems.append(f"{name} must be between {low} and {high}")
            return default
        return value


def _id_set(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.replace(" ", "").split(",") if part)


def _timezone(text: str) -> str:
    ZoneInfo(text)
    return text


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _load_dotenv() -> dict[str, str]:
    """Read `.env` from the working directory without touching os.environ (real env wins)."""
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(".env").items() if v is not None}
