"""Generated and mutated OTLP requests against a real buck's /v1/logs: every
answer is 200 (with partial success when records were left out) or a 4xx
with a google.rpc.Status, never a 5xx; the buck stays up, and what it
stored is exactly the records it acknowledged. HELIOS_FUZZ_EXAMPLES=N for a
long run."""

import gzip

from hypothesis import given
from hypothesis import strategies as st

from helios.buck import otlp
from helios.errors import EventError
from tests.fuzzing import fuzz
from tests.helpers import buck_events, buck_http
from tests.integration.test_otlp_http import JS, PB, answer, post, rpc_status
from tests.unit.test_otlp_fuzz import requests


def test_generated_and_mutated_requests_get_200_or_a_4xx_and_the_buck_stores_what_it_acked(buck):
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-max-field-bytes", "64",
                      "--http-max-fields", "6", "--durability", "written")
    url = buck_http(data)
    acked = [0]

    @fuzz(80, deadline_s=None)
    @given(requests(), st.sampled_from([PB, JS]), st.booleans(), st.integers(0, 3), st.data())
    def one(req, content_type, zipped, mutations, draw):
        kind = otlp.kind_of(content_type)
        body = bytearray(otlp.encode(req, kind))
        for _ in range(mutations):
            if body:
                at = draw.draw(st.integers(0, len(body) - 1))
                body[at] ^= 1 << draw.draw(st.integers(0, 7))
        try:  # what the buck should make of it
            sent = otlp.decode(bytes(body), kind)
        except EventError:
            sent = None
        status, got_headers, got = post(url, gzip.compress(bytes(body)) if zipped else bytes(body), content_type,
                                        **({"Content-Encoding": "gzip"} if zipped else {}))
        assert got_headers["Content-Type"].startswith(content_type)
        if sent is None:
            assert status == 400 and rpc_status(content_type, got).code == 3
            return
        assert status == 200, (status, got)
        ps = answer(content_type, got).partial_success
        total = sum(len(sl.log_records) for rl in sent.resource_logs for sl in rl.scope_logs)
        assert ps.rejected_log_records <= total and bool(ps.rejected_log_records) == bool(ps.error_message)
        acked[0] += total - ps.rejected_log_records
    one()
    events, clean = buck_events(data)
    assert clean and len(events) == acked[0]
