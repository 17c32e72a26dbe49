"""The Telegram side of a job: status messages, delivering results, per-chat pacing, buttons.

`bot.chat.notifier.TelegramNotifier` implements the `bot.jobs.notifier.Notifier` seam.
"""
