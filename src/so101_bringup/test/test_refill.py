"""Where the importer puts steps a journal lacks: before the first later record of the same actor."""

from so101_bringup.records.refill import refilled


def test_each_fill_goes_before_the_first_later_record_of_its_actor():
    records = [(("a", 1, 0), b"a10"), (("b", 1, 0), b"b10"), (None, b"junk"), (("a", 1, 2), b"a12"),
               (("b", 1, 3), b"b13"), (("a", 2, 0), b"a20")]  # fmt: skip
    fills = [(("a", 1, 1), b"a11"), (("b", 1, 2), b"b12"), (("b", 1, 1), b"b11"), (("a", 2, 1), b"a21"),
             (("c", 0, 0), b"c00")]  # fmt: skip
    assert list(refilled(records, fills)) == [
        b"a10", b"b10", b"junk", b"a11", b"a12", b"b11", b"b12", b"b13", b"a20", b"a21", b"c00",
    ]  # fmt: skip
    assert list(refilled(records, [])) == [raw for _, raw in records]
