"""The coverage maps shown three ways: a rich terminal grid, a self-contained HTML page, JSON."""

from __future__ import annotations

import html
from typing import Any, Dict, List, Optional

from differential.coverage.opcode_map import (
    DIVERGENT,
    ESCAPE,
    IMPLEMENTED,
    MISSING,
    NOT_ISA,
    PREFIX,
    STATUSES,
    TESTED,
    Cell,
    Slot,
    totals,
)

MAPS = (("one-byte opcodes", False), ("two-byte opcodes (0F xx)", True))
STYLE = {DIVERGENT: "bold white on red", TESTED: "black on green", IMPLEMENTED: "black on yellow",
         MISSING: "white on grey30", NOT_ISA: "grey50", PREFIX: "cyan", ESCAPE: "cyan"}
COLOUR = {DIVERGENT: "#d33", TESTED: "#5b5", IMPLEMENTED: "#ec4", MISSING: "#999",
          NOT_ISA: "#eee", PREFIX: "#9cd", ESCAPE: "#9cd"}


def _short(slot: Slot, cell: Cell) -> str:
    if slot.status in (PREFIX, ESCAPE):
        return "pfx" if slot.status == PREFIX else "esc"
    if not slot.forms:
        return "" if slot.status == NOT_ISA else "?"
    mnemonic = slot.forms[0].split("_")[0][:6]
    return mnemonic + ("*" if cell.digits else "")


def _detail(slot: Slot) -> str:
    text = slot.status
    if slot.cases:
        text += f", {slot.cases} cases"
    if slot.divergent:
        text += f", {slot.divergent} divergent"
    if slot.known:
        text += f", known divergence: {', '.join(slot.known)}"
    if slot.why_untested:
        text += f" ({slot.why_untested})"
    return text


def maps_json(maps: Dict[str, List[Cell]], cross_cutting: List[str],
              groups: Optional[Dict[str, Dict[str, object]]] = None) -> Dict[str, Any]:
    """The maps (an x87 ESC cell's register forms under ``registers``, keyed by the ModRM
    byte in hex) and, when given, the rows per family of forms (``groups``)."""
    def slot_json(slot: Slot) -> Dict[str, Any]:
        return {"status": slot.status, "forms": slot.forms, "cases": slot.cases,
                "divergent": slot.divergent, "known": slot.known,
                "why_untested": slot.why_untested}
    report: Dict[str, Any] = {name: {"totals": dict(totals(cells)), "cells": [
        {"opcode": cell.label, **slot_json(cell.slot),
         "digits": {str(d): slot_json(s) for d, s in cell.digits.items()},
         "registers": {f"{m:02X}": slot_json(s) for m, s in cell.registers.items()}}
        for cell in cells]} for name, cells in maps.items()}
    report["known_for_all_forms"] = cross_cutting
    if groups is not None:
        report["groups"] = groups
    return report


