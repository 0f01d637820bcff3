import io
import random

import kaldialign
import pytest

from gmot.decoding import compute_cer, count_errors, save_results, text_to_units, write_error_stats

RESULTS = [
    ("utt1", "我 爱 北京", "我爱南京市"),  # 1 substitution (北->南), 1 insertion (市)
    ("utt2", "你好世界", "你世界"),  # 1 deletion (好)
]


def test_units_remove_spaces():
    assert text_to_units(" 我 爱\t北京 ") == ["我", "爱", "北", "京"]
    assert text_to_units("ni hao", cer=False) == ["ni", "hao"]
    assert text_to_units("我<unk>京 a") == ["我", "<unk>", "京", "a"]
    c = count_errors(text_to_units("我爱北京"), text_to_units("我<unk>北京"))
    assert (c.subs, c.ins, c.dels) == (1, 0, 0)


def test_hand_counted_cer():
    c = count_errors(text_to_units("我 爱 北京"), text_to_units("我爱南京市"))
    assert (c.subs, c.ins, c.dels, c.ref_len) == (1, 1, 0, 4)
    total = compute_cer([r for _, r, _ in RESULTS], [h for _, _, h in RESULTS])
    assert (total.subs, total.ins, total.dels, total.ref_len) == (1, 1, 1, 8)
    assert total.error_rate == pytest.approx(37.5)
    empty = compute_cer(["", "好"], ["", ""])
    assert empty.error_rate == pytest.approx(100.0)


def test_totals_match_kaldialign_edit_distance():
    rng = random.Random(0)
    chars = "天地人你我他"
    for _ in range(50):
        r = "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))
        h = "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))
        c = count_errors(list(r), list(h))
        ref = kaldialign.edit_distance(list(r), list(h))
        assert c.errors == ref["total"]


def test_errs_file_content():
    f = io.StringIO()
    total = write_error_stats(f, "test-greedy", RESULTS)
    text = f.getvalue()
    assert total.errors == 3
    lines = text.splitlines()
    assert lines[0] == "%CER = 37.50"
    assert lines[1] == (
        "Errors: 1 insertions, 1 deletions, 1 substitutions, over 8 reference characters "
        "(6 correct)"
    )
    assert "utt1:\t我 爱 (北->南) 京 (*->市)" in lines
    assert "utt2:\t你 (好->*) 世 界" in lines
    subs = lines[lines.index("SUBSTITUTIONS: count ref -> hyp") + 1]
    assert subs == "1   北 -> 南"
    dels = lines[lines.index("DELETIONS: count ref") + 1]
    assert dels == "1   好"
    ins = lines[lines.index("INSERTIONS: count hyp") + 1]
    assert ins == "1   市"


def test_save_results_files(tmp_path):
    rates = save_results(
        tmp_path,
        "test",
        {"greedy_search": RESULTS, "beam_size_4": [("utt1", "我爱北京", "我爱北京")]},
        suffix="epoch-3-avg-1",
    )
    assert rates == {"greedy_search": pytest.approx(37.5), "beam_size_4": 0.0}
    recogs = (tmp_path / "recogs-test-greedy_search-epoch-3-avg-1.txt").read_text().splitlines()
    assert recogs[:2] == ["utt1:\tref=我 爱 北京", "utt1:\thyp=我爱南京市"]
    assert (
        (tmp_path / "errs-test-beam_size_4-epoch-3-avg-1.txt").read_text().startswith("%CER = 0.00")
    )
    summary = (tmp_path / "wer-summary-test-epoch-3-avg-1.txt").read_text().splitlines()
    assert summary == ["settings\tCER", "beam_size_4\t0.00", "greedy_search\t37.50"]


def test_summary_keeps_other_settings_of_earlier_runs(tmp_path):
    """Decoding again with another setting adds its row; the same setting is replaced."""
    save_results(tmp_path, "dev", {"greedy_search": RESULTS}, suffix="epoch-3-avg-1")
    perfect = [("utt1", "我爱北京", "我爱北京")]
    save_results(tmp_path, "dev", {"greedy_search_blank_penalty_1.0": perfect}, "epoch-3-avg-1")
    summary = tmp_path / "wer-summary-dev-epoch-3-avg-1.txt"
    assert summary.read_text().splitlines() == [
        "settings\tCER",
        "greedy_search_blank_penalty_1.0\t0.00",
        "greedy_search\t37.50",
    ]
    save_results(tmp_path, "dev", {"greedy_search": perfect}, suffix="epoch-3-avg-1")
    assert sorted(summary.read_text().splitlines()[1:]) == [
        "greedy_search\t0.00",
        "greedy_search_blank_penalty_1.0\t0.00",
    ]
    other = tmp_path / "wer-summary-dev-epoch-4-avg-1.txt"  # another model: its own file
    save_results(tmp_path, "dev", {"greedy_search": RESULTS}, suffix="epoch-4-avg-1")
    assert other.read_text().splitlines()[1:] == ["greedy_search\t37.50"]


def test_forget_results_removes_only_the_settings_rows_and_files(tmp_path):
    from gmot.decoding.scoring import forget_results

    perfect = [("utt1", "我爱北京", "我爱北京")]
    save_results(tmp_path, "dev", {"greedy_search": RESULTS}, suffix="epoch-3-avg-1")
    save_results(tmp_path, "dev", {"greedy_search_ctc_weight_1.5": perfect}, "epoch-3-avg-1")
    summary = tmp_path / "wer-summary-dev-epoch-3-avg-1.txt"
    removed = forget_results(tmp_path, "dev", ["greedy_search"], "epoch-3-avg-1")
    assert not (tmp_path / "errs-dev-greedy_search-epoch-3-avg-1.txt").exists()
    assert not (tmp_path / "recogs-dev-greedy_search-epoch-3-avg-1.txt").exists()
    assert (tmp_path / "errs-dev-greedy_search_ctc_weight_1.5-epoch-3-avg-1.txt").is_file()
    assert summary in removed
    assert summary.read_text().splitlines() == [
        "settings\tCER",
        "greedy_search_ctc_weight_1.5\t0.00",
    ]
    # nothing of that setting left: nothing to do; the last row gone: the summary goes too
    assert forget_results(tmp_path, "dev", ["greedy_search"], "epoch-3-avg-1") == []
    forget_results(tmp_path, "dev", ["greedy_search_ctc_weight_1.5"], "epoch-3-avg-1")
    assert not summary.exists()


def test_word_mode():
    f = io.StringIO()
    total = write_error_stats(f, "words", [("u", "ni hao ma", "ni hau ma")], cer=False)
    assert (total.subs, total.ins, total.dels, total.ref_len) == (1, 0, 0, 3)
    assert f.getvalue().startswith("%WER = 33.33\n")
    assert "u:\tni (hao->hau) ma" in f.getvalue().splitlines()
