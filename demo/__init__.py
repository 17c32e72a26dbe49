"""`make demo`: the emulator plus a scripted chat through the fake Bot API, offline."""
