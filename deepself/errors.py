"""The one exception deepself raises for bad input, so that callers can tell it from a bug."""


class DeepselfError(Exception):
    """Bad input: a file, sample, or config key that cannot be used, and why.

    The message always names the offending file, sample id or config key, so that the
    command line can print it as it is and exit non-zero.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
