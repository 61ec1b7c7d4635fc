"""A preview by the file's line, the number Check and every error speak in (data/quality/pick.py)."""

import pytest

from tunestudio.core.errors import UserError
from tunestudio.data.formats.load import load_file
from tunestudio.data.quality.pick import at_line


def _csv(tmp_path):
    p = tmp_path / "qa.csv"   # line 1 the header, line 3 empty of an answer (refused), line 5 blank
    p.write_text("instruction,output\nfirst,1\nsecond,\nthird,3\n\nfifth,5\n")
    return load_file(p)


def test_the_line_asked_is_the_line_in_the_file_not_the_count_of_usable_rows(tmp_path):
    loaded = _csv(tmp_path)
    lines = [r.line for r in loaded.records]
    assert 3 not in lines and lines[0] == 2                  # the refused row and the header are no records
    picked = at_line(loaded.records, 4, "qa.csv")
    assert picked.record.line == 4 and picked.asked_line is None and "third" in str(picked.record.messages)


def test_a_line_without_a_usable_row_shows_the_next_one_and_says_so(tmp_path):
    loaded = _csv(tmp_path)
    header = at_line(loaded.records, 1, "qa.csv")
    assert (header.record.line, header.asked_line) == (2, 1)
    refused = at_line(loaded.records, 3, "qa.csv")
    assert (refused.record.line, refused.asked_line) == (4, 3)


def test_a_line_past_the_rows_or_below_one_is_a_clear_error(tmp_path):
    loaded = _csv(tmp_path)
    last = loaded.records[-1].line
    with pytest.raises(UserError) as past:
        at_line(loaded.records, last + 1, "qa.csv")
    assert past.value.code == "line_past_rows" and f"(line {last})" in str(past.value)
    with pytest.raises(UserError) as below:
        at_line(loaded.records, -5, "qa.csv")
    assert below.value.code == "line_below_one"
