"""larder_client: a client for the Larder feature store's HTTP API.

Standard library only (Python >= 3.9). pandas DataFrames are accepted wherever a ``df`` goes and
``to_df()`` returns one, when pandas is installed; it is never required.

    from larder_client import LarderClient

    client = LarderClient("http://localhost:6566", api_key="lk_...")
    answer = client.get_online_features(
        features=["driver_hourly_stats:conv_rate"], entities={"driver_id": [1001, 1002]}
    )
    for row in answer.to_rows():
        print(row["driver_id"], row["conv_rate"])
"""

from __future__ import annotations

import base64
import datetime as _dt
import http.client
import json
import math
import random
import socket
import threading
import time
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypedDict, Union
from urllib.parse import quote, urlencode, urlsplit

__all__ = [
    "LarderClient",
    "LarderError",
    "OnlineResponse",
    "HistoricalResponse",
    "FeatureStatus",
    "Freshness",
    "VerifyExample",
    "ViewVerification",
    "Verification",
    "FeatureStats",
    "ViewStats",
    "to_int64",
]
__version__ = "0.1.0"

FeatureStatus = str  # "PRESENT" | "NOT_FOUND" | "NULL_VALUE" | "OUTSIDE_MAX_AGE"
Frame = Union[Mapping[str, Sequence[Any]], Any]  # a dict of columns, or a pandas DataFrame
Timestamp = Union[_dt.datetime, _dt.date, str, int, float]

MAX_SAFE_INTEGER = 2**53 - 1
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 1.0
# A kept-alive connection idle longer than this is not reused: the server closes idle ones after 65 s, and a request
# sent on a connection it is closing fails in a way that cannot be told apart from a lost request.
_MAX_IDLE_SECONDS = 30.0


class LarderError(Exception):
    """Every failure of a call.

    ``status`` is the HTTP status, or 0 when no answer came (``code`` is then ``timeout`` or
    ``connection_error``). ``request_id`` is the call's ``x-request-id``: the server logs it.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Optional[List[Dict[str, Any]]] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"LarderError(status={self.status}, code={self.code!r}, message={self.message!r})"


class Freshness(TypedDict):
    """``freshness(view)``: timestamps are RFC 3339 UTC strings, or None."""

    last_materialized_end: Optional[str]  # end of the last successful materialisation window
    last_push_event_timestamp: Optional[str]  # newest event time pushed or written to the online store
    newest_offline_event_timestamp: Optional[str]  # newest event time in the batch source
    lag_seconds: Optional[float]  # now - the later of the first two; None when neither exists


class VerifyExample(TypedDict):
    """An entity whose online answer differs from the offline one."""

    entity: Dict[str, Any]
    issue: str  # "mismatch" | "missing_online"
    online_status: str  # "PRESENT" | "NOT_FOUND" | "OUTSIDE_MAX_AGE"
    differences: List[Dict[str, Any]]  # {"feature", "online", "offline"}


class ViewVerification(TypedDict):
    """One view's comparison of the online store with the offline store."""

    feature_view: str
    sampled: int  # entities compared
    matching: int
    mismatching: int  # entities with at least one value that differs
    missing_online: int  # entities the online store does not have at all
    examples: List[VerifyExample]  # up to 5 of the entities that did not match


class Verification(TypedDict):
    as_of: str  # the time both stores were read as of (RFC 3339, UTC)
    results: List[ViewVerification]


class FeatureStats(TypedDict):
    """Statistics of one feature over the view's batch source."""

    name: str
    dtype: str
    count: int  # rows considered
    null_count: int
    min: Optional[float]  # numeric dtypes only (min, max, mean, stddev)
    max: Optional[float]
    mean: Optional[float]
    stddev: Optional[float]  # sample standard deviation
    distinct: int  # distinct non-null values
    histogram: Optional[List[Dict[str, Any]]]  # numbers: 10 buckets {"lower", "upper", "count"}
    top_values: Optional[List[Dict[str, Any]]]  # strings and booleans: the 10 most frequent {"value", "count"}


