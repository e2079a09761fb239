"""The template's storage, queues, roles and log groups, created on the emulator's CloudFormation.

moto's CloudFormation lacks the SAM transform, CloudWatch alarms, Scheduler schedules, End User
Messaging, SNS topic policies and subscriptions and SQS queue policies: those are tested by their
properties (tests/unit/test_deploy_template.py); every other resource of
deploy/template.yaml is created here from the checked-in template and looked at through the
services' own APIs.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws.clients import ClientFactory
from deploy import template as generator

pytestmark = pytest.mark.integration

CHECKED_IN = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"
# Created by the SAM transform or unknown to moto's CloudFormation.
NOT_ON_THE_EMULATOR = (
    "AWS::Serverless::",
    "AWS::CloudWatch::Alarm",
    "AWS::Scheduler::",
    "AWS::SMSVOICE::",  # End User Messaging: moto has no backend for it
    # moto 5.2.5's CloudFormation skips these (listed with no logical id)
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
)


@pytest.fixture(scope="module")
def stack(aws: ClientFactory) -> dict[str, str]:
    full = yaml.safe_load(CHECKED_IN.read_text(encoding="utf-8"))
    resources = {
        name: r
        for name, r in full["Resources"].items()
        if not r["Type"].startswith(NOT_ON_THE_EMULATOR)
    }
    # Whatever names a left-out resource (the send's state machine and its role name the SAM
    # send function) is left out with it.
    while dropped := [
        name
        for name, r in resources.items()
        if any(
            f'"{gone}"' in text or f"${{{gone}}}" in text  # a Ref or GetAtt, or in an Fn::Sub
            for text in [json.dumps(r)]
            for gone in full["Resources"].keys() - resources
        )
    ]:
        for name in dropped:
            del resources[name]
    body = {
        "AWSTemplateFormatVersion": full["AWSTemplateFormatVersion"],
        "Parameters": full["Parameters"],
        "Resources": resources,
    }
    prefix = "cw" + uuid.uuid4().hex[:10]
    cfn = aws.client("cloudformation")
    cfn.create_stack(
        StackName=prefix,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": "NamePrefix", "ParameterValue": prefix}],
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=prefix, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    listed = cfn.list_stack_resources(StackName=prefix)["StackResourceSummaries"]
    created = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}
    assert set(created) == set(resources)
    return {"prefix": prefix, **created}


def test_buckets_are_created_under_the_names_the_functions_are_given(stack, aws) -> None:
    # moto's CloudFormation does not apply LifecycleConfiguration: the abort-incomplete-uploads
    # rule is tested by its properties.
    s3 = aws.client("s3")
    for setting in ("scoring_bucket", "campaign_data_bucket"):
        resource = generator.RESOURCES[setting]
        expected = resource.name.replace("${NamePrefix}", stack["prefix"]).replace(
            "${AWS::AccountId}", "123456789012"
        )
        assert stack[resource.logical_id] == expected
        s3.head_bucket(Bucket=expected)


def test_streams_are_created_and_active(stack, aws) -> None:
    kinesis = aws.client("kinesis")
    for logical_id in ("InputStream", "SaveSelectionStream"):
        name = f"{stack['prefix']}-{'input' if logical_id == 'InputStream' else 'save-selection'}"
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        assert summary["StreamStatus"] == "ACTIVE"


def test_consumed_queues_redrive_to_their_dead_letter_queues(stack, aws) -> None:
    sqs = aws.client("sqs")
    for setting in generator.CONSUMED_QUEUES:
        logical_id = generator.RESOURCES[setting].logical_id
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack[logical_id], AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        policy = json.loads(attributes["RedrivePolicy"])
        assert policy["deadLetterTargetArn"].endswith(
            f"{stack['prefix']}-{generator.RESOURCES[setting].name.split('-', 1)[1]}-dlq"
        )
        assert int(policy["maxReceiveCount"]) == 5


def test_tables_are_created_with_the_adapters_key_schemas(stack, aws) -> None:
    dynamodb = aws.client("dynamodb")
    for logical_id, keys in generator._KEYS.items():
        table = dynamodb.describe_table(TableName=stack[logical_id])["Table"]
        assert table["KeySchema"] == keys["KeySchema"]
        indexes = [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])]
        assert indexes == [i["IndexName"] for i in keys.get("GlobalSecondaryIndexes", [])]


def test_each_workers_role_holds_the_registry_actions_on_named_resources(stack, aws) -> None:
    iam = aws.client("iam")
    role = stack["SaveSelectionRole"]
    document: Any = iam.get_role_policy(RoleName=role, PolicyName="registry")["PolicyDocument"]
    # moto keeps a CloudFormation-made policy as the text of a Python dict: compared as text.
    text = document if isinstance(document, str) else json.dumps(document)
    assert f":table/{stack['prefix']}-demand" in text
    assert f":{stack['prefix']}-verdicts" in text
    assert "${" not in text  # every Sub resolved to a named resource
