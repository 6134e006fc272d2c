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
