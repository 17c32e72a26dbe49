"""The lifecycle of one generation, as a state machine driven from the database.

It never imports `telegram`: it talks to the chat through `bot.jobs.notifier.Notifier`. The package
init imports nothing, so `from bot.jobs.notifier import ...` costs no runner.
"""
