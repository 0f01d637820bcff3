"""The decoding-method registry (gmot.decoding.methods): both scripts list every method, unknown
names fail with the known ones listed, and result-file names are those of before the registry."""

import argparse

import pytest

import gmot.decoding.decode_main as decode_main
import gmot.decoding.pretrained_main as pretrained_main
from gmot.decoding.methods import METHODS, REGISTRY, decode_batch, get_method

# setting_name of every method as decode_main computed it before the registry (if-chain),
# for the default options and for a second set of values
DEFAULTS = dict(
    beam_size=4,
    max_sym_per_frame=1,
    beam=20.0,
    max_contexts=8,
    max_states=64,
    attention_scale=1.0,
    ctc_rescore_scale=1.0,
)
OTHER = dict(
    beam_size=7,
    max_sym_per_frame=3,
    beam=4.5,
    max_contexts=5,
    max_states=32,
    attention_scale=0.3,
    ctc_rescore_scale=2.5,
)
EXPECTED = {
    "greedy_search": (
        "greedy_search_max_sym_per_frame_1",
        "greedy_search_max_sym_per_frame_3",
    ),
    "beam_search": ("beam_search_beam_size_4", "beam_search_beam_size_7"),
    "modified_beam_search": (
        "modified_beam_search_beam_size_4",
        "modified_beam_search_beam_size_7",
    ),
    "fast_beam_search": (
        "fast_beam_search_beam_20.0_max_contexts_8",
        "fast_beam_search_beam_4.5_max_contexts_5",
    ),
    "ctc_greedy_search": ("ctc_greedy_search", "ctc_greedy_search"),
    "ctc_prefix_beam_search": (
        "ctc_prefix_beam_search_beam_size_4",
        "ctc_prefix_beam_search_beam_size_7",
    ),
    "ctc_prefix_beam_search_attention_rescoring": (
        "ctc_prefix_beam_search_attention_rescoring_beam_size_4_attention_scale_1.0",
        "ctc_prefix_beam_search_attention_rescoring_beam_size_7_attention_scale_0.3",
    ),
    "modified_beam_search_attention_rescoring": (
        "modified_beam_search_attention_rescoring_beam_size_4_attention_scale_1.0",
        "modified_beam_search_attention_rescoring_beam_size_7_attention_scale_0.3",
    ),
    "modified_beam_search_ctc_rescoring": (
        "modified_beam_search_ctc_rescoring_beam_size_4_ctc_rescore_scale_1.0",
        "modified_beam_search_ctc_rescoring_beam_size_7_ctc_rescore_scale_2.5",
    ),
}


def test_methods_unchanged():
    assert METHODS == tuple(EXPECTED)  # same names, same order as before
    assert decode_main.METHODS == METHODS
    assert decode_main.TRANSDUCER_METHODS == (
        "greedy_search",
        "beam_search",
        "modified_beam_search",
        "fast_beam_search",
    )
    assert decode_main.CTC_METHODS == ("ctc_greedy_search", "ctc_prefix_beam_search")
    assert decode_main.RESCORING_METHODS == (
        "ctc_prefix_beam_search_attention_rescoring",
        "modified_beam_search_attention_rescoring",
    )


@pytest.mark.parametrize("method", METHODS)
def test_setting_name_unchanged(method):
    for options, expected in zip((DEFAULTS, OTHER), EXPECTED[method]):
        params = argparse.Namespace(decoding_method=method, **options)
        assert decode_main.setting_name(params) == expected


def test_parsers_default_to_the_same_options():
    d = decode_main.get_parser().parse_args([])
    p = pretrained_main.get_parser().parse_args(["--checkpoint", "x.pt", "a.wav"])
    for name, value in {"decoding_method": "greedy_search", **DEFAULTS}.items():
        assert getattr(d, name) == getattr(p, name) == value, name


@pytest.mark.parametrize("module", [decode_main, pretrained_main], ids=["decode", "pretrained"])
def test_help_lists_every_method(module):
    # argparse wraps lines at spaces and after hyphens: compare without any whitespace
    text = "".join(module.get_parser().format_help().split())
    for m in REGISTRY.values():
        assert "".join(f"{m.name}: {m.help}".split()) in text, m.name


