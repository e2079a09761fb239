"""Installs amazon-kclpy with the MultiLangDaemon's jars of one pinned KCL version.

    .venv/bin/python .ci/install_kclpy.py        (what `make kcl` runs)

One version, always the same: KCL_VERSION (3.1.3). amazon-kclpy 3.2.0's own setup downloads
KCL 3.5.3, which Maven Central does not serve (404: the newest multilang daemon there is
3.1.3), so whether its plain install worked depended on the day, and with it which daemon ran.
3.1.3 is what Maven Central serves, what DESIGN.md records running against moto, and what every
daemon test here ran; the multilang protocol is the same across KCL 3.x, so amazon-kclpy's
Python side is unchanged. So this script always:
1. downloads amazon-kclpy's source archive,
2. sets the pom's `kcl.version` to KCL_VERSION,
3. fetches exactly the artifacts the pom lists with Maven (`dependency:copy-dependencies`) into
   the package's jar directory, and installs from that directory (setup then finds every jar).
An install whose multilang jar is another version is replaced. Nothing unlocked is fetched: the
source archive is checked against SOURCE_SHA256, and it is built without build isolation and
without an index, from the setuptools and pytest-runner (its setup_requires) that uv.lock
holds. Quiet unless something fails (then the captured Maven and pip output is printed). The
daemon logs the version it runs at start (entrypoints.kcl.daemon.kcl_version). Standard library
only: it runs before anything else.
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


KCL_VERSION = "3.1.3"
# sha256 of amazon_kclpy-3.2.0.tar.gz as PyPI serves it.
SOURCE_SHA256 = "62e81cc84714c920fe6aa5d61837b298fe7e01f6326dcb564b12ab8e6c4aca4e"


def _quiet(command: list[str], what: str) -> bool:
    """Runs `command` with its output captured; prints it only if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"{what} failed (exit {done.returncode}):", file=sys.stderr)
        print(done.stdout[-20_000:], done.stderr[-20_000:], sep="\n", file=sys.stderr)
    return done.returncode == 0


def _pip(*args: str) -> bool:
    command = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check", *args]
    return _quiet(command, f"pip {args[0]}")


def installed_with_jars() -> bool:
    """amazon-kclpy is installed with the multilang jar of KCL_VERSION (and no other)."""
    probe = (
        "import pathlib, amazon_kclpy; "
        "jars = pathlib.Path(amazon_kclpy.__file__).parent / 'jars'; "
        "found = [p.name for p in jars.glob('amazon-kinesis-client-multilang-*.jar')]; "
        f"raise SystemExit(0 if found == ['amazon-kinesis-client-multilang-{KCL_VERSION}.jar'] "
        "else 1)"
    )
    return subprocess.call([sys.executable, "-c", probe], stderr=subprocess.DEVNULL) == 0


def set_kcl_version(pom: Path, version: str) -> str:
    """Sets the pom's `kcl.version`; returns it."""
    text = pom.read_text(encoding="utf-8")
    match = re.search(r"<kcl\.version>([^<]+)</kcl\.version>", text)
    if match is None:
        raise SystemExit(f"{pom}: no <kcl.version> property")
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
    return _quiet(command, "mvn dependency:copy-dependencies (is Maven installed?)")


def install_through_maven() -> None:
    with tempfile.TemporaryDirectory(prefix="kclpy-") as scratch:
        work = Path(scratch)
        pinned = work / "requirements.txt"
        pinned.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{SOURCE_SHA256}\n", "utf-8")
        if not _pip("download", "--no-deps", "--no-binary", ":all:", "--require-hashes",
                    "-d", scratch, "-r", str(pinned)):  # fmt: skip
            raise SystemExit(f"could not download the {PACKAGE} {VERSION} source archive")
        archive = next(work.glob("amazon_kclpy-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = next(p for p in work.iterdir() if p.is_dir())
        pom, jars = source / "pom.xml", source / "amazon_kclpy" / "jars"
        make_buildable(pom)
        set_kcl_version(pom, KCL_VERSION)
        if not copy_jars(pom, jars):
            raise SystemExit(f"could not fetch the KCL {KCL_VERSION} jars through Maven")
        if not _pip("install", "--force-reinstall", "--no-deps", "--no-index",
                    "--no-build-isolation", str(source)):  # fmt: skip
            raise SystemExit(f"installing {PACKAGE} from {source} failed")


def main() -> int:
    if installed_with_jars():
        return 0
    print(
        f"installing {PACKAGE}=={VERSION} with KCL {KCL_VERSION} (jars through Maven)", flush=True
    )
    install_through_maven()
    if not installed_with_jars():
        raise SystemExit(f"{PACKAGE} is installed without the KCL {KCL_VERSION} jars")
    print(f"{PACKAGE} {VERSION} installed with the KCL {KCL_VERSION} MultiLangDaemon", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
