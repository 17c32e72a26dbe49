"""Admin operations shared by the chat commands (bot/handlers/admin.py) and `portrait-bot admin`."""
