"""Runners: each executes one ``Case`` and reports an ``Outcome`` (see ``ground.case``)."""