class ViewStats(TypedDict):
    feature_view: str
    start_ts: Optional[str]
    end_ts: Optional[str]
    rows: int  # rows of the batch source considered (in the window when one was given)
    features: List[FeatureStats]


def _require_pandas():
    try:
        import pandas  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_df() needs pandas: pip install pandas (or use to_dict()/to_rows())") from e
    return pandas


class OnlineResponse(dict):
    """The Feast-shaped answer of a lookup (``metadata``, ``results``), with row-oriented helpers."""

    @property
    def feature_names(self) -> List[str]:
        return list(self["metadata"]["feature_names"])

    def __len__(self) -> int:  # the number of entity rows, not of dict keys
        results = self.get("results") or []
        return len(results[0]["values"]) if results else 0

    def to_dict(self) -> Dict[str, List[Any]]:
        """Column name -> one value per entity row (Feast's ``OnlineResponse.to_dict()``)."""
        return {n: list(r["values"]) for n, r in zip(self["metadata"]["feature_names"], self["results"])}

    def to_rows(self) -> List[Dict[str, Any]]:
        """One dict per entity row: join keys first, then features in the order requested."""
        names = self["metadata"]["feature_names"]
        columns = [r["values"] for r in self["results"]]
        return [dict(zip(names, values)) for values in zip(*columns)]

    def to_rows_with_status(self) -> List[Dict[str, Dict[str, Any]]]:
        """One dict per entity row: name -> {"value", "status", "event_timestamp"}."""
        names = self["metadata"]["feature_names"]
        out = []
        for i in range(len(self)):
            out.append(
                {
                    n: {"value": r["values"][i], "status": r["statuses"][i], "event_timestamp": r["event_timestamps"][i]}
                    for n, r in zip(names, self["results"])
                }
            )
        return out

    def to_df(self):
        """A pandas DataFrame, one row per entity row (needs pandas)."""
        return _require_pandas().DataFrame(self.to_dict())


class HistoricalResponse(dict):
    """Training data: ``{"df": {column: values}}``, rows in request order."""

    def to_dict(self) -> Dict[str, List[Any]]:
        return {k: list(v) for k, v in self["df"].items()}

    def to_rows(self) -> List[Dict[str, Any]]:
        names = list(self["df"].keys())
        return [dict(zip(names, values)) for values in zip(*self["df"].values())]

    def to_df(self):
        """A pandas DataFrame (needs pandas); ``event_timestamp`` parsed as UTC datetimes."""
        pd = _require_pandas()
        df = pd.DataFrame(self.to_dict())
        if "event_timestamp" in df.columns:
            df["event_timestamp"] = pd.to_datetime(df["event_timestamp"], utc=True)
        return df


def _iso(t: Timestamp) -> Union[str, int, float]:
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:  # the server reads a timestamp without a zone as UTC; say so explicitly
            t = t.replace(tzinfo=_dt.timezone.utc)
        return t.isoformat()
    if isinstance(t, _dt.date):
        return t.isoformat()
    return t


def _jsonable(v: Any) -> Any:
    """The value in the JSON form the server reads: int64 beyond 2^53-1 as a decimal string, bytes as base64,
    datetimes as RFC 3339, NaN as null, numpy/pandas scalars as Python ones."""
    if v is None or isinstance(v, (str, bool)):
        return v
    if isinstance(v, int):
        return v if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER else str(v)
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, (_dt.datetime, _dt.date)):
        return _iso(v)
    if hasattr(v, "isoformat") and hasattr(v, "tz_localize"):  # pandas.Timestamp (NaT included)
        return None if v != v else _iso(v.to_pydatetime())
    if hasattr(v, "tolist"):  # numpy scalars and arrays
        return _jsonable(v.tolist())
    if hasattr(v, "item"):
        return _jsonable(v.item())
    return v


