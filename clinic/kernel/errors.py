"""The root of Cuidar's error hierarchy (CONVENTIONS.md rule 6).

Each app subclasses ``ApplicationError`` in its own ``exceptions.py``; the API renders every
one of them as ``application/problem+json``, the admin as a message. ``message`` is
user-facing (translatable); ``fields`` maps a field name to its messages.
"""


class ApplicationError(Exception):
    """A business rule refused an action. Safe to show to the user."""

    status_code = 400
    code = "application_error"
    #: The problem type's short summary (RFC 9457 ``title``): one per ``code``, the same
    #: for every occurrence, translatable. ``None``: the title of the status.
    title = None

    def __init__(self, message, *, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
