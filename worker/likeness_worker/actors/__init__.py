"""Dramatiq: the broker, one actor per task kind, and middleware for cross-cutting concerns."""
