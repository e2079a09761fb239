"""SendStarter on Step Functions: StartExecution of the SMS wave state machine, named after the
wave (domain/workers/sms_wave_scheduler.execution_name), input `{"waveName": wave}`.

On a STANDARD state machine a StartExecution with the name and input of a running execution
returns that execution (no second one): two schedulers, or one retrying, start the send once.
ExecutionAlreadyExists (the execution ran already, within Step Functions' 90-day name memory)
is taken as started: the wave was sent; a new send of the same wave needs a new wave name.
Any other failure is DependencyUnavailable: the scheduler leaves the wave and tries next run.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.aws.errors import AWS_ERRORS, unavailable
from domain.workers.sms_wave_scheduler import execution_name


class StepFunctionsSendStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client, self.state_machine_arn = client, state_machine_arn

    def start(self, wave_name: str) -> str:
        name = execution_name(wave_name)
        try:
            answer = self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name,
                input=json.dumps({"waveName": wave_name}),
            )
        except self.client.exceptions.ExecutionAlreadyExists:
            return f"{self.state_machine_arn}:{name} (already ran)"
        except AWS_ERRORS as error:
            raise unavailable(f"state machine {self.state_machine_arn}", error) from error
        return str(answer["executionArn"])
