"""The daemon's jars, command line and environment.

- The Java SDK sends CBOR to Kinesis unless started with -Daws.cborEnabled=false; moto reads
  JSON only.
- The KCL version is the one .ci/install_kclpy.py pins and installs (3.1.3, see there why);
  `kcl_version()` reads it from the multilang jar actually installed, and the supervisor logs
  it when it starts the daemon.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from adapters.aws.clients import TEST_CREDENTIALS, is_local_endpoint
from entrypoints.settings import Settings

DAEMON_CLASS = "software.amazon.kinesis.multilang.MultiLangDaemon"
_MULTILANG_JAR = re.compile(r"amazon-kinesis-client-multilang-(\d[\w.-]*)\.jar$")


def jar_directory() -> Path:
    """Where amazon-kclpy keeps the daemon's jars (installed by `make kcl`)."""
    try:
        import amazon_kclpy
    except ImportError as missing:
        raise RuntimeError("amazon-kclpy is not installed: run `make kcl`") from missing
    jars = Path(amazon_kclpy.__file__).parent / "jars"
    if not any(jars.glob("*.jar")):
        raise RuntimeError(f"no jars in {jars}: reinstall amazon-kclpy with `make kcl`")
    return jars


def kcl_version(jars: Path | None = None) -> str:
    """The version of the installed MultiLangDaemon, from its jar's name."""
    found = sorted(
        m.group(1)
        for p in (jars or jar_directory()).glob("*.jar")
        if (m := _MULTILANG_JAR.search(p.name))
    )
    if len(found) != 1:
        raise RuntimeError(f"expected one multilang daemon jar, found {found or 'none'}")
    return found[0]


def daemon_command(properties: Path, *, java: str = "java") -> list[str]:
    jars = jar_directory()
    classpath = os.pathsep.join([str(jars / "*"), str(properties.parent)])
    return [
        java,
        # moto (and LocalStack's Kinesis emulation in some versions) cannot read CBOR.
        "-Daws.cborEnabled=false",
        f"-Dlogback.configurationFile={properties.parent / 'logback.xml'}",
        "-cp",
        classpath,
        DAEMON_CLASS,
        "--properties-file",
        str(properties),
    ]


def daemon_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the daemon and (inherited) its children."""
    env = dict(os.environ if base is None else base)
    if is_local_endpoint(settings.endpoint_for("kinesis")) or is_local_endpoint(
        settings.endpoint_for("dynamodb")
    ):
        # The emulator accepts any credentials, but the SDK's default chain wants some.
        env.setdefault("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS[0])
        env.setdefault("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS[1])
    env.setdefault("AWS_REGION", settings.region)
    # The children must import this project whatever directory the daemon runs them from.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env
