"""The CallbackContext every handler receives, with typed access to the services and the caller's language.

Why a custom context: handlers would otherwise fish `context.bot_data["services"]` out of an untyped dict
and re-read the user's language from the store in every handler. The gate handler (group -1) upserts the
user once per update and stores the record and language here; PTB hands the same context object to every
later handler of that update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.replies import DEFAULT_LANGUAGE

if TYPE_CHECKING:
    from bot.services import Services
    from storage import User

SERVICES_KEY = "services"


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """CallbackContext plus `services`, `lang` and `account` (the stored user of this update)."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)
        self.lang: str = DEFAULT_LANGUAGE
        self.account: User | None = None

    @property
    def services(self) -> Services:
        """The store, client, runner and settings opened in post_init."""
        services = self.application.bot_data.get(SERVICES_KEY)
        if services is None:
            raise RuntimeError("services are not open yet (post_init has not run)")
        return services  # type: ignore[no-any-return]


CONTEXT_TYPES: ContextTypes[BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any]] = ContextTypes(
    context=BotContext
)