def print_groups(groups: Dict[str, Dict[str, object]]) -> None:
    """One row per family of forms (user, system, x87)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="forms by group")
    columns = ("forms", "implemented", "tested", "divergent", "untestable", "cases")
    table.add_column("group")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_column("cases by oracle")
    for group, row in groups.items():
        oracles = row["oracles"]
        table.add_row(group, *(str(row[c]) for c in columns),
                      ", ".join(f"{o} {n}" for o, n in sorted(oracles.items())))  # type: ignore
    Console(highlight=False).print(table)


def print_maps(maps: Dict[str, List[Cell]], cross_cutting: List[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    for title, cells in maps.items():
        table = Table(title=f"{title} (mnemonic, cases)", show_lines=False, padding=(0, 0))
        table.add_column("", style="bold")
        for low in range(16):
            table.add_column(f"x{low:X}", justify="center", min_width=7)
        for high in range(16):
            row = [Text(f"{high:X}x")]
            for cell in cells[high * 16:high * 16 + 16]:
                count = f"\n{cell.slot.cases}" if cell.slot.cases else "\n"
                row.append(Text(_short(cell.slot, cell) + count, style=STYLE[cell.slot.status]))
            table.add_row(*row)
        console.print(table)
        groups = Table(title=f"{title}: groups by ModRM reg (/digit)")
        groups.add_column("opcode")
        for digit in range(8):
            groups.add_column(f"/{digit}", min_width=7)
        for cell in cells:
            if cell.digits:
                groups.add_row(cell.label, *(Text(_short(s, cell).rstrip("*") or "-",
                                                  style=STYLE[s.status])
                                             for s in cell.digits.values()))
        console.print(groups)
        escapes = [cell for cell in cells if cell.registers]
        if escapes:
            x87 = Table(title=f"{title}: x87 register forms (ModRM C0-FF: reg rows, rm columns)")
            x87.add_column("ModRM")
            for rm in range(8):
                x87.add_column(f"rm {rm}", min_width=7)
            for cell in escapes:
                for reg in range(8):
                    slots = [cell.registers[0xC0 | reg << 3 | rm] for rm in range(8)]
                    x87.add_row(f"{cell.label} {0xC0 | reg << 3:02X}", *(
                        Text((s.forms[0].split("_")[0][:7] if s.forms else "-"),
                             style=STYLE[s.status]) for s in slots))
            console.print(x87)
        counts = totals(cells)
        console.print(", ".join(f"{s}: {counts[s]}" for s in STATUSES))
    console.print("legend: " + ", ".join(f"[{STYLE[s]}] {s} [/]" for s in STATUSES))
    if cross_cutting:
        console.print(f"known divergences for all forms (under conditions): "
                      f"{', '.join(cross_cutting)}")


def _html_cell(cell: Cell, slot: Slot, text: str) -> str:
    tip = html.escape(f"{cell.label}: {', '.join(slot.forms) or '-'} - {_detail(slot)}")
    count = f"<br><small>{slot.cases}</small>" if slot.cases else ""
    return (f'<td class="s{STATUSES.index(slot.status)}" title="{tip}">'
            f"{html.escape(text)}{count}</td>")


def maps_html(maps: Dict[str, List[Cell]], note: str = "") -> str:
    """One page, no external assets: styles inline, details in each cell's tooltip."""
    css = "".join(f".s{i}{{background:{COLOUR[s]}}}" for i, s in enumerate(STATUSES))
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>x86lab coverage</title>",
             "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}",
             "td,th{border:1px solid #ccc;padding:2px 4px;font:12px monospace;",
             "text-align:center;min-width:4.5em}", css, "</style></head><body>",
             "<h1>x86lab opcode coverage</h1>", f"<p>{html.escape(note)}. A cell shows the "
             "mnemonic and the number of differential cases; hover for forms and details; "
             "* marks a group opcode (rows by ModRM reg below).</p>",
             "<p>" + " ".join(f'<span class="s{i}">&nbsp;{s}&nbsp;</span>'
                              for i, s in enumerate(STATUSES)) + "</p>"]
    for title, cells in maps.items():
        counts = totals(cells)
        parts.append(f"<h2>{html.escape(title)}</h2><p>"
                     + ", ".join(f"{s}: {counts[s]}" for s in STATUSES) + "</p>")
        parts.append("<table><tr><th></th>" + "".join(f"<th>x{i:X}</th>" for i in range(16))
                     + "</tr>")
        for high in range(16):
            parts.append(f"<tr><th>{high:X}x</th>")
            parts.extend(_html_cell(c, c.slot, _short(c.slot, c))
                         for c in cells[high * 16:high * 16 + 16])
            parts.append("</tr>")
        parts.append("</table><h3>groups by ModRM reg</h3><table><tr><th>opcode</th>"
                     + "".join(f"<th>/{d}</th>" for d in range(8)) + "</tr>")
        for cell in (c for c in cells if c.digits):
            parts.append(f"<tr><th>{cell.label}</th>" + "".join(
                _html_cell(cell, s, _short(s, cell).rstrip("*") or "-")
                for s in cell.digits.values()) + "</tr>")
        parts.append("</table>")
        escapes = [c for c in cells if c.registers]
        if escapes:
            parts.append("<h3>x87 register forms (ModRM C0-FF)</h3><table><tr><th>ModRM</th>"
                         + "".join(f"<th>rm {r}</th>" for r in range(8)) + "</tr>")
            for cell in escapes:
                for reg in range(8):
                    first = 0xC0 | reg << 3
                    parts.append(f"<tr><th>{cell.label} {first:02X}</th>" + "".join(
                        _html_cell(cell, s, s.forms[0].split("_")[0][:7] if s.forms else "-")
                        for s in (cell.registers[first | rm] for rm in range(8))) + "</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