@pytest.mark.parametrize("module", [decode_main, pretrained_main], ids=["decode", "pretrained"])
def test_unknown_method_is_refused_by_the_parser(module, capsys):
    argv = ["--decoding-method", "no_such_search", "--checkpoint", "x.pt", "a.wav"]
    if module is decode_main:
        argv = argv[:2]
    with pytest.raises(SystemExit):
        module.get_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert "no_such_search" in err
    for name in METHODS:
        assert name in err


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="'no_such_search' is not one of") as info:
        get_method("no_such_search")
    for name in METHODS:
        assert name in str(info.value)
    params = argparse.Namespace(decoding_method="no_such_search")
    with pytest.raises(ValueError, match="modified_beam_search_attention_rescoring"):
        decode_batch(None, None, None, params)


@pytest.mark.parametrize("method", METHODS)
def test_missing_head_is_named_before_the_encoder_runs(method):
    class NoHeads:
        decoder = joiner = ctc_output = attention_decoder = None

        def forward_encoder(self, x, x_lens):
            raise AssertionError("the encoder must not run")

    params = argparse.Namespace(decoding_method=method, **DEFAULTS)
    with pytest.raises(ValueError, match=f"--decoding-method {method} needs a model with"):
        decode_batch(NoHeads(), None, None, params)


def test_blank_penalty_names_the_results_and_is_refused_where_unused():
    import argparse

    from gmot.decoding.methods import add_decoding_method_arguments, get_method

    parser = argparse.ArgumentParser()
    add_decoding_method_arguments(parser)
    plain = parser.parse_args([])
    assert get_method("greedy_search").setting_name(plain) == "greedy_search_max_sym_per_frame_1"
    p = parser.parse_args(["--blank-penalty", "1.5"])
    assert get_method("greedy_search").setting_name(p) == (
        "greedy_search_max_sym_per_frame_1_blank_penalty_1.5"
    )
    assert get_method("modified_beam_search").setting_name(p).endswith("_blank_penalty_1.5")
    for name in ("beam_search", "ctc_greedy_search"):
        with pytest.raises(ValueError, match="--blank-penalty applies to"):
            get_method(name).setting_name(p)


def test_ctc_weight_names_the_results_needs_the_ctc_head_and_is_refused_where_unused():
    from gmot.decoding.methods import add_decoding_method_arguments

    parser = argparse.ArgumentParser()
    add_decoding_method_arguments(parser)
    p = parser.parse_args(["--ctc-weight", "1.5", "--ctc-joint", "frame"])
    assert get_method("greedy_search").setting_name(p) == (
        "greedy_search_max_sym_per_frame_1_ctc_weight_1.5"
    )
    assert get_method("modified_beam_search").setting_name(p) == (
        "modified_beam_search_beam_size_4_ctc_weight_1.5"
    )
    for name in ("beam_search", "ctc_greedy_search", "fast_beam_search"):
        with pytest.raises(ValueError, match="--ctc-weight applies to"):
            get_method(name).setting_name(p)

    class TransducerOnly:
        decoder = joiner = object()
        ctc_output = None

        def forward_encoder(self, x, x_lens):
            raise AssertionError("the encoder must not run")

    get_method("greedy_search").check_model(TransducerOnly(), parser.parse_args([]))
    for name in ("greedy_search", "modified_beam_search"):
        p.decoding_method = name
        with pytest.raises(ValueError, match="needs a model with a CTC head"):
            decode_batch(TransducerOnly(), None, None, p)
    with pytest.raises(ValueError, match="--ctc-weight must be >= 0"):
        get_method("greedy_search").setting_name(parser.parse_args(["--ctc-weight", "-1"]))

    # --ctc-joint prefix (the default): named when the weight is on
    p = parser.parse_args(["--ctc-weight", "1.5"])
    assert get_method("greedy_search").setting_name(p) == (
        "greedy_search_max_sym_per_frame_1_ctc_weight_1.5_ctc_joint_prefix"
    )
    assert get_method("modified_beam_search").setting_name(p).endswith("_ctc_joint_prefix")
    with pytest.raises(ValueError, match="--ctc-weight applies to"):
        get_method("ctc_greedy_search").setting_name(p)
    off = parser.parse_args(["--ctc-joint", "prefix"])  # weight 0: nothing to join
    assert get_method("greedy_search").setting_name(off) == "greedy_search_max_sym_per_frame_1"
    with pytest.raises(SystemExit):
        parser.parse_args(["--ctc-joint", "sequence"])
