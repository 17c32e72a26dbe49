"""`python -m bot [--webhook]` runs the bot, like `portrait-bot run`; `python -m bot worker` (any command)."""

import sys

from bot.cli import main

args = sys.argv[1:]
sys.exit(main(args if args and not args[0].startswith("-") else ["run", *args]))
