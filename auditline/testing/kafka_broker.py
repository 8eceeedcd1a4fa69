"""A real Apache Kafka broker (KRaft, combined mode, one node) for tests, benches and humans.

The jars come from Maven Central, resolved with ``mvn`` into ``~/.cache/auditline/kafka/<ver>``
(override with ``AUDITLINE_TEST_CACHE``); the broker runs on the machine's Java 17 on free
loopback ports with storage formatted fresh in a temporary folder, and is stopped on exit.

    python -m auditline.testing.kafka_broker up      # start, print the bootstrap address, wait
    python -m auditline.testing.kafka_broker fetch   # only resolve the jars
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

KAFKA_VERSION = "4.1.1"
SLF4J_VERSION = "1.7.36"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.auditline</groupId><artifactId>test-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId>
      <version>{slf4j}</version></dependency>
  </dependencies>
</project>
"""


JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
"""A light JVM for a test broker that shares a small machine with what it serves (as CI setups
of Kafka often run it): the client compiler only and a single-threaded collector. Measured with
bench/streams.py on 2 cores: the broker used 0.23-0.35 cores at 5,000 events/s instead of
0.33-0.79 with the server compiler and G1, which left the workers that much more."""


class BrokerError(RuntimeError):
    """The broker could not be provisioned or started; the message says what to check."""


def cache_root() -> Path:
    return Path(os.environ.get("AUDITLINE_TEST_CACHE", Path.home() / ".cache" / "auditline"))


def fetch_jars(version: str = KAFKA_VERSION) -> Path:
    """Resolve Kafka and its runtime dependencies with mvn (once); return the jar folder."""
    home = cache_root() / "kafka" / version
    libs = home / "libs"
    if (home / ".complete").exists():
        return libs
    if shutil.which("mvn") is None:
        raise BrokerError("mvn is not on PATH: install Maven (apt-get install maven)")
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM.format(kafka=version, slf4j=SLF4J_VERSION))
    command = [
        "mvn", "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BrokerError(f"mvn could not resolve Kafka {version}:\n{done.stdout}{done.stderr}")
    (home / ".complete").write_text(version)
    return libs


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open while choosing, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class LocalKafka:
    """One broker process; use as a context manager or call start()/stop()."""

    version: str = KAFKA_VERSION
    port: int = 0
    controller_port: int = 0
    heap: str = "768m"
    workdir: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        chosen = iter(free_ports(2))
        self.port = self.port or next(chosen)
        self.controller_port = self.controller_port or next(chosen)
        if self.port == self.controller_port:
            raise BrokerError(f"broker and controller cannot share port {self.port}")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._dir / "broker.log"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="auditline-kafka-")
            self.workdir = Path(self._tmp.name)
        return self.workdir

    def _write_config(self) -> Path:
        config = self._dir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self._dir / 'data'}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "",
                ]
            )
        )
        return config

    def _java(self, *args: str) -> list[str]:
        libs = fetch_jars(self.version)
        return [
            "java", f"-Xmx{self.heap}", "-Xms256m", *JVM_FLAGS,
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp", f"{libs}/*", *args,
        ]  # fmt: skip

    def format_storage(self) -> None:
        config = self._write_config()
        done = subprocess.run(
            self._java(STORAGE_TOOL, "format", f"--cluster-id={_cluster_id()}", "-c", str(config)),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{done.stdout}{done.stderr}")

    def start(self, timeout: float = 60.0) -> str:
        """Format fresh storage (first start only), start the broker, wait until it serves."""
        if shutil.which("java") is None:
            raise BrokerError("java is not on PATH: install a Java 17 runtime")
        if not (self._dir / "data").exists():
            self.format_storage()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self._java(MAIN_CLASS, str(self._dir / "server.properties")),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.wait_ready(timeout)
        return self.bootstrap

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(f"Kafka exited with {self.process.returncode}:\n{self.tail()}")
            if self._metadata_ok():
                return
            time.sleep(0.2)
        raise BrokerError(f"Kafka did not serve within {timeout:.0f}s:\n{self.tail()}")

    def _metadata_ok(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            return len(admin.list_topics(timeout=2).brokers) > 0
        except Exception:  # noqa: BLE001 - not ready yet
            return False

    def kill(self) -> None:
        """SIGKILL the broker (for failure tests); start() brings it back on the same storage."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m auditline.testing.kafka_broker",
        description="Run a local single-node Apache Kafka (KRaft) for development.",
    )
    parser.add_argument("action", choices=["fetch", "up"], help="fetch jars, or start and wait")
    parser.add_argument("--port", type=int, default=9092, help="PLAINTEXT port (default 9092)")
    args = parser.parse_args(argv)
    try:
        if args.action == "fetch":
            print(f"Kafka {KAFKA_VERSION} jars in {fetch_jars()}")
            return 0
        with LocalKafka(port=args.port) as broker:
            print(f"Kafka {broker.version} serving at {broker.bootstrap} (Ctrl-C stops it)")
            sys.stdout.flush()
            stop_signals = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # after the JVM has started
            signal.sigwait(stop_signals)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
