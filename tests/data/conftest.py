import pytest


@pytest.fixture(scope="session")
def tiny_hsk(tmp_path_factory):
    """A 24-utterance synthetic corpus (20 train / 2 dev / 2 test) in AISHELL layout."""
    from gmot.data.hsk_corpus import synthesize_corpus

    root = tmp_path_factory.mktemp("hsk")
    counts = synthesize_corpus(
        root, num_train=20, num_dev=2, num_test=2, utts_per_speaker=5, max_level=1, seed=3
    )
    return root, counts
