import pytest

from gmot.data.tokens import OOVError, TokenTable


def test_build_order_and_specials(tmp_path):
    t = TokenTable.build(["你好 你", "好们", "我"])
    # counts: 你 2, 好 2, 们 1, 我 1 -> frequency desc, ties by code point
    assert t.symbols[:3] == ["<blk>", "<sos/eos>", "<unk>"]
    assert t.symbols[3:] == sorted(["你", "好"]) + sorted(["们", "我"])
    assert (t.blank_id, t.sos_eos_id, t.unk_id) == (0, 1, 2)
    assert len(t) == 7
    cp = TokenTable.build(["我你好们"], order="codepoint")
    assert cp.symbols[3:] == sorted("我你好们")


def test_save_load_roundtrip_encode_decode(tmp_path):
    t = TokenTable.build(["今天天气很好"])
    p = t.save(tmp_path / "lang" / "tokens.txt")
    lines = p.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "<blk> 0" and lines[3] == "天 3"
    t2 = TokenTable.load(p)
    assert t2.symbols == t.symbols
    ids = t2.encode("今天 很好")
    assert ids == [t2["今"], t2["天"], t2["很"], t2["好"]]
    assert t2.decode([0, 1] + ids) == "今天很好"


def test_oov_policies():
    t = TokenTable.build(["你好"])
    assert t.encode("你X好") == [t["你"], 2, t["好"]]
    assert t.encode("你X好", oov="skip") == [t["你"], t["好"]]
    with pytest.raises(OOVError, match="X"):
        t.encode("你X好", oov="error")
    assert t.oov_chars("你X Y") == ["X", "Y"]
    with pytest.raises(ValueError, match="out of range"):
        t.decode([99])


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare.sh"):
        TokenTable.load(tmp_path / "missing.txt")
    bad = tmp_path / "t.txt"
    bad.write_text("<blk> 0\n<sos/eos> 1\n<unk> 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="without gaps"):
        TokenTable.load(bad)
    with pytest.raises(ValueError, match="first three"):
        TokenTable(["a", "b", "c"])


def test_decode_turns_sentencepiece_marks_into_spaces(tmp_path):
    table = TokenTable(["<blk>", "<sos/eos>", "<unk>", "\u2581ni", "hao", "\u2581ma"])
    assert table.decode([3, 4, 0, 5]) == "nihao ma"
    chars = TokenTable(["<blk>", "<sos/eos>", "<unk>", "你", "好"])
    assert chars.decode([3, 1, 4, 2]) == "你好<unk>"
