"""/invite and the `/start ref_<code>` deep link: both sides get REFERRAL_BONUS credits, once.

Why the "new user" test uses the gate's record: the gate upserted the sender moments ago, and a user whose
`first_seen` equals `last_seen` was created by this very update. Anyone who talked to the bot before (even
one /help) is not new, so a link cannot be used to farm bonuses with old accounts; the store checks the
other rules (not oneself, once per invited user, no history) in the same transaction as the credits.
The inviter hears about it in their own language; if they blocked the bot, only the telling is lost.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.replies import pick_language, t
from bot.replies.plural import credits_text
from storage import Claim, ClaimOutcome

log = logging.getLogger(__name__)

DEEP_LINK_PREFIX = "ref_"

_REFUSALS = {
    ClaimOutcome.SELF: "invite.self",
    ClaimOutcome.NOT_NEW: "invite.not_new",
    ClaimOutcome.ALREADY: "invite.not_new",
    ClaimOutcome.UNKNOWN_CODE: "invite.unknown",
    ClaimOutcome.INVITER_BANNED: "invite.unknown",
}


def invite_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={DEEP_LINK_PREFIX}{code}"


async def invite(update: Update, context: BotContext) -> None:
    """The user's invite link, what it gives, and how many joined through it so far."""
    user = update.effective_user
    bonus = context.services.settings.referral_bonus
    if user is None:
        return
    if bonus <= 0:
        await say(update, context, "invite.off")
        return
    referrals = context.services.store.referrals
    code = await referrals.code_for(user.id)
    await say(
        update, context, "invite.text", bonus=credits_text(bonus, context.lang),
        link=invite_link(context.bot.username, code), count=await referrals.invited_count(user.id),
    )  # fmt: skip


async def claim_from_start(update: Update, context: BotContext) -> Claim | None:
    """Claim the bonus of a `/start ref_<code>`; None when there is no invite link (or invites are off)."""
    bonus = context.services.settings.referral_bonus
    args = context.args or []
    account = context.account
    if bonus <= 0 or not args or not args[0].startswith(DEEP_LINK_PREFIX) or account is None:
        return None
    first_update = account.first_seen == account.last_seen
    code = args[0].removeprefix(DEEP_LINK_PREFIX)[:64]
    referrals = context.services.store.referrals
    return await referrals.claim(account.id, code, bonus=bonus, first_update=first_update)


async def announce(update: Update, context: BotContext, claim: Claim) -> None:
    """Tell the new user what the link did, and the inviter that a friend joined."""
    if claim.outcome != ClaimOutcome.CREDITED:
        await say(update, context, _REFUSALS[claim.outcome])
        return
    lang = context.lang
    await say(
        update, context, "invite.welcome", bonus=credits_text(claim.bonus, lang),
        balance=credits_text(claim.invitee_credits, lang),
    )  # fmt: skip
    await _tell_inviter(update, context, claim)


async def _tell_inviter(update: Update, context: BotContext, claim: Claim) -> None:
    assert claim.inviter_id is not None
    inviter = await context.services.store.users.get(claim.inviter_id)
    lang = pick_language(inviter.language if inviter is not None else None)
    friend = update.effective_user.first_name if update.effective_user is not None else ""
    text = t(
        "invite.inviter", lang, name=friend, bonus=credits_text(claim.bonus, lang),
        balance=credits_text(claim.inviter_credits, lang),
    )  # fmt: skip
    try:
        await context.bot.send_message(claim.inviter_id, text)
    except TelegramError as exc:  # blocked the bot, or never opened it: the credits are theirs anyway
        log.info("could not tell inviter %s about their bonus: %s", claim.inviter_id, exc)
