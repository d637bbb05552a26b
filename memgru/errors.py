"""The one error type memgru raises for bad input or impossible configuration.

The CLI turns it into exit code 2 and one line on stderr; the dashboard shows its
message. Its message is a single sentence that names the problem and, where it
helps, the fix.
"""


class MemgruError(ValueError):
    """Bad user input (file, argument, configuration value) with a one-line message."""
