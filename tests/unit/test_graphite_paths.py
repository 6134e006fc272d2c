"""Names as graphite path components (helios.services.graphite)."""

from helios.services.graphite import component, series


def test_dots_and_other_separators_become_underscores():
    assert component("web-1.example.com") == "web-1_example_com"
    assert component("postfix/smtp") == "postfix_smtp"
    assert component("a b\tc") == "a_b_c"


def test_an_empty_name_is_an_underscore():
    assert component("") == "_"


def test_a_series_is_environment_app_severity_name_host():
    assert series("prod", "sshd", 3, "web-1.example.com") == "prod.sshd.err.web-1_example_com"
    assert series("prod", "", None, "h") == "prod._.unknown.h"
