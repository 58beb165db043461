"""PostgreSQL migration operations shared by the apps."""

from django.contrib.postgres.operations import TrigramExtension, UnaccentExtension


class _KeptOnReverse:
    """An extension that unapplying a migration leaves installed. Several apps create the
    same extension (``CREATE EXTENSION IF NOT EXISTS``) and index with it; Django's
    operation drops it on the way back, which fails — or, with CASCADE, would take the
    other apps' indexes with it — while any of them still uses it."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return f"{super().describe()} (kept when unapplied)"


class KeptTrigramExtension(_KeptOnReverse, TrigramExtension):
    """pg_trgm, kept when a migration that needs it is unapplied."""


class KeptUnaccentExtension(_KeptOnReverse, UnaccentExtension):
    """unaccent, kept when a migration that needs it is unapplied."""
