"""Payments in Telegram Stars, users' side: paying an invoice, and Telegram delivering an update again.

`pay()` is what the user's "Pay" button does: Telegram asks the bot a pre_checkout_query; the charge (and
the successful_payment message) happens only when the bot answers ok (fake_telegram/payments.py).
`redeliver()` replays a message update as Telegram does after a bot died before confirming it.
"""

from __future__ import annotations

from fake_telegram.driver import UserRef, UserSide
from fake_telegram.model import Charge, FakeMessage, PreCheckout


class PayingSide(UserSide):
    def pay(self, user: UserRef, invoice_message: FakeMessage) -> str:
        """Press "Pay" under an invoice the bot sent; returns the pre_checkout_query id."""
        person = self._user(user)
        invoice = self.payments.invoices.get((invoice_message.chat.id, invoice_message.message_id))
        if invoice is None:
            raise LookupError(f"message #{invoice_message.message_id} is not an invoice")
        query_id = str(7_000_000_000 + self.payments.number())
        self.payments.queries[query_id] = PreCheckout(query_id, person, invoice, self.clock())
        self.note(invoice_message.chat, f"{person.first_name} pressed [Pay {invoice.total_amount} "
                                        f"{invoice.currency}] on #{invoice_message.message_id}")  # fmt: skip
        self.push_update("pre_checkout_query", {
            "id": query_id, "from": person.to_json(), "currency": invoice.currency,
            "total_amount": invoice.total_amount, "invoice_payload": invoice.payload,
        })  # fmt: skip
        return query_id

    def pre_checkout(self, query_id: str) -> PreCheckout | None:
        """The query, once the bot answered it (None while unanswered)."""
        query = self.payments.queries.get(query_id)
        return query if query is not None and query.answered else None

    def charge_for(self, query_id: str) -> Charge | None:
        """The charge an answered-ok query made (None if refused or not answered yet)."""
        return next((c for c in self.payments.charges.values() if c.query_id == query_id), None)

    def invoices(self, chat_id: int) -> list[FakeMessage]:
        """The invoice messages the bot sent in a chat, oldest first."""
        return [inv.message for (cid, _), inv in self.payments.invoices.items() if cid == chat_id]

    def redeliver(self, message: FakeMessage) -> int:
        """Deliver a message update again (new update_id, same message), as after a lost confirmation."""
        self.note(message.chat, f"(Telegram delivers #{message.message_id} again)")
        return self.push_update("message", message.to_json())
