"""SendStarter without Step Functions: an asynchronous Lambda Invoke (InvocationType `Event`)
of the sms_wave_send function, payload `{"waveName": wave}`.

Lambda does not deduplicate invokes, so a second start of a wave (two schedulers overlapping,
or one that died between starting and deleting the scheduled config) runs a second send. That
is harmless by the send's own rules, not by luck: the send lease refuses a run while another
holds the wave, and the once-ledger makes a later run text nobody twice (docs/sending.md).
What is lost against Step Functions is the retry schedule (Lambda retries an async invoke
twice, then drops it or sends it to the function's on-failure destination) and the
execution's record: prefer SMS_WAVE_STATE_MACHINE where Step Functions is available.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.aws.errors import AWS_ERRORS, unavailable


class LambdaInvokeSendStarter:
    def __init__(self, client: Any, function_name: str) -> None:
        self.client, self.function_name = client, function_name

    def start(self, wave_name: str) -> str:
        try:
            answer = self.client.invoke(
                FunctionName=self.function_name,
                InvocationType="Event",
                Payload=json.dumps({"waveName": wave_name}).encode(),
            )
        except AWS_ERRORS as error:
            raise unavailable(f"function {self.function_name}", error) from error
        request_id = answer.get("ResponseMetadata", {}).get("RequestId", "")
        return f"{self.function_name} (invoked, request {request_id})"
