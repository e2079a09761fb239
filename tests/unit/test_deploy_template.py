"""The SAM template (deploy/template.yaml) is the registry's, current, linted and transformable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint
from samtranslator.translator.transform import transform

from adapters.aws.dynamo_table import create_codes_table
from deploy import template as generator
from entrypoints.registry import WORKERS, KinesisStream, S3Objects, Schedule, SqsQueue, Worker
from streams.checkpoints import DynamoCheckpoints

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "deploy" / "template.yaml"


@pytest.fixture(scope="module")
def tpl() -> dict[str, Any]:
    loaded = yaml.safe_load(CHECKED_IN.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return {str(k): v for k, v in loaded.items()}


def resources(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in tpl["Resources"].items() if r["Type"] == kind}


def function_of(tpl: dict[str, Any], worker: Worker[object]) -> dict[str, Any]:
    found: dict[str, Any] = tpl["Resources"][generator.logical(worker.name) + "Function"]
    props: dict[str, Any] = found["Properties"]
    return props


def test_the_checked_in_template_is_what_the_registry_generates_now() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == generator.render(), (
        "deploy/template.yaml is not what the registry generates: run `make template`"
    )


def test_a_worker_without_a_deployment_profile_stops_the_generator_naming_it() -> None:
    stray = Worker(
        name="new_worker", summary="", trigger=SqsQueue("move_queue"), build=lambda c: None,
        actions=("s3:GetObject",),
    )  # fmt: skip
    with pytest.raises(generator.TemplateError, match="'new_worker' has no deployment profile"):
        generator.function(stray)


def test_every_registry_worker_has_one_function_with_its_handler_and_worker(tpl) -> None:
    functions = resources(tpl, "AWS::Serverless::Function")
    assert len(functions) == len(WORKERS)
    for worker in WORKERS.values():
        props = function_of(tpl, worker)
        assert props["Handler"] == worker.handler
        assert props["CodeUri"] == "../dist/campaign-workers-lambda.zip"
        assert props["Environment"]["Variables"]["WORKER"] == worker.name


def test_every_stream_consumer_reports_item_failures_bisects_and_has_an_iterator_age_alarm(
    tpl,
) -> None:
    consumers = [w for w in WORKERS.values() if isinstance(w.trigger, KinesisStream)]
    assert consumers
    for worker in consumers:
        event = function_of(tpl, worker)["Events"]["Stream"]["Properties"]
        assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert event["BisectBatchOnFunctionError"] is True
        assert event["MaximumRecordAgeInSeconds"] > 0
        assert event["MaximumRetryAttempts"] > 0
        assert event["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["FailureQueue", "Arn"]
        }
        alarm = tpl["Resources"][generator.logical(worker.name) + "IteratorAgeAlarm"]
        assert alarm["Properties"]["MetricName"] == "IteratorAge"
        assert alarm["Properties"]["Threshold"] == 60_000


def test_sqs_triggers_report_item_failures_and_every_consumed_queue_has_a_dlq(tpl) -> None:
    for worker in WORKERS.values():
        if isinstance(worker.trigger, SqsQueue):
            event = function_of(tpl, worker)["Events"]["Queue"]["Properties"]
            assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queues = resources(tpl, "AWS::SQS::Queue")
    dead = {q for q in queues if "RedrivePolicy" not in queues[q]["Properties"]}
    for name, queue in queues.items():
        if name in dead:  # a dead-letter queue itself: alarmed on depth
            depth = tpl["Resources"][name + "DepthAlarm"]["Properties"]
            assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
            assert depth["Threshold"] == 0
        else:
            target = queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
            assert target["Fn::GetAtt"][0] in dead
    for setting in generator.CONSUMED_QUEUES:
        assert "RedrivePolicy" in queues[generator.RESOURCES[setting].logical_id]["Properties"]


def test_every_role_allows_exactly_the_registry_actions_and_only_logs_and_failures_beside(
    tpl,
) -> None:
    for worker in WORKERS.values():
        role = tpl["Resources"][generator.logical(worker.name) + "Role"]["Properties"]
        policies = {p["PolicyName"]: p["PolicyDocument"]["Statement"] for p in role["Policies"]}
        allowed = {a for s in policies["registry"] for a in s["Action"]}
        assert allowed == set(worker.actions), worker.name
        beside = {a for s in policies["runtime"] for a in s["Action"]}
        assert beside <= {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"}
        wildcard = [s for s in policies["registry"] if s["Resource"] == "*"]
        # Only actions IAM cannot narrow (deploy/template.py _UNSCOPED) are on "*".
        assert all(set(s["Action"]) <= generator._UNSCOPED for s in wildcard), worker.name


def test_every_function_alarms_on_errors_throttles_duration_and_its_own_metrics(tpl) -> None:
    for worker in WORKERS.values():
        name = generator.logical(worker.name)
        timeout = function_of(tpl, worker)["Timeout"]
        alarms = tpl["Resources"]
        assert alarms[f"{name}ErrorsAlarm"]["Properties"]["MetricName"] == "Errors"
        assert alarms[f"{name}ThrottlesAlarm"]["Properties"]["MetricName"] == "Throttles"
        duration = alarms[f"{name}DurationAlarm"]["Properties"]
        assert 0 < duration["Threshold"] < timeout * 1000
        failed = alarms[f"{name}FailedAlarm"]["Properties"]
        assert failed["Namespace"] == "campaign-workers"
        assert failed["Dimensions"] == [{"Name": "worker", "Value": worker.name}]
        if isinstance(worker.trigger, KinesisStream):
            assert alarms[f"{name}DeadLetteredAlarm"]["Properties"]["MetricName"] == "deadLettered"
    for alarm in resources(tpl, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert tpl["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def test_s3_triggers_filter_the_registry_prefix_and_a_suffix(tpl) -> None:
    for worker in WORKERS.values():
        if not isinstance(worker.trigger, S3Objects):
            continue
        events = function_of(tpl, worker)["Events"].values()
        rules = [{r["Name"]: r["Value"] for r in e["Properties"]["Filter"]["S3Key"]["Rules"]}
                 for e in events]  # fmt: skip
        assert worker.trigger.prefix.startswith(rules[0]["prefix"])
        assert all(r["suffix"] for r in rules)


def test_schedules_carry_the_registry_expressions_and_inputs(tpl) -> None:
    for worker in WORKERS.values():
        if not isinstance(worker.trigger, Schedule):
            continue
        events = function_of(tpl, worker)["Events"].values()
        found = {(e["Properties"]["ScheduleExpression"], e["Properties"]["Input"]) for e in events}
        for expression, payload in generator.schedules(worker.trigger):
            assert expression in worker.trigger.expression
            assert (expression, json.dumps(payload, sort_keys=True)) in found
    merge = function_of(tpl, WORKERS["merge_avro_files"])["Events"]
    assert {json.loads(e["Properties"]["Input"])["type"] for e in merge.values()} == {
        "daily",
        "monthly",
    }


def test_buckets_abort_incomplete_multipart_uploads_and_block_public_access(tpl) -> None:
    for bucket in resources(tpl, "AWS::S3::Bucket").values():
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any("AbortIncompleteMultipartUpload" in r for r in rules)
        assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())


def test_secrets_are_secrets_manager_references_never_values(tpl) -> None:
    for worker in WORKERS.values():
        variables = function_of(tpl, worker)["Environment"]["Variables"]
        for secret in ("SERVICE_TOKEN", "BAND_SECRET", "SLACK_WEBHOOK_URL"):
            if secret in variables:
                assert variables[secret]["Fn::Sub"].startswith("{{resolve:secretsmanager:")


def test_log_groups_keep_logs_for_the_retention_parameter(tpl) -> None:
    for worker in WORKERS.values():
        group = tpl["Resources"][generator.logical(worker.name) + "LogGroup"]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert function_of(tpl, worker)["LoggingConfig"]["LogGroup"]["Ref"].endswith("LogGroup")


class RecordingDynamoDB:
    """Records create_table's arguments (the adapters' own table creation) and nothing else."""

    class exceptions:  # boto3 names it so
        class ResourceInUseException(Exception):
            pass

    def __init__(self) -> None:
        self.created: dict[str, Any] = {}

    def create_table(self, **kwargs: Any) -> None:
        self.created = kwargs

    def get_waiter(self, _name: str) -> Any:
        return self

    def wait(self, **_kwargs: Any) -> None:
        return None

    def get_item(self, **_kwargs: Any) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(
    ("logical_id", "create"),
    [
        ("CodesTable", lambda db: create_codes_table(db, "t")),
        ("CheckpointTable", lambda db: DynamoCheckpoints(db, "t").get("s", "shard-0")),
    ],
)
def test_tables_have_the_key_schemas_the_adapters_create(tpl, logical_id, create) -> None:
    db = RecordingDynamoDB()
    create(db)
    table = tpl["Resources"][logical_id]["Properties"]
    for key in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes"):
        assert table.get(key) == db.created.get(key), key


def _errors(matches: list[Any]) -> list[str]:
    return [f"{m.rule.id} {m.message} ({m.path})" for m in matches]


@pytest.mark.slow  # ~5 s: cfn-lint over ~4,000 lines
def test_cfn_lint_finds_nothing_in_the_template() -> None:
    assert _errors(lint(CHECKED_IN.read_text(encoding="utf-8"))) == []


@pytest.mark.slow  # ~6 s: the SAM transform, then cfn-lint over its output
def test_the_sam_transform_accepts_it_and_cfn_lint_finds_nothing_in_what_it_makes(
    tpl, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    packaged = json.loads(json.dumps(tpl))
    for function in resources(packaged, "AWS::Serverless::Function").values():
        function["Properties"]["CodeUri"] = "s3://artifacts-bucket/lambda.zip"  # `sam package`

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    transformed = transform(packaged, {}, NoManagedPolicies())
    kinds = {r["Type"] for r in transformed["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping",
            "AWS::Scheduler::Schedule", "AWS::Lambda::Permission"} <= kinds  # fmt: skip
    assert _errors(lint(json.dumps(transformed))) == []


def test_the_scheduler_starts_a_send_state_machine_that_retries_what_a_retry_can_cure() -> None:
    resources = generator.template()["Resources"]
    machine = resources[generator.SEND_STATE_MACHINE]["Properties"]
    assert machine["StateMachineType"] == "STANDARD"  # StartExecution by name: idempotent
    text, values = machine["DefinitionString"]["Fn::Sub"]
    definition = json.loads(text)
    send = definition["States"][definition["StartAt"]]
    assert send["Parameters"]["FunctionName"] == "${SendFunctionArn}"
    assert values["SendFunctionArn"] == {"Fn::GetAtt": ["SmsWaveSendFunction", "Arn"]}
    assert ["RetryableFailure"] in [r["ErrorEquals"] for r in send["Retry"]]
    scheduler = resources["SmsWaveSchedulerFunction"]["Properties"]
    env = scheduler["Environment"]["Variables"]
    assert env["SMS_WAVE_STATE_MACHINE"] == {"Ref": generator.SEND_STATE_MACHINE}


def test_texts_and_emails_of_unknown_fate_page_someone() -> None:
    resources = generator.template()["Resources"]
    for metric, logical_id in (
        ("sms_unknown", "SmsWaveSendSmsUnknownAlarm"),
        ("email_unknown", "SmsWaveSendEmailUnknownAlarm"),
    ):
        alarm = resources[logical_id]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("campaign-workers", metric)
        assert alarm["Dimensions"] == [{"Name": "worker", "Value": "sms_wave_send"}]
    assert all(name.isalnum() for name in resources), "CloudFormation ids are alphanumeric"


def test_texts_name_a_configuration_set_whose_delivery_events_reach_the_reconciler() -> None:
    """The send's SMS_CONFIGURATION_SET is the stack's configuration set; its event destination
    publishes every final text event to a topic that delivers raw to the queue
    reconcile_sms_deliveries consumes, which lets that topic (and only it) send."""
    from domain.workers.reconcile_sms_deliveries import DELIVERED, UNDELIVERED

    resources = generator.template()["Resources"]
    send = resources["SmsWaveSendFunction"]["Properties"]
    assert send["Environment"]["Variables"]["SMS_CONFIGURATION_SET"] == {
        "Ref": "SmsConfigurationSet"
    }
    config_set = resources["SmsConfigurationSet"]
    assert config_set["Type"] == "AWS::SMSVOICE::ConfigurationSet"
    (destination,) = config_set["Properties"]["EventDestinations"]
    assert destination["Enabled"] is True
    assert set(destination["MatchingEventTypes"]) >= DELIVERED | UNDELIVERED
    topic = destination["SnsDestination"]["TopicArn"]["Ref"]
    subscriptions = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"]["TopicArn"] == {"Ref": topic}
    ]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [
        ("sqs", {"Fn::GetAtt": ["SmsEventsQueue", "Arn"]})
    ]
    reconciler = resources["ReconcileSmsDeliveriesFunction"]["Properties"]
    (source,) = reconciler["Events"].values()
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["SmsEventsQueue", "Arn"]}
    (allowed,) = resources["SmsEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert allowed["Principal"] == {"Service": "sns.amazonaws.com"}
    assert allowed["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": topic}}}
    (publish,) = resources[f"{topic}Policy"]["Properties"]["PolicyDocument"]["Statement"]
    assert publish["Principal"] == {"Service": "sms-voice.amazonaws.com"}


def test_only_the_merge_function_keeps_what_glibc_freed_between_merges(tpl) -> None:
    """A warm merge otherwise faults its ~150 MiB in again (benchmarks/README.md, "Lake merge")."""
    tunables = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}
    for worker in WORKERS.values():
        variables = function_of(tpl, worker)["Environment"]["Variables"]
        if worker.name == "merge_avro_files":
            assert {name: variables[name] for name in tunables} == dict.fromkeys(
                tunables, str(1 << 30)
            )
        else:
            assert not tunables & set(variables)
