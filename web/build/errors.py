"""The one error the site build raises: the CLI turns it into a one-line message."""


class BuildError(Exception):
    """The site cannot be built as asked (missing input, failed gate, npm failure)."""


class GateFailed(BuildError):
    """The image did not pass the harness on v86: publishing it would ship a broken demo."""
