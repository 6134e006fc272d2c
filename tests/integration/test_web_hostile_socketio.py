"""A socket.io message that cannot be read (a hostile or broken client) is
one warning line in the web app's log, not a traceback per message, and the
app goes on serving. (Found by the strict teardown: the socket.io fuzz test
left tracebacks in the log.)"""

import json

import requests

from tests.helpers import poll_until
from tests.integration.webpage import start_web


def test_unreadable_socket_io_messages_are_one_line_each_and_the_app_goes_on(procs, fake_buck):
    web = start_web(procs, fake_buck().endpoint)
    base = web.url + "socket.io/?EIO=4&transport=polling"
    s = requests.Session()
    opened = s.get(base, timeout=10).text
    sid = json.loads(opened[opened.index("{"):])["sid"]
    for body in ("4j", "4{", "49999999999999999999999"):   # engine.io messages no socket.io packet reads
        s.post(f"{base}&sid={sid}", data=body, timeout=10)
    poll_until(lambda: web.proc.output().count("could not be read") >= 3, what="a line per unreadable message")
    assert web.status()["bucks"]  # still serving
    # The teardown fails the test if the log holds a traceback.
