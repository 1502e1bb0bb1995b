"""tools/table.py: the command line's plain-text tables."""

from __future__ import annotations

from tools.table import format_table


def test_columns_are_padded_to_the_widest_cell_under_a_rule() -> None:
    text = format_table(["ID", "NAME"], [[1, "Floor 2"], [22, None]])
    assert text.splitlines() == ["ID  NAME", "--  -------", "1   Floor 2", "22  -"]


def test_without_a_rule_and_without_rows() -> None:
    assert format_table(["A", "B"], [["x", "yy"]], rule=False).splitlines() == ["A  B", "x  yy"]
    assert format_table(["A"], []) == "(none)"
