"""The one error type memgru raises for bad input or impossible configuration.

The CLI turns it into exit code 2 and one line on stderr; the dashboard shows its
message. Its message is a single sentence that names the problem and, where it
helps, the fix.
"""


class MemgruError(ValueError):
    """Bad user input (file, argument, configuration value) with a one-line message.

    Line breaks and runs of whitespace in the message (often from a quoted value or a library's error
    text) are collapsed to single spaces, so the message is always one line.

    Example:
        >>> str(MemgruError("bad.csv: timestamp 'a\\nb' is unreadable"))
        "bad.csv: timestamp 'a b' is unreadable"
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
