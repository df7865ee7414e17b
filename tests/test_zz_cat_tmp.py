import cProfile
import io
import pstats
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from workflows_app.bench.pipeline_support import portal_user
from workflows_app.bench.seed import CATALOGUE_SQL
from workflows_app.roles import Role


@pytest.mark.django_db(transaction=True)
def test_cat(settings):
    settings.DEBUG = False
    with connection.cursor() as c:
        c.execute(CATALOGUE_SQL, {"prefix": "#cat_", "count": 2000})
    u = portal_user("ad", Role.ADMIN)
    c = Client()
    c.force_login(u)
    url = "/workflows/?dependency=DEVICE&trigger=API"
    for _ in range(3):
        c.get(url)
        c.get("/healthz")
    t = time.perf_counter()
    for _ in range(40):
        c.get("/healthz")
    print(f"healthz {(time.perf_counter() - t) * 25:.1f} ms")
    t = time.perf_counter()
    for _ in range(40):
        r = c.get(url)
    print(f"catalogue {(time.perf_counter() - t) * 25:.1f} ms, {len(r.content)} bytes")
    open("/tmp/prof/cat.html", "wb").write(r.content)
    with CaptureQueriesContext(connection) as q:
        c.get(url)
    for x in q.captured_queries:
        print("   ", x["time"], x["sql"][:200])
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(20):
        c.get(url)
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(45)
    print(s.getvalue())
    raise AssertionError
