"""hash_str: stable FNV-1a values (seeds must not change between runs or versions)."""

from gmot.data.seeding import hash_str


def test_hash_str_is_fnv1a():
    assert hash_str("") == 2166136261
    assert hash_str("a") == 0xE40C292C  # FNV-1a 32-bit test vector
    assert hash_str("foobar") == 0xBF9CF968
