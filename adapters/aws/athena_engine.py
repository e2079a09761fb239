"""QueryEngine on Athena: StartQueryExecution, GetQueryExecution polled with a growing wait up to
a deadline (then StopQueryExecution), GetQueryResults paged (1,000 rows a page, Athena's
maximum; the first row of a SELECT's first page is its header), and the execution's output
objects (`{id}.csv` and `{id}.csv.metadata` under the output location) removed on request.

One retry layer: botocore's standard mode retries each call; the polling here is waiting for a
query to finish, not retrying a call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from returns.result import Failure, Result, Success

from adapters.aws.errors import AWS_ERRORS, unavailable
from domain.models import ObjectRef

PAGE_ROWS = 1000
_DONE = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


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
    ) -> None:
        self._athena = athena
        self._s3 = s3
        self.database = database
        self.output_location = output_location.rstrip("/") + "/"
        self.workgroup = workgroup
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep
        self._monotonic = monotonic

    def execute(self, sql: str) -> Result[str, str]:
        try:
            started = self._athena.start_query_execution(
                QueryString=sql,
                QueryExecutionContext={"Database": self.database},
                ResultConfiguration={"OutputLocation": self.output_location},
                WorkGroup=self.workgroup,
            )
            execution = str(started["QueryExecutionId"])
            deadline = self._monotonic() + self.max_wait_seconds
            wait = 0.2
            while True:
                status = self._athena.get_query_execution(QueryExecutionId=execution)
                state = status["QueryExecution"]["Status"]
                if state["State"] in _DONE:
                    break
                if self._monotonic() >= deadline:
                    self._athena.stop_query_execution(QueryExecutionId=execution)
                    return Failure(
                        f"query {execution} still running after "
                        f"{self.max_wait_seconds:.0f} s; stopped"
                    )
                self._sleep(wait)
                wait = min(wait * 2, 5.0)
        except AWS_ERRORS as error:
            raise unavailable("athena", error) from error
        if state["State"] != "SUCCEEDED":
            reason = state.get("StateChangeReason", "no reason given")
            return Failure(f"query {execution} {state['State'].lower()}: {reason}")
        return Success(execution)

    def rows(self, execution_id: str) -> Iterator[tuple[str | None, ...]]:
        token: str | None = None
        first = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": PAGE_ROWS}
            if token:
                kwargs["NextToken"] = token
            try:
                page = self._athena.get_query_results(**kwargs)
            except AWS_ERRORS as error:
                raise unavailable("athena", error) from error
            rows = page["ResultSet"]["Rows"]
            for index, row in enumerate(rows):
                if first and index == 0:
                    continue  # the header
                yield tuple(cell.get("VarCharValue") for cell in row["Data"])
            first = False
            token = page.get("NextToken")
            if not token:
                return

    def discard(self, execution_id: str) -> None:
        try:
            status = self._athena.get_query_execution(QueryExecutionId=execution_id)
            location = (
                status["QueryExecution"]
                .get("ResultConfiguration", {})
                .get("OutputLocation", f"{self.output_location}{execution_id}.csv")
            )
            ref = ObjectRef.parse(location)
            self._s3.delete_objects(
                Bucket=ref.bucket,
                Delete={
                    "Objects": [{"Key": ref.key}, {"Key": f"{ref.key}.metadata"}],
                    "Quiet": True,
                },
            )
        except AWS_ERRORS as error:
            raise unavailable("athena output", error) from error
