"""Reading Kconfig fragments and checking that a finished .config honours them.

``merge_config.sh`` and ``make olddefconfig`` drop any option whose dependencies are not
met, without failing. A kernel missing, say, TMPFS boots and then breaks /init much later,
so after olddefconfig every line of the fragment is compared with the result.
"""

from __future__ import annotations

import re
from typing import Dict, List

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
NOT_SET = "n"


def parse(text: str) -> Dict[str, str]:
    """Option name -> value (``y``, ``m``, a number or quoted string, or ``n`` if unset)."""
    options: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        match = _SET.match(line)
        if match:
            options[match.group(1)] = match.group(2)
            continue
        match = _UNSET.match(line)
        if match:
            options[match.group(1)] = NOT_SET
    return options


def mismatches(fragment: Dict[str, str], config: Dict[str, str]) -> List[str]:
    """One line per fragment option the final config does not have as asked.

    An option absent from .config counts as unset, which is how Kconfig writes options
    whose menu is hidden.
    """
    problems = []
    for name, wanted in sorted(fragment.items()):
        got = config.get(name, NOT_SET)
        if got != wanted:
            problems.append(f"{name}: asked {wanted}, got {got}")
    return problems
