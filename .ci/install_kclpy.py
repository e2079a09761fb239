"""Installs amazon-kclpy with the MultiLangDaemon's jars into the running Python's environment.

    .venv/bin/python .ci/install_kclpy.py        (what `make kcl` runs)

amazon-kclpy ships on PyPI as a source archive whose setup downloads the daemon's jars (the ones
its pom.xml lists) from Maven Central, and fails if any is missing. amazon-kclpy 3.2.0 lists
KCL 3.5.3, which Maven Central does not serve (404; the newest multilang daemon there is 3.1.3).
So when the plain install fails, this script:
1. downloads the same source archive,
2. tries the pom's own `kcl.version`, then FALLBACK_KCL (same major version),
3. fetches exactly the artifacts the pom lists with Maven (`dependency:copy-dependencies`) into
   the package's jar directory, and installs from that directory (setup then finds every jar).
The multilang protocol is the same across KCL 3.x, so amazon-kclpy's Python side is unchanged.
Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

PACKAGE = "amazon-kclpy"
VERSION = "3.2.0"
POM_NS = "{http://maven.apache.org/POM/4.0.0}"


def _pip(*args: str, quiet: bool = False) -> int:
    """pip in this environment; `quiet` swallows the output (a failing amazon-kclpy build prints
    hundreds of lines that say only which jars were missing)."""
    output = subprocess.DEVNULL if quiet else None
    return subprocess.call([sys.executable, "-m", "pip", *args], stdout=output, stderr=output)


def installed_with_jars() -> bool:
    probe = (
        "import pathlib, amazon_kclpy; "
        "jars = pathlib.Path(amazon_kclpy.__file__).parent / 'jars'; "
        "raise SystemExit(0 if list(jars.glob('amazon-kinesis-client-multilang-*.jar')) else 1)"
    )
    return subprocess.call([sys.executable, "-c", probe]) == 0


# The newest KCL whose multilang daemon Maven Central served when this was written, and the
# version DESIGN.md records as run against moto. Used only when the pom's own version is missing.
FALLBACK_KCL = "3.1.3"


def set_kcl_version(pom: Path, version: str | None) -> str:
    """Sets the pom's `kcl.version` (None keeps the pom's own); returns the version in force."""
    text = pom.read_text(encoding="utf-8")
    match = re.search(r"<kcl\.version>([^<]+)</kcl\.version>", text)
    if match is None:
        raise SystemExit(f"{pom}: no <kcl.version> property")
    version = version or match.group(1)
    pom.write_text(text.replace(match.group(0), f"<kcl.version>{version}</kcl.version>"), "utf-8")
    return version


def make_buildable(pom: Path) -> None:
    """amazon-kclpy's pom is a jar list without coordinates: give it some so Maven runs it."""
    text = pom.read_text(encoding="utf-8")
    if f"{POM_NS}groupId" not in {e.tag for e in ET.fromstring(text)}:  # noqa: S314
        text = text.replace(
            "<modelVersion>4.0.0</modelVersion>",
            "<modelVersion>4.0.0</modelVersion>\n    <groupId>local.campaign-workers</groupId>"
            "<artifactId>kclpy-jars</artifactId><version>1</version>",
            1,
        )
    pom.write_text(text, encoding="utf-8")


def copy_jars(pom: Path, into: Path) -> bool:
    command = [
        "mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
        f"-DoutputDirectory={into}", "-DexcludeTransitive=true",
    ]  # fmt: skip
    return subprocess.call(command) == 0


def install_through_maven() -> None:
    with tempfile.TemporaryDirectory(prefix="kclpy-") as scratch:
        work = Path(scratch)
        if _pip("download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", scratch,
                f"{PACKAGE}=={VERSION}") != 0:  # fmt: skip
            raise SystemExit(f"could not download the {PACKAGE} {VERSION} source archive")
        archive = next(work.glob("amazon_kclpy-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = next(p for p in work.iterdir() if p.is_dir())
        pom, jars = source / "pom.xml", source / "amazon_kclpy" / "jars"
        make_buildable(pom)
        for version in (None, FALLBACK_KCL):
            kcl = set_kcl_version(pom, version)
            print(f"fetching the jars amazon-kclpy lists, KCL {kcl}, through Maven", flush=True)
            if copy_jars(pom, jars):
                break
        else:
            raise SystemExit("mvn dependency:copy-dependencies failed (is Maven installed?)")
        if _pip("install", "--quiet", str(source)) != 0:
            raise SystemExit(f"installing {PACKAGE} from {source} failed")


def main() -> int:
    if installed_with_jars():
        return 0
    print(f"installing {PACKAGE}=={VERSION} (its setup downloads the daemon's jars)", flush=True)
    if (
        _pip("install", "--quiet", f"{PACKAGE}=={VERSION}", quiet=True) != 0
        or not installed_with_jars()
    ):
        print(f"{PACKAGE}'s own jar download failed; falling back to Maven", flush=True)
        install_through_maven()
    if not installed_with_jars():
        raise SystemExit(f"{PACKAGE} is installed without its jars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
