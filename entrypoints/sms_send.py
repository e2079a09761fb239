"""sms_wave_send and sms_wave_scheduler bound to adapters (their registry factories), by
settings (README's settings table, docs/sending.md):

- the wave, its config and its lease (`smsWaves/leases/send/{wave}.json`): the scoring bucket;
- the once-ledger: DynamoDB LEDGER_TABLE;
- texts: SMS_GATEWAY = end_user_messaging (SendTextMessage from SMS_ORIGINATION), sns, or tm
  (the TM SMS service at SMS_SERVICE_URL, SERVICE_TOKEN); botocore retries off for them;
- emails: SQS SMS_WAVE_EMAIL_QUEUE;
- SMS_MAX_IN_FLIGHT threads, SMS_PARTS_PER_SECOND (0: no rate);
- the scheduler starts sends with Step Functions SMS_WAVE_STATE_MACHINE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from returns.result import Result

from adapters.aws.dynamo_ledger import DynamoOnceLedger
from adapters.aws.sqs import SqsEmailQueue
from adapters.aws.step_functions import StepFunctionsSendStarter
from adapters.clock import SystemClock
from adapters.leases import ObjectLeases, run_holder
from adapters.rate_limiter import SystemMonotonicClock
from adapters.sms.gateways import (
    NO_RETRIES,
    EndUserMessagingGateway,
    SnsSmsGateway,
    TmSmsGateway,
)
from adapters.sms.pacer import ThrottlePacer
from adapters.sms.runner import ThreadTaskRunner
from domain.ports import SmsGateway
from domain.sms import SendCounts
from domain.streaming import DependencyUnavailable
from domain.workers.sms_wave_scheduler import SchedulerResult, sms_wave_scheduler
from domain.workers.sms_wave_send import (
    SEND_LEASE_PREFIX,
    SendFailure,
    SendInput,
    SendOptions,
    SendPorts,
    SentWave,
    plan_sms_wave,
    sms_wave_send,
)
from entrypoints.bootstrap import Container
from entrypoints.settings import Settings, SettingsError, reveal

log = logging.getLogger(__name__)


class SendRun(Protocol):
    def __call__(
        self, request: SendInput, /, *, on_progress: Callable[[int], None] | None = None
    ) -> Result[SentWave, SendFailure]: ...


class PlanRun(Protocol):
    def __call__(self, request: SendInput, /) -> Result[dict[str, Any], SendFailure]: ...


class SchedulerRun(Protocol):
    def __call__(self) -> SchedulerResult: ...


def _gateway(c: Container) -> SmsGateway:
    s = c.settings
    if s.sms_gateway == "end_user_messaging":
        if not s.sms_origination:
            raise SettingsError("SMS_GATEWAY=end_user_messaging needs SMS_ORIGINATION")
        client = c.aws.client(
            "pinpoint-sms-voice-v2", max_pool_connections=s.sms_max_in_flight, **NO_RETRIES
        )
        return EndUserMessagingGateway(client, s.sms_origination)
    if s.sms_gateway == "sns":
        return SnsSmsGateway(
            c.aws.client("sns", max_pool_connections=s.sms_max_in_flight, **NO_RETRIES)
        )
    if s.sms_gateway == "tm":
        if not s.sms_service_url:
            raise SettingsError("SMS_GATEWAY=tm needs SMS_SERVICE_URL")
        return TmSmsGateway(s.sms_service_url, token=reveal(s.service_token) or "")
    raise SettingsError(f"SMS_GATEWAY must be end_user_messaging, sns or tm: {s.sms_gateway!r}")


def _options(s: Settings, owner: str) -> SendOptions:
    rate = s.sms_parts_per_second or float("inf")
    return SendOptions(
        bucket=s.scoring_bucket,
        owner=owner,
        in_flight=s.sms_max_in_flight,
        rate_parts_per_second=rate,
    )


def build_send(c: Container) -> SendRun:
    s = c.settings

    def run(
        request: SendInput, /, *, on_progress: Callable[[int], None] | None = None
    ) -> Result[SentWave, SendFailure]:
        owner = run_holder()  # a new owner per run: a restarted worker is a new owner
        clock = SystemMonotonicClock()
        leases = ObjectLeases(
            c.store,
            s.scoring_bucket,
            SEND_LEASE_PREFIX,
            holder=owner,
            clock=SystemClock(),
            seconds=s.run_lease_seconds,
            subject="wave {name}",
            consequence="nothing was sent",
        )

        def progress(counts: SendCounts) -> None:
            log.info("wave progress", extra={"wave": request.wave_name, **counts.to_json()})
            if on_progress is not None:
                on_progress(counts.total)

        ports = SendPorts(
            store=c.store,
            ledger=DynamoOnceLedger(c.aws.client("dynamodb"), s.ledger_table),
            gateway=c.built("sms_gateway", lambda: _gateway(c)),
            emails=SqsEmailQueue(c.aws.client("sqs"), s.sms_wave_email_queue),
            runner=ThreadTaskRunner(),
            pacer=ThrottlePacer(s.sms_parts_per_second or None, s.sms_max_in_flight, clock),
            leases=leases,
            monotonic=clock,
            notifier=c.notifier,
            progress=progress,
        )
        return sms_wave_send(request, ports=ports, options=_options(s, owner))

    return run


def build_plan(c: Container) -> PlanRun:
    def run(request: SendInput, /) -> Result[dict[str, Any], SendFailure]:
        return plan_sms_wave(request, store=c.store, options=_options(c.settings, "dry-run"))

    return run


class _NotStarting:
    """No state machine configured: waves are triggered, their sends not started."""

    def start(self, wave_name: str) -> str:
        raise DependencyUnavailable("SMS_WAVE_STATE_MACHINE", "not set: the send not started")


def build_scheduler(c: Container) -> SchedulerRun:
    s = c.settings
    starter: Any = (
        StepFunctionsSendStarter(c.aws.client("stepfunctions"), s.sms_wave_state_machine)
        if s.sms_wave_state_machine
        else _NotStarting()
    )

    def run() -> SchedulerResult:
        return sms_wave_scheduler(
            store=c.store, starter=starter, clock=SystemClock(), bucket=s.scoring_bucket
        )

    return run
