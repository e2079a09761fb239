"""QueryEngine on Athena: StartQueryExecution, GetQueryExecution polled with a growing wait up to
a deadline (then StopQueryExecution), the rows read from the query's result file in S3
(`OutputLocation`, adapters/aws/athena_csv.py) or, where that read is refused, GetQueryResults
paged (1,000 rows a page, Athena's maximum; the first row of a SELECT's first page is its
header), and the execution's output objects (`{id}.csv` and `{id}.csv.metadata` under the output
location) removed on request.

One retry layer: botocore's standard mode retries each call; the polling here is waiting for a
query to finish, not retrying a call, and goes through the same helper (`Backoff.attempts`:
jittered waits of up to 0.2, 0.4, ... 5 s) until `max_wait_seconds` or the work's deadline
(adapters/deadline.py), whichever comes first.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError
from returns.result import Failure, Result, Success

from adapters import deadline as deadlines
from adapters.aws.athena_csv import MalformedResult, result_rows
from adapters.aws.errors import AWS_ERRORS, error_code, unavailable
from adapters.aws.s3 import S3ObjectStore
from domain.backoff import Backoff
from domain.chunk_reader import ChunkReader
from domain.deadline import Deadline
from domain.models import ObjectNotFound, ObjectRef

log = logging.getLogger(__name__)

PAGE_ROWS = 1000
_DONE = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_POLLS = 1_000_000  # the deadline ends the polling, not a count
_CHUNK = 1 << 20
# The result file's read refused: the rows come through GetQueryResults instead. NoSuchKey:
# Athena always writes the file of a SELECT that succeeded; an emulator (moto) writes none.
_REFUSED = frozenset({"AccessDenied", "AllAccessDisabled", "NoSuchKey"})


class UnexpectedResult(ValueError):
    """A finished query whose result is not the shape its caller asked for."""


class AthenaQueryEngine:
    def __init__(
        self,
        athena: Any,
        s3: Any,
        *,
        database: str,
        output_location: str,
        workgroup: str = "primary",
        max_wait_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        results_from_s3: bool = True,
    ) -> None:
        self._athena = athena
        self._s3 = s3
        self.database = database
        self.output_location = output_location.rstrip("/") + "/"
        self.workgroup = workgroup
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self.results_from_s3 = results_from_s3  # False: GetQueryResults pages only

    def execute(self, sql: str, parameters: Sequence[str] = ()) -> Result[str, str]:
        return self.wait(self.start(sql, parameters))

    def start(self, sql: str, parameters: Sequence[str] = ()) -> str:
        """Starts the statement; `parameters` fill its `?`s (values never pasted into SQL)."""
        request: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": self.database},
            "ResultConfiguration": {"OutputLocation": self.output_location},
            "WorkGroup": self.workgroup,
        }
        if parameters:
            request["ExecutionParameters"] = list(parameters)
        try:
            return str(self._athena.start_query_execution(**request)["QueryExecutionId"])
        except AWS_ERRORS as error:
            raise unavailable("athena", error) from error

    def wait(self, execution: str) -> Result[str, str]:
        """Polls until the query ends; one still running at the deadline is stopped."""
        work = deadlines.current()
        if work is not None and work.bounded:
            deadline = work.child(self.max_wait_seconds)
        else:
            deadline = Deadline.after(self.max_wait_seconds, self._monotonic)
        poll = Backoff(base_seconds=0.2, cap_seconds=5.0, retries=_POLLS, sleep=self._sleep)
        state: dict[str, Any] = {"State": "not yet polled"}
        try:
            for _ in poll.attempts(deadline):
                status = self._athena.get_query_execution(QueryExecutionId=execution)
                state = status["QueryExecution"]["Status"]
                if state["State"] in _DONE:
                    break
            else:
                self._athena.stop_query_execution(QueryExecutionId=execution)
                return Failure(
                    f"athena: query {execution} still {state['State']} after "
                    f"{self.max_wait_seconds:.0f} s or its deadline; stopped"
                )
        except AWS_ERRORS as error:
            raise unavailable("athena", error) from error
        if state["State"] != "SUCCEEDED":
            reason = state.get("StateChangeReason", "no reason given")
            return Failure(f"query {execution} {state['State']}: {reason}")
        return Success(execution)

    def stop(self, execution_id: str) -> None:
        """Best effort: stopping a query must not hide the failure that brought us here."""
        with contextlib.suppress(*AWS_ERRORS):
            self._athena.stop_query_execution(QueryExecutionId=execution_id)

    def rows(
        self, execution_id: str, *, header: Sequence[str] | None = None
    ) -> Iterator[tuple[str | None, ...]]:
        """The data rows; with `header`, the result's header must be that, in any letter case
        (Athena lowercases the names it stores), or UnexpectedResult: a query that answers
        other columns is not misread.

        Read from the query's result file in S3 (`OutputLocation`, streamed, parsed by
        adapters/aws/athena_csv.py): GetQueryResults costs ~48 µs of botocore parsing a row,
        ~230 s of CPU for a 2 M-fan wave; the file ~3-9 µs a row (benchmarks/README.md, "Wave
        prep"). Where that read is refused (AccessDenied on the results bucket, or no file: an
        emulator writes none) the rows come through GetQueryResults, said in one log line."""
        lines = self._result_file(execution_id) if self.results_from_s3 else None
        records = self._pages(execution_id) if lines is None else self._csv(execution_id, lines)
        wanted = tuple(header or ())
        expected = None if header is None else [name.casefold() for name in wanted]
        try:
            for values in records:
                if expected is not None and [(v or "").casefold() for v in values] != expected:
                    raise UnexpectedResult(
                        f"query {execution_id} answered columns {values}, expected {wanted}"
                    )
                break  # the header row
            yield from records
        finally:
            records.close()

    def _result_file(self, execution_id: str) -> Generator[str, None, None] | None:
        """The result file's lines (line endings kept, for values holding line breaks), or None
        where S3 refuses the read."""
        try:
            status = self._athena.get_query_execution(QueryExecutionId=execution_id)
        except AWS_ERRORS as error:
            raise unavailable("athena", error) from error
        ref = ObjectRef.parse(self._output_of(status, execution_id))
        chunks = S3ObjectStore(self._s3).iter_chunks(ref)
        try:
            first = next(chunks, b"")  # the GET: refused here or not at all
        except (ObjectNotFound, ClientError) as error:
            code = "NoSuchKey" if isinstance(error, ObjectNotFound) else error_code(error)
            if code not in _REFUSED:
                raise unavailable(f"athena results {ref.uri}", error) from error
            # The execution id and the error code only: the file holds people's contacts.
            log.warning(
                "athena result file not readable (%s): rows through GetQueryResults instead",
                code,
                extra={"execution": execution_id, "uri": ref.uri},
            )
            return None
        except AWS_ERRORS as error:
            raise unavailable(f"athena results {ref.uri}", error) from error
        raw = io.BufferedReader(ChunkReader(itertools.chain((first,), chunks)), _CHUNK)
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")

        def lines() -> Generator[str, None, None]:
            try:
                yield from text
            except AWS_ERRORS as error:
                raise unavailable(f"athena results {ref.uri}", error) from error
            finally:
                # The GET's connection back to the pool, even when read no further.
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

        return lines()

    def _csv(
        self, execution_id: str, lines: Generator[str, None, None]
    ) -> Generator[tuple[str | None, ...], None, None]:
        try:
            yield from result_rows(lines)
        except (MalformedResult, UnicodeDecodeError) as error:
            # Neither message quotes a value (UnicodeDecodeError's names a byte and offset).
            raise UnexpectedResult(f"query {execution_id}: result file {error}") from None
        finally:
            lines.close()

    def _pages(self, execution_id: str) -> Generator[tuple[str | None, ...], None, None]:
        """Every row, the header first, page by page.

        The next page is fetched on a thread while the caller works through this one: pages
        are chained by NextToken, so one page ahead is all there is to overlap, and fetched
        one after another a 2 M-fan wave waited ~2,000 round trips on top of its own work
        (benchmarks/README.md, "Wave prep"). Memory: two pages. A failed fetch is raised when
        its page's turn comes, after every row before it; a caller that stops early leaves no
        fetch running behind it."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="athena-pages") as pool:
            try:
                upcoming = pool.submit(self._page, execution_id, None)
                while True:
                    page = upcoming.result()
                    token = page.get("NextToken")
                    if token:
                        upcoming = pool.submit(self._page, execution_id, token)
                    for row in page["ResultSet"]["Rows"]:
                        yield tuple(cell.get("VarCharValue") for cell in row["Data"])
                    if not token:
                        return
            finally:
                upcoming.cancel()  # not started yet: never sent; started: waited for below

    def _page(self, execution_id: str, token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": PAGE_ROWS}
        if token:
            kwargs["NextToken"] = token
        try:
            page: dict[str, Any] = self._athena.get_query_results(**kwargs)
        except AWS_ERRORS as error:
            raise unavailable("athena", error) from error
        return page

    def _output_of(self, status: dict[str, Any], execution_id: str) -> str:
        return str(
            status["QueryExecution"]
            .get("ResultConfiguration", {})
            .get("OutputLocation", f"{self.output_location}{execution_id}.csv")
        )

    def discard(self, execution_id: str) -> None:
        try:
            status = self._athena.get_query_execution(QueryExecutionId=execution_id)
            ref = ObjectRef.parse(self._output_of(status, execution_id))
            self._s3.delete_objects(
                Bucket=ref.bucket,
                Delete={
                    "Objects": [{"Key": ref.key}, {"Key": f"{ref.key}.metadata"}],
                    "Quiet": True,
                },
            )
        except AWS_ERRORS as error:
            raise unavailable("athena output", error) from error
