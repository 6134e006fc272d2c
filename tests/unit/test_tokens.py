"""Bearer tokens: made random, stored as hashes, checked against every hash."""

from helios import tokens


def test_a_new_token_is_random_url_safe_and_hashes_to_the_stored_form():
    a, b = tokens.new_token(), tokens.new_token()
    assert a != b and len(a) >= 43 and a.replace("-", "").replace("_", "").isalnum()
    h = tokens.hash_token(a)
    assert h.startswith("sha256:") and tokens.is_hash(h) and h == tokens.hash_token(a)
    assert not tokens.is_hash(a) and not tokens.is_hash("sha256:" + "G" * 64)


def test_check_token_finds_its_hash_among_others_and_refuses_near_misses():
    token = tokens.new_token()
    stored = [tokens.hash_token(tokens.new_token()) for _ in range(3)] + [tokens.hash_token(token)]
    assert tokens.check_token(token, stored)
    assert not tokens.check_token(token[:-1], stored)
    assert not tokens.check_token(token + " ", stored)
    assert not tokens.check_token(token, [])
    assert not tokens.check_token(tokens.hash_token(token), stored)  # the hash is not the token


def test_the_config_takes_token_hashes_per_environment_and_names_a_malformed_one():
    import pytest

    from helios import config
    from helios.errors import ConfigError

    good = f"prod={tokens.hash_token(tokens.new_token())}"
    every = f"*={tokens.hash_token(tokens.new_token())}"
    assert config.load(None, {"buck.http_tokens": (good, every)}).buck.http_tokens == (good, every)
    with pytest.raises(ConfigError) as e:
        config.load(None, {"buck.http_tokens": (good, "prod=" + tokens.new_token()), "buck.http_tls_cert": "c.pem"})
    problems = "\n".join(e.value.problems)
    assert "buck.http_tokens[1]" in problems and "sha256:" in problems
    assert "buck.http_tls_key: http_tls_cert and http_tls_key go together" in problems


def test_bearer_reads_the_token_of_an_authorization_header_and_refuses_bytes_that_are_not_ascii():
    import pytest

    from helios.errors import HeaderError

    token = tokens.new_token()
    assert tokens.bearer(f"Bearer {token}") == token
    assert tokens.bearer(f"  bearer   {token} ") == token
    for nothing in (None, "", "Basic dXNlcjpwdw==", "Bearer", "Bearer   "):
        assert tokens.bearer(nothing) is None
    # Servers decode header bytes as Latin-1 (werkzeug) or UTF-8 with escapes (aiohttp).
    for bad in ("Bearer \xff\xfe", b"Bearer \xff".decode("utf-8", "surrogateescape"), "Bearer t\u00e9", "\x80",
                "Bearer a\x00b"):
        with pytest.raises(HeaderError, match="printable ASCII"):
            tokens.bearer(bad)
    # A hash of any str, even one of escaped bytes, is made (and matches nothing).
    assert tokens.hash_token(b"\xff".decode("utf-8", "surrogateescape")).startswith("sha256:")
    assert tokens.hash_token("\ud800") != tokens.hash_token(token)
