"""SmsGateway adapters: one text per call, the provider's answer mapped to domain/sms.py's.

The mapping, the same for every provider (docs/sending.md, "Answers"):
- accepted -> Accepted(the provider's message id);
- the number opted out -> OptedOut (End User Messaging: ConflictException with Reason
  DESTINATION_PHONE_NUMBER_OPTED_OUT; the TM service: 409 `{"reason": "OPTED_OUT"}`);
- throttled (ThrottlingException, SNS Throttling, HTTP 429/503), or the request never left
  (connection refused, connect timeout), or a refusal about our set-up that a person fixes
  (access denied, an unknown origination identity) -> Throttled: the provider did not act, so
  the same entry is tried again after a pause, and a run that cannot get through stops
  instead of marking every fan failed;
- a refusal of this text (validation: a bad number, a text too long) -> Refused(reason);
- anything after the request may have reached the provider without an answer (a read
  timeout, a dropped connection, a 5xx) -> NoAnswer: the text may have gone.

No retries inside: botocore's are switched off for these clients (a retried SendTextMessage
after a read timeout is a second text), and the TM client (http.client) makes none. The domain
retries only what the provider did not act on. No phone number or text in any reason.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from adapters.http.lean_async import LeanHttp, NotSent
from domain.sms import Accepted, NoAnswer, OptedOut, Refused, SmsAnswer, SmsMessage, Throttled

OPTED_OUT_REASON = "DESTINATION_PHONE_NUMBER_OPTED_OUT"
_THROTTLING = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# Our set-up, not the fan: a person fixes it, and the texts wait for them.
_SETUP = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "AuthorizationError",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "KMSAccessDenied",
    }
)
# No retries: the domain decides what is sent again (see the module docstring).
NO_RETRIES: dict[str, Any] = {"max_attempts": 1}


def _aws_answer(call: Callable[[], str]) -> SmsAnswer:
    try:
        return Accepted(call())
    except (EndpointConnectionError, ConnectTimeoutError) as error:
        return Throttled(f"not sent: {type(error).__name__}")
    except (ReadTimeoutError, ConnectionClosedError) as error:
        return NoAnswer(f"no answer: {type(error).__name__}")
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _THROTTLING or status == 429:
            return Throttled(code or "429")
        if code == "ConflictException" and error.response.get("Reason") == OPTED_OUT_REASON:
            return OptedOut()
        if code in _SETUP:
            return Throttled(f"set-up: {code}")
        if status >= 500:
            return NoAnswer(f"{code or 'http'} {status}")
        reason = error.response.get("Reason")
        return Refused(f"{code}:{reason}" if reason else code or f"http {status}")


class EndUserMessagingGateway:
    """AWS End User Messaging SMS (`pinpoint-sms-voice-v2` SendTextMessage). `client` is a
    boto3 client made with NO_RETRIES; `origination` is a phone number, sender id, pool or
    their ARN; the ledger key goes in `Context` so delivery events can be matched to it."""

    def __init__(
        self,
        client: Any,
        origination: str,
        *,
        message_type: str = "TRANSACTIONAL",
        configuration_set: str | None = None,
    ) -> None:
        self.client, self.origination = client, origination
        self.message_type, self.configuration_set = message_type, configuration_set

    def send(self, message: SmsMessage) -> SmsAnswer:
        request: dict[str, Any] = {
            "DestinationPhoneNumber": message.to,
            "OriginationIdentity": self.origination,
            "MessageBody": message.text,
            "MessageType": self.message_type,
            "Context": {"ledgerKey": message.key[:256]},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return _aws_answer(lambda: str(self.client.send_text_message(**request)["MessageId"]))


class SnsSmsGateway:
    """SNS Publish to a phone number (Transactional). SNS drops a text to an opted-out number
    itself and answers with a message id: opted-out fans count as sent here."""

    def __init__(self, client: Any, *, sender_id: str | None = None) -> None:
        self.client = client
        self.attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
        }
        if sender_id:
            self.attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": sender_id,
            }

    def send(self, message: SmsMessage) -> SmsAnswer:
        return _aws_answer(
            lambda: str(
                self.client.publish(
                    PhoneNumber=message.to,
                    Message=message.text,
                    MessageAttributes=self.attributes,
                )["MessageId"]
            )
        )


class _Connections:
    """One keep-alive connection per thread (http.client): the sender's threads each hold one
    call at a time, so a pool would only add locking. Measured at 200 threads against a local
    server: ~320 µs of CPU a request, httpx's Client ~4,000-6,000 µs (benchmarks/README.md,
    "SMS send"). A connection idle for longer than `idle_seconds` is replaced before use: a
    server that closed it would otherwise fail the next request in a way that cannot be told
    from a text lost in flight (NoAnswer)."""

    def __init__(self, base_url: str, timeout: float, idle_seconds: float = 4.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout, self.idle = timeout, idle_seconds
        self._local = threading.local()

    def _fresh(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return kind(self.host, self.port, timeout=self.timeout)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """(status, Retry-After, body). Raises _NotSent (nothing reached the server) or
        OSError / HTTPException after the request may have reached it."""
        local = self._local
        connection: http.client.HTTPConnection | None = getattr(local, "connection", None)
        if connection is None or time.monotonic() - getattr(local, "used", 0.0) > self.idle:
            if connection is not None:
                connection.close()
            connection = local.connection = self._fresh()
        try:
            connection.connect() if connection.sock is None else None
        except OSError as error:
            local.connection = None
            raise _NotSent(type(error).__name__) from error
        try:
            connection.request("POST", self.prefix + path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except BaseException:
            connection.close()
            local.connection = None
            raise
        local.used = time.monotonic()
        if response.will_close:
            connection.close()
            local.connection = None
        return response.status, response.getheader("Retry-After", "") or "", data


class _NotSent(Exception):
    pass


class TmSmsGateway:
    """The TM SMS service over HTTP: POST `{base}/sms` with the original's body
    `{message: {to: {phoneNumber}, text, groupId, messageId, appId, vendorId}, correlationId}`
    (§2.6); `messageId` is the ledger key, so the service can drop a repeat. 2xx answers
    `{messageId}` (ours when it has none); 409 `{reason: OPTED_OUT}` is an opt-out."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        timeout: float = 10.0,
        app_id: str = "campaign-workers",
        group_id: str = "",
    ) -> None:
        self.connections = _Connections(base_url, timeout)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.app_id, self.group_id = app_id, group_id

    def _body(self, message: SmsMessage) -> bytes:
        body = {
            "message": {
                "to": {"phoneNumber": message.to},
                "text": message.text,
                "groupId": self.group_id or message.key.rsplit("#", 1)[0],
                "messageId": message.key,
                "appId": self.app_id,
                "vendorId": "",
            },
            "correlationId": message.key,
        }
        return orjson.dumps(body)  # ~1 µs; json.dumps ~10 µs a text

    def send(self, message: SmsMessage) -> SmsAnswer:
        try:
            status, retry_after, data = self.connections.post(
                "/sms", self._body(message), self.headers
            )
        except _NotSent as error:
            return Throttled(f"not sent: {error}")
        except (OSError, http.client.HTTPException) as error:  # it may have gone
            return NoAnswer(f"no answer: {type(error).__name__}")
        return _tm_answer(message, status, retry_after, data)


