"""One exception type whose message is the single line a user sees."""


class CctvError(Exception):
    """An input problem the user can fix; the CLI prints it as one line and exits non-zero."""
