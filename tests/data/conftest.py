import pytest


@pytest.fixture(scope="session")
def tiny_hsk(tmp_path_factory):
    """A 12-utterance synthetic corpus (8 train / 2 dev / 2 test) in AISHELL layout."""
    from gmot.data.hsk_corpus import synthesize_corpus

    root = tmp_path_factory.mktemp("hsk")
    counts = synthesize_corpus(
        root, num_train=8, num_dev=2, num_test=2, utts_per_speaker=4, max_level=1, seed=3
    )
    return root, counts
