"""Providers built into dsrs-core (registered through dsrs-core's own entry point)."""
