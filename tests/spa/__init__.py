"""The admin screen, static and in a real browser."""
