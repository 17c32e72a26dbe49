"""What users read: the message catalogues (`en.json`, `zh.json`), `t()`, and the one table from every
error to its reply (`bot.replies.errors`).

Only the catalogue functions are re-exported here, so importing `t` never pulls in the error table (which
imports the job seam and api_client).
"""

from bot.replies.catalog import DEFAULT_LANGUAGE, LANGUAGES, catalogue, pick_language, t

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "catalogue", "pick_language", "t"]
