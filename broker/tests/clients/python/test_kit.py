"""Self-checks of the comparator every round-trip test relies on: it must catch each kind of loss."""

import pytest

from kit import Rec, assert_same, gen_records


def _got(sent):
    offs = {}
    out = []
    for r in sent:
        o = offs.get(r.partition, 0)
        offs[r.partition] = o + 1
        out.append(Rec(r.partition, r.key, r.value, r.headers, r.timestamp, o))
    return out


def test_identical_passes():
    sent = gen_records(200, 4, seed=1)
    assert_same(sent, _got(sent))


@pytest.mark.parametrize("damage", ["drop", "duplicate", "reorder", "flip_byte", "null_vs_empty", "header",
                                    "timestamp", "offset_gap"])
def test_damage_is_caught(damage):
    sent = gen_records(200, 4, seed=2)
    got = _got(sent)
    p0 = [i for i, r in enumerate(got) if r.partition == 0]
    i, j = p0[5], p0[6]
    r = got[i]
    if damage == "drop":
        del got[i]
    elif damage == "duplicate":
        got.insert(i, r)
    elif damage == "reorder":
        got[i], got[j] = Rec(0, got[j].key, got[j].value, got[j].headers, got[j].timestamp, r.offset), \
            Rec(0, r.key, r.value, r.headers, r.timestamp, got[j].offset)
    elif damage == "flip_byte":
        v = bytearray(r.value or b"\x00")
        v[0] ^= 1
        got[i] = Rec(0, r.key, bytes(v), r.headers, r.timestamp, r.offset)
    elif damage == "null_vs_empty":
        k = next(x for x in p0 if got[x].key is None)
        got[k] = Rec(0, b"", got[k].value, got[k].headers, got[k].timestamp, got[k].offset)
    elif damage == "header":
        k = next(x for x in p0 if got[x].headers)
        got[k] = Rec(0, got[k].key, got[k].value, got[k].headers[1:], got[k].timestamp, got[k].offset)
    elif damage == "timestamp":
        got[i] = Rec(0, r.key, r.value, r.headers, r.timestamp + 1, r.offset)
    elif damage == "offset_gap":
        got[j:] = [Rec(x.partition, x.key, x.value, x.headers, x.timestamp,
                       x.offset + 1 if x.partition == 0 else x.offset) for x in got[j:]]
    with pytest.raises(AssertionError):
        assert_same(sent, got)
