"""Tests of larder_client against a real server.

Run by the project's `npm test` (test/client-python.test.ts starts the server and sets LARDER_TEST_URL and
LARDER_TEST_KEYS); by hand: LARDER_TEST_URL=http://... LARDER_TEST_KEYS='{"read":..,"write":..,"admin":..}'
python3 -m unittest discover -s clients/python/tests
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from larder_client import HistoricalResponse, LarderClient, LarderError, OnlineResponse, to_int64  # noqa: E402

URL = os.environ.get("LARDER_TEST_URL", "")
KEYS = json.loads(os.environ.get("LARDER_TEST_KEYS", "{}"))
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _parse(ts: str) -> dt.datetime:
    """An RFC 3339 answer ("…:31.5Z") as a datetime; fromisoformat before 3.11 wants 0, 3 or 6 fraction digits."""
    head, _, frac = ts.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(head + (f".{frac.ljust(6, '0')}" if frac else "") + "+00:00")


def client(**kw) -> LarderClient:
    kw.setdefault("api_key", KEYS.get("admin"))
    return LarderClient(URL, **kw)


class FakeColumn:
    def __init__(self, values):
        self.values = values

    def tolist(self):
        return list(self.values)


class FakeDataFrame:
    """Looks like a pandas DataFrame where the client reads one (columns, df[c].tolist())."""

    def __init__(self, data):
        self.data = data
        self.columns = list(data)

    def __getitem__(self, c):
        return FakeColumn(self.data[c])


class CountingProxy:
    """A proxy in front of the server that counts requests and answers 503 to the first `fail503`."""

    def __init__(self, target: str, fail503: int):
        self.seen: list = []
        self.answered = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.forward()

            def do_POST(self):
                self.forward()

            def forward(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else None
                proxy.seen.append(self.headers.get("x-request-id"))
                proxy.answered += 1
                if proxy.answered <= fail503:
                    out = json.dumps({"error": {"code": "unavailable", "message": "online store down", "details": []}})
                    self.reply(503, out.encode())
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(target + self.path, data=body, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(req) as r:
                        self.reply(r.status, r.read())
                except urllib.error.HTTPError as e:
                    self.reply(e.code, e.read())

            def reply(self, status, data):
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@unittest.skipUnless(URL, "LARDER_TEST_URL is not set")
class ClientTest(unittest.TestCase):
    def test_push_then_lookup_by_features_rows_and_dict(self):
        c = client(api_key=KEYS["write"])
        pushed = c.push(
            "driver_stats_push",
            {
                "driver_id": [7101, 7102],
                "event_timestamp": [NOW - dt.timedelta(seconds=60), (NOW - dt.timedelta(seconds=30)).isoformat()],
                "conv_rate": [0.25, 0.5],
                "acc_rate": [0.75, None],
            },
        )
        self.assertEqual(pushed, {"rows": 2, "written": 2, "skipped_older": 0})
        answer = c.get_online_features(
            features=["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats_fresh:acc_rate"],
            entities={"driver_id": [7101, "7102", 7999]},
        )
        self.assertIsInstance(answer, OnlineResponse)
        self.assertEqual(answer["metadata"]["feature_names"], ["driver_id", "conv_rate", "acc_rate"])
        self.assertEqual(len(answer), 3)
        self.assertEqual(
            answer.to_rows(),
            [
                {"driver_id": 7101, "conv_rate": 0.25, "acc_rate": 0.75},
                {"driver_id": 7102, "conv_rate": 0.5, "acc_rate": None},
                {"driver_id": 7999, "conv_rate": None, "acc_rate": None},
            ],
        )
        self.assertEqual(answer.to_dict()["conv_rate"], [0.25, 0.5, None])
        status = answer.to_rows_with_status()
        self.assertEqual(status[1]["acc_rate"]["status"], "NULL_VALUE")
        self.assertEqual(status[2]["conv_rate"]["status"], "NOT_FOUND")

    def test_dataframe_like_input(self):
        c = client(api_key=KEYS["write"])
        df = FakeDataFrame(
            {"driver_id": [7201], "event_timestamp": [NOW.replace(tzinfo=None)], "conv_rate": [0.125], "acc_rate": [float("nan")]}
        )
        self.assertEqual(c.push("driver_stats_push", df)["rows"], 1)
        rows = c.get_online_features(
            features=["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats_fresh:acc_rate"],
            entities=FakeDataFrame({"driver_id": [7201]}),
        ).to_rows()
        self.assertEqual(rows, [{"driver_id": 7201, "conv_rate": 0.125, "acc_rate": None}])

    def test_materialize_then_service_lookup_with_project(self):
        c = client(project="demo")
        jobs = c.materialize(
            NOW - dt.timedelta(days=3), NOW + dt.timedelta(hours=1), feature_views=["driver_hourly_stats"]
        )["jobs"]
        self.assertEqual([j["status"] for j in jobs], ["succeeded"])
        incr = c.materialize_incremental(NOW + dt.timedelta(hours=1), feature_views=["driver_hourly_stats"])
        self.assertEqual(incr["jobs"][0]["status"], "succeeded")
        self.assertIn(jobs[0]["id"], [j["id"] for j in c.list_materialization_jobs(feature_view="driver_hourly_stats")])
        self.assertEqual(c.get_materialization_job(jobs[0]["id"])["status"], "succeeded")
        answer = c.get_online_features(
            feature_service="driver_activity", entities={"driver_id": [1001, 1002]}, full_feature_names=True
        )
        self.assertEqual(
            answer.feature_names,
            ["driver_id", "driver_hourly_stats__conv_rate", "driver_hourly_stats__avg_daily_trips"],
        )
        self.assertEqual(answer["results"][1]["statuses"], ["PRESENT", "PRESENT"])
        self.assertIsInstance(answer.to_rows()[0]["driver_hourly_stats__avg_daily_trips"], int)

    def test_partitions_freshness_verify_stats(self):
        c = client(project="demo", api_key=KEYS["write"])
        end = NOW + dt.timedelta(hours=1)
        jobs = c.materialize(NOW - dt.timedelta(days=8), end, feature_views=["customer_profile"], partitions=2)["jobs"]
        self.assertEqual([(j["feature_view"], j["status"], j["rows_written"]) for j in jobs], [("customer_profile", "succeeded", 20)])
        self.assertEqual([(p["index"], p["status"]) for p in jobs[0]["partitions"]], [(0, "succeeded"), (1, "succeeded")])
        self.assertEqual(sum(p["rows_written"] for p in jobs[0]["partitions"]), 20)
        incr = c.materialize_incremental(end, feature_views=["customer_profile"], partitions=2)["jobs"]
        self.assertEqual((incr[0]["status"], incr[0]["rows_written"], len(incr[0]["partitions"])), ("succeeded", 0, 2))

        reader = client(project="demo", api_key=KEYS["read"])
        pushed_at = NOW - dt.timedelta(seconds=5)
        c.push("driver_stats_push", {"driver_id": [7401], "event_timestamp": [pushed_at], "conv_rate": [0.5], "acc_rate": [0.5]})
        fresh = reader.freshness("driver_hourly_stats_fresh")
        self.assertGreaterEqual(_parse(fresh["last_push_event_timestamp"]), pushed_at)
        self.assertIsNone(fresh["last_materialized_end"])
        self.assertIsNotNone(fresh["newest_offline_event_timestamp"])
        self.assertTrue(0 <= fresh["lag_seconds"] < 600, fresh)
        materialized = reader.freshness("customer_profile")
        self.assertEqual(_parse(materialized["last_materialized_end"]), end)
        self.assertIsNone(materialized["last_push_event_timestamp"])
        self.assertLess(materialized["lag_seconds"], 0)  # the window ended in the future
        with self.assertRaises(LarderError) as missing_view:
            reader.freshness("no_such_view")
        self.assertEqual(missing_view.exception.status, 404)

        consistent = reader.verify(feature_views=["customer_profile"])
        self.assertIsInstance(_parse(consistent["as_of"]), dt.datetime)
        self.assertEqual(
            consistent["results"],
            [{"feature_view": "customer_profile", "sampled": 20, "matching": 20, "mismatching": 0, "missing_online": 0, "examples": []}],
        )
        never = reader.verify(feature_views=["driver_hourly_stats_fresh"], sample=10)["results"][0]
        self.assertEqual((never["sampled"], never["matching"], never["mismatching"], never["missing_online"]), (10, 0, 0, 10))
        self.assertEqual((never["examples"][0]["issue"], never["examples"][0]["online_status"]), ("missing_online", "NOT_FOUND"))

        # 50 drivers x 168 hours in the batch table; one hour of it is 50 rows
        stats = reader.stats("driver_hourly_stats")
        self.assertEqual((stats["rows"], stats["start_ts"], stats["end_ts"]), (8400, None, None))
        conv = next(f for f in stats["features"] if f["name"] == "conv_rate")
        self.assertEqual((conv["dtype"], conv["count"], conv["null_count"], conv["top_values"]), ("float32", 8400, 0, None))
        self.assertTrue(0 <= conv["min"] <= conv["max"] <= 1, conv)
        self.assertEqual(sum(b["count"] for b in conv["histogram"]), 8400)
        hour = NOW.replace(minute=0, second=0) - dt.timedelta(hours=5)
        window = reader.stats("driver_hourly_stats", start_ts=hour, end_ts=(hour + dt.timedelta(hours=1)).isoformat())
        self.assertEqual(window["rows"], 50)
        self.assertEqual(_parse(window["start_ts"]), hour)
        self.assertTrue(all(f["count"] == 50 for f in window["features"]))
        self.assertEqual(reader.stats("driver_hourly_stats", start_ts=0, end_ts=1)["rows"], 0)

    def test_historical_features(self):
        hour = NOW.replace(minute=0, second=0) - dt.timedelta(hours=1)
        hist = client().get_historical_features(
            {"driver_id": [1002, 1001, 4242], "event_timestamp": [hour, hour, hour]},
            features=["driver_hourly_stats:conv_rate"],
        )
        self.assertIsInstance(hist, HistoricalResponse)
        rows = hist.to_rows()
        self.assertEqual([r["driver_id"] for r in rows], [1002, 1001, 4242])
        self.assertIsInstance(rows[0]["conv_rate"], float)
        self.assertIsNone(rows[2]["conv_rate"])

    def test_to_df_without_pandas_says_so(self):
        try:
            import pandas  # noqa: F401

            self.skipTest("pandas is installed")
        except ImportError:
            pass
        answer = OnlineResponse({"metadata": {"feature_names": ["k"]}, "results": [{"values": [1], "statuses": ["PRESENT"], "event_timestamps": ["x"]}]})
        with self.assertRaisesRegex(ImportError, "pandas"):
            answer.to_df()

    def test_int64_beyond_2_53(self):
        big = 9007199254740993
        cols = ["i32", "f32", "f64", "s", "b", "flag", "ts", "doc", "fl", "sl"]
        df = {c: [None] for c in cols}
        df.update({"driver_id": [big], "event_timestamp": [NOW], "i64": [big], "il": [[big, 1]]})
        client().push("typed_push", df)
        row = client().get_online_features(features=["typed:i64", "typed:il"], entities={"driver_id": [big]}).to_rows()[0]
        self.assertEqual(row, {"driver_id": str(big), "i64": str(big), "il": [str(big), 1]})
        self.assertEqual(to_int64(row["il"]), [big, 1])

    def test_registry_reads_plan_apply_health(self):
        c = client(project="demo")
        self.assertIn("demo", [p["name"] for p in c.list_projects()])
        self.assertIn("driver", [e["name"] for e in c.list_entities()])
        self.assertEqual(c.get_entity("driver")["spec"]["join_key"], "driver_id")
        view = c.get_feature_view("driver_hourly_stats")
        self.assertEqual([f["name"] for f in view["spec"]["schema"]], ["conv_rate", "acc_rate", "avg_daily_trips"])
        self.assertEqual(c.feature_view_versions("driver_hourly_stats")[0]["change"], "create")
        self.assertIn("driver_activity", [s["name"] for s in c.list_feature_services()])
        self.assertEqual(c.get_feature_service("driver_activity")["name"], "driver_activity")
        self.assertIn("driver_stats_push", [s["name"] for s in c.list_data_sources()])
        self.assertEqual(c.get_data_source("driver_stats_push")["spec"]["kind"], "push")
        defs = {
            "entities": [{"name": "driver", "join_key": "driver_id", "value_type": "int64"}],
            "data_sources": [
                {"name": "s", "kind": "postgres", "table": "public.driver_stats", "timestamp_field": "event_timestamp"}
            ],
            "feature_views": [
                {"name": "v", "entities": ["driver"], "source": "s", "ttl": 0, "schema": [{"name": "conv_rate", "dtype": "float32"}]}
            ],
        }
        scratch = c.with_project("py_scratch")
        self.assertFalse(scratch.plan(defs)["applied"])
        self.assertEqual(scratch.apply(defs)["summary"]["create"], 3)
        self.assertEqual(scratch.apply(defs)["summary"]["create"], 0)
        self.assertEqual(LarderClient(URL).health()["status"], "ok")
        self.assertEqual(client().project_name(), "demo")

    def test_errors(self):
        with self.assertRaises(LarderError) as bad:
            client().get_online_features(features=["driver_hourly_stats:nope"], entities={"driver_id": [1]})
        self.assertEqual((bad.exception.status, bad.exception.code), (400, "invalid_argument"))
        self.assertIn("nope", bad.exception.message)
        self.assertTrue(bad.exception.request_id)
        with self.assertRaises(LarderError) as no_key:
            LarderClient(URL, project="demo").list_entities()
        self.assertEqual((no_key.exception.status, no_key.exception.code), (401, "unauthenticated"))
        with self.assertRaises(LarderError) as scope:
            client(api_key=KEYS["read"]).push("driver_stats_push", {"driver_id": [1]})
        self.assertEqual((scope.exception.status, scope.exception.code), (403, "permission_denied"))
        with self.assertRaises(LarderError) as missing:
            client(project="demo").get_feature_view("no_such_view")
        self.assertEqual((missing.exception.status, missing.exception.code), (404, "not_found"))
        with self.assertRaises(LarderError) as push_bad:
            client().push("driver_stats_push", {"driver_id": [1], "event_timestamp": ["x"]})
        self.assertEqual(push_bad.exception.status, 400)
        self.assertTrue(push_bad.exception.details)

    def test_closed_port_fails_within_timeout(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        c = LarderClient(f"http://127.0.0.1:{port}", timeout=1.5, retries=3)
        started = time.monotonic()
        with self.assertRaises(LarderError) as e:
            c.health()
        self.assertLess(time.monotonic() - started, 1.5)
        self.assertEqual((e.exception.status, e.exception.code), (0, "connection_error"))

    def test_silent_server_times_out(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            c = LarderClient(f"http://127.0.0.1:{s.getsockname()[1]}", timeout=0.3)
            started = time.monotonic()
            with self.assertRaises(LarderError) as e:
                c.health()
            took = time.monotonic() - started
            self.assertEqual(e.exception.code, "timeout")
            self.assertGreaterEqual(took, 0.28)
            self.assertLess(took, 1.0)
        finally:
            s.close()

    def test_503_retried_400_not(self):
        proxy = CountingProxy(URL, 2)
        try:
            c = LarderClient(proxy.url, api_key=KEYS["read"], retries=2)
            answer = c.get_online_features(features=["driver_hourly_stats:conv_rate"], entities={"driver_id": [1001]})
            self.assertEqual(len(answer), 1)
            self.assertEqual(len(proxy.seen), 3)
            self.assertEqual(len(set(proxy.seen)), 1)  # one request id for the call and its retries
            proxy.seen.clear()
            with self.assertRaises(LarderError) as bad:
                c.get_online_features(features=["driver_hourly_stats:nope"], entities={"driver_id": [1001]})
            self.assertEqual(bad.exception.status, 400)
            self.assertEqual(len(proxy.seen), 1)
        finally:
            proxy.close()
        always = CountingProxy(URL, 100)
        try:
            with self.assertRaises(LarderError) as e:
                LarderClient(always.url, retries=0).list_projects()
            self.assertEqual((e.exception.status, e.exception.code, e.exception.message), (503, "unavailable", "online store down"))
            self.assertEqual(len(always.seen), 1)
        finally:
            always.close()


if __name__ == "__main__":
    unittest.main()