def _frame(df: Frame) -> Dict[str, List[Any]]:
    """A dict of columns, from a dict of columns or a pandas DataFrame (duck-typed: pandas is not imported)."""
    if isinstance(df, Mapping):
        return {str(k): _jsonable(list(v)) for k, v in df.items()}
    if hasattr(df, "columns") and hasattr(df, "__getitem__"):
        return {str(c): _jsonable(df[c].tolist()) for c in df.columns}
    raise TypeError("df must be a dict of column -> list of values, or a pandas DataFrame")


def to_int64(v: Any) -> Any:
    """An int64 value as a Python int: the server sends those beyond 2^53-1 as decimal strings (lists too)."""
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return v
    if isinstance(v, list):
        return [to_int64(x) for x in v]
    return v


class _Connections(threading.local):
    """One kept-alive connection per thread (http.client connections are not thread-safe)."""

    conn: Optional[http.client.HTTPConnection] = None
    last_used: float = 0.0


class LarderClient:
    """A client for one Larder server.

    ``project``: the project to act on through ``/v1/projects/{project}/...``; omitted, the Feast-compatible root
    endpoints, which act on the server's ``LARDER_PROJECT`` (asked from ``/health`` when a call needs its name).
    ``timeout``: the time budget of one call in seconds, retries included. ``retries``: how many times a call may be
    sent again, only after a connection error or a 503, never after another status.
    """

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        project: Optional[str] = None,
        timeout: float = 10.0,
        retries: int = 2,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        if not url:
            raise ValueError("LarderClient: url is required")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"LarderClient: url must be http(s)://host[:port], got {url!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.project = project
        self.timeout = timeout
        self.retries = max(0, retries)
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._base_path = parts.path.rstrip("/")
        self._headers = {"accept": "application/json", **(headers or {})}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._local = _Connections()
        self._default_project: Optional[str] = None

    def with_project(self, project: str) -> "LarderClient":
        """The same client acting on another project."""
        return LarderClient(self.url, self.api_key, project, self.timeout, self.retries, self._extra_headers())

    def _extra_headers(self) -> Dict[str, str]:
        return {k: v for k, v in self._headers.items() if k not in ("accept", "authorization")}

    # ---- online ----

    def get_online_features(
        self,
        features: Optional[Sequence[str]] = None,
        entities: Optional[Mapping[str, Sequence[Any]]] = None,
        feature_service: Optional[str] = None,
        full_feature_names: bool = False,
        *,
        timeout: Optional[float] = None,
        request_id: Optional[str] = None,
    ) -> OnlineResponse:
        """Latest feature values for entity rows (join key -> values); the answer is Feast's, as a dict."""
        if entities is None:
            raise TypeError("get_online_features: entities is required")
        body = {"entities": _frame(entities), **_selection(features, feature_service, full_feature_names)}
        path = f"/v1/projects/{quote(self.project)}/online-features" if self.project else "/get-online-features"
        return OnlineResponse(self.request("POST", path, body=body, timeout=timeout, request_id=request_id))

    def lookup_rows(
        self,
        rows: Sequence[Mapping[str, Any]],
        join_keys: Sequence[str],
        features: Optional[Sequence[str]] = None,
        feature_service: Optional[str] = None,
        full_feature_names: bool = False,
        int64_columns: Sequence[str] = (),
        *,
        timeout: Optional[float] = None,
    ) -> OnlineResponse:
        """A lookup from entity rows (one mapping per row) instead of columns, as generated accessors call it.
        ``int64_columns``: answer columns whose decimal strings (int64 beyond 2^53-1) become ints."""
        entities = {k: [r[k] for r in rows] for k in join_keys}
        answer = self.get_online_features(
            features=features, entities=entities, feature_service=feature_service,
            full_feature_names=full_feature_names, timeout=timeout,
        )
        if int64_columns:
            wanted = set(int64_columns)
            for name, result in zip(answer["metadata"]["feature_names"], answer["results"]):
                if name in wanted:
                    result["values"] = [to_int64(v) for v in result["values"]]
        return answer

    def push(self, push_source_name: str, df: Frame, to: str = "online", *, timeout: Optional[float] = None) -> Dict[str, int]:
        """Writes rows to every feature view fed by the push source. Answers ``{"rows", "written", "skipped_older"}``
        (``written``/``skipped_older``: online rows stored, or left alone because the store held a newer value).

        Resent after a lost connection when it goes online only: the online store never replaces a value with an
        older one, so a second copy changes nothing. A push that goes offline appends to the batch table, so it is
        resent only when the server surely did not get it (connection refused) or answered 503.
        """
        body = {"push_source_name": push_source_name, "df": _frame(df), "to": to}
        return self.request("POST", self._path("/push"), body=body, idempotent=to == "online", timeout=timeout)

    def write_to_online_store(self, feature_view_name: str, df: Frame, *, timeout: Optional[float] = None) -> Dict[str, int]:
        """Writes rows of one feature view to the online store (idempotent, as an online push)."""
        body = {"feature_view_name": feature_view_name, "df": _frame(df)}
        return self.request("POST", self._path("/write-to-online-store"), body=body, timeout=timeout)

    # ---- offline ----

    def materialize(
        self,
        start_ts: Timestamp,
        end_ts: Timestamp,
        feature_views: Optional[Sequence[str]] = None,
        run_async: bool = False,
        *,
        partitions: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Loads each entity's latest row with event time in [start_ts, end_ts) online. Not resent after a lost
        connection (the jobs may still run; a second call would get 409): give a timeout that fits, or run_async.

        ``partitions``: split each job into this many disjoint slices of its entities, run by any ``larder worker``
        or ``larder serve`` when the server has a queue, else in the server's process (default: the view's
        ``materialization.partitions``, or one slice). Each job's ``partitions`` lists the slices' progress."""
        body = {
            "start_ts": _iso(start_ts), "end_ts": _iso(end_ts), "feature_views": _opt_list(feature_views),
            **_opt("partitions", partitions),
        }
        return self.request(
            "POST", self._path("/materialize"), body=body, query={"async": "true"} if run_async else None,
            idempotent=False, timeout=timeout,
        )

    def materialize_incremental(
        self,
        end_ts: Timestamp,
        feature_views: Optional[Sequence[str]] = None,
        run_async: bool = False,
        *,
        partitions: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Materialises from where each view's last run ended (``partitions`` as in ``materialize``)."""
        body = {"end_ts": _iso(end_ts), "feature_views": _opt_list(feature_views), **_opt("partitions", partitions)}
        return self.request(
            "POST", self._path("/materialize-incremental"), body=body,
            query={"async": "true"} if run_async else None, idempotent=False, timeout=timeout,
        )

    def get_historical_features(
        self,
        entity_df: Frame,
        features: Optional[Sequence[str]] = None,
        feature_service: Optional[str] = None,
        full_feature_names: bool = False,
        *,
        timeout: Optional[float] = None,
    ) -> HistoricalResponse:
        """Point-in-time-correct training data for an entity dataframe (join keys and event_timestamp)."""
        body = {"entity_df": _frame(entity_df), **_selection(features, feature_service, full_feature_names)}
        return HistoricalResponse(self.request("POST", self._project_path("/historical-features"), body=body, timeout=timeout))

    # ---- quality ----

    def freshness(self, view: str) -> Freshness:
        """When the view's online values were last brought up to date, and how far behind now that is."""
        return self.request("GET", self._project_path(f"/feature-views/{quote(view)}/freshness"))

    def verify(self, feature_views: Optional[Sequence[str]] = None, sample: Optional[int] = None) -> Verification:
        """Compares the online store with the offline store as of now, on a sample of each view's entities
        (default every online view, 1000 entities each). Writes nothing: a read key will do."""
        body = {"feature_views": _opt_list(feature_views), **_opt("sample", sample)}
        return self.request("POST", self._project_path("/verify"), body=body)

    def stats(self, view: str, start_ts: Optional[Timestamp] = None, end_ts: Optional[Timestamp] = None) -> ViewStats:
        """Statistics of the view's features over its batch source, over event times in [start_ts, end_ts) when
        given."""
        query = {
            "start_ts": None if start_ts is None else _iso_text(start_ts),
            "end_ts": None if end_ts is None else _iso_text(end_ts),
        }
        return self.request("GET", self._project_path(f"/feature-views/{quote(view)}/stats"), query=query)

    # ---- registry ----

    def plan(self, definitions: Mapping[str, Any]) -> Dict[str, Any]:
        """The diff that apply would make, writing nothing."""
        return self.request("POST", self._project_path("/plan"), body=dict(definitions))

    def apply(self, definitions: Mapping[str, Any]) -> Dict[str, Any]:
        """Makes the project hold exactly these definitions (declarative: resending it changes nothing)."""
        return self.request("POST", self._project_path("/apply"), body=dict(definitions))

    def list_projects(self) -> List[Dict[str, Any]]:
        return self.request("GET", "/v1/projects")["projects"]

    def list_entities(self) -> List[Dict[str, Any]]:
        return self.request("GET", self._project_path("/entities"))["entities"]

    def get_entity(self, name: str) -> Dict[str, Any]:
        return self.request("GET", self._project_path(f"/entities/{quote(name)}"))

    def list_data_sources(self) -> List[Dict[str, Any]]:
        return self.request("GET", self._project_path("/data-sources"))["data_sources"]

    def get_data_source(self, name: str) -> Dict[str, Any]:
        return self.request("GET", self._project_path(f"/data-sources/{quote(name)}"))

    def list_feature_views(self) -> List[Dict[str, Any]]:
        return self.request("GET", self._project_path("/feature-views"))["feature_views"]

    def get_feature_view(self, name: str) -> Dict[str, Any]:
        return self.request("GET", self._project_path(f"/feature-views/{quote(name)}"))

    def feature_view_versions(self, name: str) -> List[Dict[str, Any]]:
        return self.request("GET", self._project_path(f"/feature-views/{quote(name)}/versions"))["versions"]

    def list_feature_services(self) -> List[Dict[str, Any]]:
        return self.request("GET", self._project_path("/feature-services"))["feature_services"]

    def get_feature_service(self, name: str) -> Dict[str, Any]:
        return self.request("GET", self._project_path(f"/feature-services/{quote(name)}"))

    def list_materialization_jobs(self, feature_view: Optional[str] = None, limit: Optional[int] = None) -> List[Dict[str, Any]]:
        query = {"feature_view": feature_view, "limit": limit}
        return self.request("GET", self._project_path("/materialization-jobs"), query=query)["jobs"]

    def get_materialization_job(self, job_id: str) -> Dict[str, Any]:
        return self.request("GET", self._project_path(f"/materialization-jobs/{quote(job_id)}"))

    # ---- system ----

    def health(self) -> Dict[str, Any]:
        """The server's health; an unhealthy server (503) is an answer here, not an error."""
        return self.request("GET", "/health", accept=(503,))

    def project_name(self) -> str:
        """The project this client acts on: its own, or the server's default (asked once from /health)."""
        if self.project:
            return self.project
        if self._default_project is None:
            self._default_project = self.health()["registry"]["project"]
        return self._default_project

    def close(self) -> None:
        """Closes this thread's kept-alive connection."""
        conn = self._local.conn
        self._local.conn = None
        if conn is not None:
            conn.close()

    def __enter__(self) -> "LarderClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport ----

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Optional[Mapping[str, Any]] = None,
        *,
        idempotent: bool = True,
        accept: Iterable[int] = (),
        timeout: Optional[float] = None,
        request_id: Optional[str] = None,
    ) -> Any:
        """Any endpoint: ``request("GET", "/v1/projects/p/feature-views/v/freshness")`` -> the parsed JSON answer.

        Raises LarderError for an error status or when no answer came within the budget. Retries, with exponential
        backoff and jitter, only after a connection error or a 503; a call that is not idempotent only when the
        connection was refused (the server never saw it) or on 503.
        """
        request_id = request_id or str(uuid.uuid4())
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        headers = dict(self._headers)
        headers["x-request-id"] = request_id
        payload: Optional[bytes] = None
        if body is not None:
            payload = json.dumps(_jsonable(body), separators=(",", ":"), allow_nan=False).encode("utf-8")
            headers["content-type"] = "application/json"
        target = self._base_path + path
        if query:
            q = urlencode({k: v for k, v in query.items() if v is not None})
            if q:
                target += "?" + q
        accepted = set(accept)
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LarderError(0, "timeout", f"no answer within {budget} s", request_id=request_id)
            retry_after = 0.0
            try:
                status, resp_headers, data = self._send(method, target, payload, headers, left)
            except socket.timeout:
                self.close()
                raise LarderError(0, "timeout", f"no answer within {budget} s", request_id=request_id) from None
            except (OSError, http.client.HTTPException) as e:
                self.close()
                failure = LarderError(
                    0, "connection_error", f"cannot reach {self.url}: {e.__class__.__name__}: {e}", request_id=request_id
                )
                if not idempotent and not isinstance(e, ConnectionRefusedError):
                    raise failure from e
            else:
                if 200 <= status < 300 or status in accepted:
                    return json.loads(data) if data else None
                failure = _error_from(status, resp_headers, data, request_id)
                if status != 503:
                    raise failure
                try:
                    retry_after = float(resp_headers.get("retry-after") or 0)
                except ValueError:
                    retry_after = 0.0
            if attempt >= self.retries:
                raise failure
            backoff = min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)
            wait = max(retry_after, backoff / 2 + random.random() * backoff / 2)
            if time.monotonic() + wait >= deadline:
                raise failure
            time.sleep(wait)
            attempt += 1

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        local = self._local
        if local.conn is not None and time.monotonic() - local.last_used > _MAX_IDLE_SECONDS:
            self.close()
        if local.conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            local.conn = cls(self._host, self._port, timeout=timeout)
        conn = local.conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _send(
        self, method: str, target: str, payload: Optional[bytes], headers: Dict[str, str], timeout: float
    ) -> Tuple[int, Dict[str, str], bytes]:
        conn = self._connection(timeout)
        conn.request(method, target, body=payload, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self._local.last_used = time.monotonic()
        resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp_headers.get("connection", "").lower() == "close":
            self.close()
        return resp.status, resp_headers, data

    def _path(self, p: str) -> str:
        return f"/v1/projects/{quote(self.project)}{p}" if self.project else p

    def _project_path(self, p: str) -> str:
        return f"/v1/projects/{quote(self.project_name())}{p}"


def _selection(
    features: Optional[Sequence[str]], feature_service: Optional[str], full_feature_names: bool
) -> Dict[str, Any]:
    """The features part of a lookup or historical request."""
    out: Dict[str, Any] = {}
    if features is not None:
        out["features"] = list(features)
    if feature_service is not None:
        out["feature_service"] = feature_service
    if full_feature_names:
        out["full_feature_names"] = True
    return out


def _opt_list(v: Optional[Sequence[str]]) -> Optional[List[str]]:
    return None if v is None else list(v)


def _opt(name: str, v: Any) -> Dict[str, Any]:
    """An optional body field: absent when None (the server refuses null where it wants a number)."""
    return {} if v is None else {name: v}


def _iso_text(t: Timestamp) -> str:
    """A timestamp as a query parameter: RFC 3339 (epoch seconds become a date)."""
    v = _iso(t)
    if isinstance(v, str):
        return v
    return _dt.datetime.fromtimestamp(v, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _error_from(status: int, headers: Mapping[str, str], data: bytes, request_id: str) -> LarderError:
    rid = headers.get("x-request-id") or request_id
    try:
        err = json.loads(data)["error"]
        return LarderError(status, err.get("code") or f"http_{status}", err["message"], err.get("details") or [], rid)
    except (ValueError, KeyError, TypeError):
        text = data[:200].decode("utf-8", "replace")
        return LarderError(status, f"http_{status}", f"HTTP {status}: {text}", [], rid)
