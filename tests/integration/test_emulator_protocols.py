"""Every AWS service a worker's role names answers the locked botocore on the emulator.

Production speaks whatever protocol the locked botocore speaks. When a refresh of uv.lock moves
a service to a protocol the emulator does not route (botocore 1.44.18 moved Athena from `json`
to `rest-json`, which moto answers with a 404 page), the failure here names the service, its
protocol and the botocore version, instead of a 404 deep inside an Athena test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError

from entrypoints.registry import WORKERS

pytestmark = pytest.mark.integration

# One read-only call per service: it needs no resource, so any answer but a routing failure
# shows the emulator understood the request as botocore sent it.
PROBES: dict[str, Callable[[Any], Any]] = {
    "s3": lambda client: client.list_buckets(),
    "kinesis": lambda client: client.list_streams(),
    "sqs": lambda client: client.list_queues(),
    "dynamodb": lambda client: client.list_tables(),
    "athena": lambda client: client.list_work_groups(),
    "glue": lambda client: client.get_databases(),
    "sns": lambda client: client.list_topics(),
    "states": lambda client: client.list_state_machines(),
}
# IAM's service prefix -> boto3's client name, where they differ.
CLIENT_NAMES = {"states": "stepfunctions"}
# Services moto has no backend for: their adapters are tested through boto3 against a local
# server speaking the service's protocol instead (the file named).
NOT_EMULATED = {"sms-voice": "tests/integration/test_sms_gateways.py"}


def services_the_registry_names() -> set[str]:
    return {action.split(":", 1)[0] for worker in WORKERS.values() for action in worker.actions}


def test_every_service_a_worker_uses_has_a_probe() -> None:
    missing = services_the_registry_names() - PROBES.keys() - NOT_EMULATED.keys()
    assert not missing, f"add a probe to PROBES for {sorted(missing)}"


@pytest.mark.parametrize("service", sorted(PROBES))
def test_the_emulator_answers_what_the_locked_botocore_sends(service: str, aws: Any) -> None:
    client = aws.client(CLIENT_NAMES.get(service, service))
    protocol = client.meta.service_model.protocol
    what = f"{service} ({protocol} protocol, botocore {botocore.__version__})"
    try:
        answer = PROBES[service](client)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        pytest.fail(f"the emulator did not route {what}: HTTP {status}: {error}")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200, what