def _tm_answer(message: SmsMessage, status: int, retry_after: str, data: bytes) -> SmsAnswer:
    answer: Any
    try:
        answer = json.loads(data) if data else {}
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if 200 <= status < 300:
        return Accepted(str(answer.get("messageId") or message.key))
    if status in (429, 503):
        return Throttled(f"http {status}", _retry_after(retry_after))
    if status in (401, 403):
        return Throttled(f"set-up: http {status}")
    if status >= 500:
        return NoAnswer(f"http {status}")
    reason = str(answer.get("reason", ""))
    if status == 409 and reason.upper() == "OPTED_OUT":
        return OptedOut()
    return Refused(f"http {status}" + (f" {reason[:60]}" if reason.isidentifier() else ""))


class AsyncTmSmsGateway(TmSmsGateway):
    """TmSmsGateway with `send_async` on aiohttp, for AsyncTaskRunner (`send` stays: the
    thread runners use it). The same body and the same answers. aiohttp makes no retries; a
    connection that could not be opened is Throttled (nothing left), anything after the
    request was written NoAnswer. Idle keep-alive connections are dropped after
    `idle_seconds` (as _Connections: a server that closed one would fail the next text
    in a way that cannot be told from a text lost in flight). The session lives on the loop
    of the first call; the runner calls `aclose()` on that loop."""

    def __init__(self, base_url: str, *, idle_seconds: float = 4.0, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._url = base_url.rstrip("/") + "/sms"
        self._idle = idle_seconds
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = self.connections.timeout
            # No cookie jar, no decompression: per-request work the TM contract never needs.
            # Timeouts per socket operation (as adapters/http/async_client.py), not a total
            # one: one timer less a request.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=self._idle),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=min(timeout, 3.0), sock_read=timeout
                ),
                headers=self.headers,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        return self._session

    async def send_async(self, message: SmsMessage) -> SmsAnswer:
        try:
            async with self._client().post(self._url, data=self._body(message)) as response:
                data = await response.read()
                retry_after = response.headers.get("Retry-After", "")
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            return Throttled(f"not sent: {type(error).__name__}")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:  # it may have gone
            return NoAnswer(f"no answer: {type(error).__name__}")
        return _tm_answer(message, status, retry_after, data)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_after(value: str) -> float | None:
    try:
        return min(60.0, float(value))
    except ValueError:
        return None


class LeanTmSmsGateway(TmSmsGateway):
    """TmSmsGateway with `send_async` on adapters/http/lean_async.py (httptools under an asyncio
    Protocol) instead of aiohttp's ClientSession: the same body and the same answers, a fraction
    of the CPU a text (benchmarks/README.md, "SMS send"). No retries; a connection that could
    not be opened is Throttled (nothing left), anything after the request was written NoAnswer.
    Its connections live on the loop of the first call; the runner calls `aclose()` there."""

    def __init__(self, base_url: str, *, idle_seconds: float = 4.0, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        timeout = self.connections.timeout
        self.poster = LeanHttp(
            base_url,
            self.headers,
            timeout=timeout,
            connect_timeout=min(timeout, 3.0),
            idle_seconds=idle_seconds,
        )

    async def send_async(self, message: SmsMessage) -> SmsAnswer:
        try:
            answer = await self.poster.request("POST", "/sms", self._body(message))
        except NotSent as error:
            return Throttled(f"not sent: {error}")
        except OSError as error:  # TimeoutError too: it may have gone
            return NoAnswer(f"no answer: {type(error).__name__}")
        retry_after = answer.headers.get(b"retry-after", b"").decode("latin-1")
        return _tm_answer(message, answer.status, retry_after, answer.body)

    async def aclose(self) -> None:
        await self.poster.aclose()
