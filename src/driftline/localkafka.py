"""A real single-node Apache Kafka broker (KRaft) run from its Maven jars.

``driftline local-kafka`` and the integration tests use this where no Kafka cluster is at
hand. :func:`ensure_jars` fetches the broker's jars once with Maven into a cache;
:class:`LocalKafka` formats a data directory and runs ``kafka.Kafka`` as a subprocess on
loopback ports. Needs Java 17+ and Maven on ``PATH``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import hashlib
import importlib.resources
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Self

log = logging.getLogger(__name__)

#: The Apache Kafka broker version fetched and run (keep in step with kafka_jars/pom.xml).
KAFKA_VERSION = "4.4.0"
#: Environment variable naming the directory the broker's jars are cached in.
CACHE_ENV = "DRIFTLINE_KAFKA_CACHE"
#: The oldest Java that runs a Kafka 4 broker.
MIN_JAVA = 17

_MARKER = ".driftline-complete"
_LOG_DIR = "kraft-logs"
_PROPERTIES = "server.properties"
_BROKER_LOG = "broker.log"
_LOG_CONFIG = "log4j2.xml"
# A modest heap, and the client compiler only: a local broker starts in about half the time
# on two cores, which matters more here than peak throughput.
_JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)
#: The JVM options of Apache Kafka's own ``kafka-server-start.sh`` (its default
#: ``KAFKA_HEAP_OPTS`` and ``KAFKA_JVM_PERFORMANCE_OPTS``): a production broker's, for
#: measurements where the broker's own pauses would count (``load_tests/soak.py``).
PRODUCTION_JVM_OPTIONS = (
    "-Xms1g",
    "-Xmx1g",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
_ERROR_LINE = re.compile(r"\[[^\]]*\] (ERROR|FATAL) ")
_MAVEN_GOAL = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, started or reached."""


def default_cache_dir() -> Path:
    """Directory the jars go to: ``$DRIFTLINE_KAFKA_CACHE`` or a per-version user cache."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "driftline" / f"kafka-{KAFKA_VERSION}" / "lib"


def _packaged(name: str) -> bytes:
    return importlib.resources.files("driftline").joinpath("kafka_jars", name).read_bytes()


def ensure_jars(cache_dir: Path | None = None) -> Path:
    """Fetch the broker's jars with Maven into ``cache_dir`` once and return that directory.

    A marker file, written only after a complete copy and holding a digest of the packaged
    pom, tells later calls the directory is usable; an interrupted or outdated copy is
    fetched again.
    """
    lib = (cache_dir if cache_dir is not None else default_cache_dir()).resolve()
    pom = _packaged("pom.xml")
    digest = hashlib.sha256(pom).hexdigest()
    if _is_complete(lib, digest):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            "Maven (mvn) is not on PATH: install Apache Maven 3.6.3 or newer "
            "(e.g. `apt-get install maven`) to fetch the Kafka broker's jars"
        )
    lib.parent.mkdir(parents=True, exist_ok=True)
    with _locked(lib.parent / f".{lib.name}.lock"):
        if _is_complete(lib, digest):  # another process fetched them meanwhile
            return lib
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f".{lib.name}-", dir=lib.parent) as work:
            staging = Path(work) / "lib"
            (Path(work) / "pom.xml").write_bytes(pom)
            command = [
                mvn,
                "-B",
                "-q",
                "-Dstyle.color=never",
                "-f",
                str(Path(work) / "pom.xml"),
                _MAVEN_GOAL,
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ]
            log.info("fetching Apache Kafka %s jars into %s", KAFKA_VERSION, lib)
            done = subprocess.run(
                command, cwd=work, capture_output=True, text=True, stdin=subprocess.DEVNULL
            )
            if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
                output = (done.stdout + done.stderr).strip()
                raise LocalKafkaError(
                    f"Maven could not fetch the Kafka {KAFKA_VERSION} jars "
                    f"(exit {done.returncode}):\n{_tail(output, 40)}"
                )
            if lib.exists():
                shutil.rmtree(lib)
            staging.rename(lib)
        (lib / _MARKER).write_text(digest + "\n")
        log.info("fetched Kafka jars in %.1f s", time.monotonic() - started)
    return lib


def _is_complete(lib: Path, digest: str) -> bool:
    marker = lib / _MARKER
    return marker.is_file() and marker.read_text().strip() == digest


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_java() -> str:
    """Path of a ``java`` of version 17 or newer (``$JAVA_HOME/bin/java`` first, then PATH)."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise LocalKafkaError(
            f"Java is not installed: the Kafka broker needs Java {MIN_JAVA} or newer "
            "(e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    version = java_major_version(done.stderr + done.stdout)
    if version is None or version < MIN_JAVA:
        raise LocalKafkaError(
            f"{java} is Java {version or 'of unknown version'}: the Kafka broker needs Java "
            f"{MIN_JAVA} or newer (e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    return java


def java_major_version(text: str) -> int | None:
    """Major version from ``java -version`` output.

    >>> java_major_version('openjdk version "17.0.15" 2025-04-15')
    17
    >>> java_major_version('java version "1.8.0_402"')
    8
    >>> java_major_version("nothing here") is None
    True
    """
    found = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if found is None:
        return None
    major = int(found.group(1))
    if major == 1 and found.group(2) is not None:
        return int(found.group(2))
    return major


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    >>> len(random_cluster_id())
    22
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # as Kafka's Uuid.randomUuid: not mistaken for an option
            return text


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_free(port: int) -> bool:
    """Whether a listener could bind ``127.0.0.1:port`` now (as Kafka does: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


#: SASL mechanisms of the optional SASL_PLAINTEXT listener; every SCRAM user gets both.
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def server_properties(
    data_dir: Path,
    port: int,
    controller_port: int,
    sasl_port: int | None = None,
    sasl_ssl_port: int | None = None,
    keystore: Path | None = None,
) -> str:
    """``server.properties`` of a combined broker + controller on loopback.

    With ``sasl_port`` a ``SASL_PLAINTEXT`` listener (SCRAM-SHA-256 and -512, credentials
    from the cluster metadata) is added for clients, with ``sasl_ssl_port`` and
    ``keystore`` (a PEM file: private key and certificate) a ``SASL_SSL`` one; the broker
    and the controller keep talking PLAINTEXT among themselves.
    """
    listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
    advertised = f"PLAINTEXT://127.0.0.1:{port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    sasl: dict[str, str] = {}
    for name, listener_port in (("SASL_PLAINTEXT", sasl_port), ("SASL_SSL", sasl_ssl_port)):
        if listener_port is None:
            continue
        listeners += f",{name}://127.0.0.1:{listener_port}"
        advertised += f",{name}://127.0.0.1:{listener_port}"
        protocols += f",{name}:{name}"
        prefix = f"listener.name.{name.lower()}"
        sasl[f"{prefix}.sasl.enabled.mechanisms"] = ",".join(SCRAM_MECHANISMS)
        for mechanism in SCRAM_MECHANISMS:
            sasl[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = _SCRAM_LOGIN
        if name == "SASL_SSL":
            if keystore is None:
                raise ValueError("a SASL_SSL listener needs a keystore")
            sasl[f"{prefix}.ssl.keystore.type"] = "PEM"
            sasl[f"{prefix}.ssl.keystore.location"] = str(keystore)
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": listeners,
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": protocols,
        **sasl,
        "log.dirs": str(data_dir / _LOG_DIR),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _read_ports(properties: Path) -> tuple[int, int, int | None, int | None] | None:
    """Broker, controller, SASL_PLAINTEXT and SASL_SSL ports of an earlier run's
    ``server.properties``, if any."""
    if not properties.is_file():
        return None
    found = re.search(
        r"^listeners=PLAINTEXT://127\.0\.0\.1:(\d+),CONTROLLER://127\.0\.0\.1:(\d+)"
        r"(?:,SASL_PLAINTEXT://127\.0\.0\.1:(\d+))?(?:,SASL_SSL://127\.0\.0\.1:(\d+))?$",
        properties.read_text(),
        re.MULTILINE,
    )
    if not found:
        return None
    sasl, sasl_ssl = (None if g is None else int(g) for g in found.group(3, 4))
    return int(found.group(1)), int(found.group(2)), sasl, sasl_ssl


def make_test_certificates(directory: Path) -> tuple[Path, Path]:
    """A throw-away CA and a broker certificate for 127.0.0.1 / localhost, made with the
    ``openssl`` command once per directory; returns (CA certificate, broker keystore PEM)."""
    ca, keystore = directory / "ca.pem", directory / "keystore.pem"
    if ca.is_file() and keystore.is_file():
        return ca, keystore
    openssl = shutil.which("openssl")
    if openssl is None:
        raise LocalKafkaError("a TLS listener needs the openssl command (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    steps = [
        "req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.pem "
        "-subj /CN=driftline-local-test-CA",
        "req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj /CN=127.0.0.1",
        "x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 "
        "-extfile san.cnf -out broker.pem",
    ]
    for step in steps:
        done = subprocess.run(
            [openssl, *step.split()], cwd=directory, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise LocalKafkaError(f"openssl {step} failed:\n{_tail(done.stderr, 10)}")
    pem = (directory / "broker.key").read_text() + (directory / "broker.pem").read_text()
    keystore.write_text(pem)
    return ca, keystore


_SCRAM_TEXT = re.compile(r"[A-Za-z0-9._@+-]+")


def _scram_users(users: Mapping[str, str] | None) -> dict[str, str]:
    """Checked SCRAM users: the storage tool's ``[name=...,password=...]`` syntax has no
    escaping, so names and passwords are kept to characters it reads literally."""
    checked = dict(users or {})
    for name, password in checked.items():
        if not _SCRAM_TEXT.fullmatch(name) or not _SCRAM_TEXT.fullmatch(password):
            raise LocalKafkaError(
                f"SCRAM user {name!r}: names and passwords may only use letters, digits "
                "and . _ @ + -"
            )
    return checked


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


# Brokers started and not yet stopped: kept alive here and killed at interpreter exit.
_RUNNING: set[LocalKafka] = set()


@atexit.register
def _kill_leftovers() -> None:
    for broker in list(_RUNNING):
        broker.kill()


class LocalKafka:
    """One Apache Kafka broker + KRaft controller on loopback, data kept in ``data_dir``.

    Ports are chosen once (or taken from an earlier run in the same ``data_dir``) and kept
    across :meth:`stop` / :meth:`start`, so a restarted broker has the same bootstrap
    address and its data. Use as a context manager or call :meth:`start` / :meth:`stop`.
    ``extra_properties`` are appended to ``server.properties`` (later keys win). After
    :meth:`kill`, the next :meth:`start` waits out the old registration
    (``broker.session.timeout.ms``, 9 s by default) before the broker is ready.

    ``scram_users`` (name -> password) adds a ``SASL_PLAINTEXT`` listener at
    :attr:`sasl_bootstrap` accepting SCRAM-SHA-256 and SCRAM-SHA-512; the users are written
    into the cluster metadata when the storage is formatted (``StorageTool format
    --add-scram``), so they are fixed by the first start of a ``data_dir``. With ``tls``
    a ``SASL_SSL`` listener at :attr:`sasl_ssl_bootstrap` is added too, its certificate
    signed by a throw-away CA (:attr:`ca_file`) made with ``openssl``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        lib_dir: Path | None = None,
        startup_timeout: float = 120.0,
        extra_properties: Mapping[str, str] | None = None,
        scram_users: Mapping[str, str] | None = None,
        tls: bool = False,
        jvm_options: Sequence[str] = _JVM_OPTIONS,
    ) -> None:
        """``jvm_options``: the broker JVM's options; by default a modest heap and the client
        compiler only, which start fastest (:data:`PRODUCTION_JVM_OPTIONS`: Kafka's own)."""
        self.data_dir = Path(data_dir).resolve()
        self.jvm_options = tuple(jvm_options)
        self.startup_timeout = startup_timeout
        self._lib_dir = lib_dir
        self._extra_properties = dict(extra_properties or {})
        self._scram_users = _scram_users(scram_users)
        if tls and not self._scram_users:
            raise LocalKafkaError("the TLS listener is a SASL_SSL one: give scram_users too")
        earlier = _read_ports(self.data_dir / _PROPERTIES)
        self.sasl_port: int | None = None
        """Port of the SASL_PLAINTEXT (SCRAM) listener; None without ``scram_users``."""
        self.sasl_ssl_port: int | None = None
        """Port of the SASL_SSL (SCRAM over TLS) listener; None without ``tls``."""
        if earlier is not None:
            self.port = port if port is not None else earlier[0]
            self.controller_port = earlier[1]
            extra = iter(free_ports(2))
            if self._scram_users:
                self.sasl_port = earlier[2] if earlier[2] is not None else next(extra)
            if tls:
                self.sasl_ssl_port = earlier[3] if earlier[3] is not None else next(extra)
        else:
            picked = free_ports(4)
            while port is not None and port in picked:
                picked = free_ports(4)
            self.port = port if port is not None else picked[0]
            self.controller_port = picked[1]
            if self._scram_users:
                self.sasl_port = picked[2]
            if tls:
                self.sasl_ssl_port = picked[3]
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def bootstrap(self) -> str:
        """Bootstrap address for clients, ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """Bootstrap address of the SCRAM listener (``SASL_PLAINTEXT``), ``127.0.0.1:PORT``."""
        if self.sasl_port is None:
            raise LocalKafkaError("this broker has no SASL listener (no scram_users given)")
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        """Bootstrap address of the SCRAM-over-TLS listener (``SASL_SSL``)."""
        if self.sasl_ssl_port is None:
            raise LocalKafkaError("this broker has no SASL_SSL listener (tls not asked for)")
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients of the SASL_SSL listener trust (made at first start)."""
        return self.data_dir / "tls" / "ca.pem"

    @property
    def log_path(self) -> Path:
        """The broker's log file (appended to by every start)."""
        return self.data_dir / _BROKER_LOG

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Format storage if new, start the broker and wait until it answers Kafka requests."""
        if self.running:
            return
        ports = (self.port, self.controller_port, self.sasl_port, self.sasl_ssl_port)
        for port in [p for p in ports if p is not None]:
            if not port_is_free(port):
                raise LocalKafkaError(f"port 127.0.0.1:{port} is in use (another Kafka?)")
        java = find_java()
        lib = ensure_jars(self._lib_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = self.data_dir / _PROPERTIES
        keystore = None
        if self.sasl_ssl_port is not None:
            _, keystore = make_test_certificates(self.data_dir / "tls")
        text = server_properties(
            self.data_dir,
            self.port,
            self.controller_port,
            self.sasl_port,
            self.sasl_ssl_port,
            keystore,
        )
        text += "".join(f"{key}={value}\n" for key, value in self._extra_properties.items())
        properties.write_text(text)
        log_config = self.data_dir / _LOG_CONFIG
        log_config.write_bytes(_packaged(_LOG_CONFIG))
        java_command = [java, *self.jvm_options, f"-Dlog4j2.configurationFile={log_config}"]
        java_command += ["-cp", str(lib / "*")]
        if not (self.data_dir / _LOG_DIR / "meta.properties").is_file():
            self._format(java_command, properties)
        with self.log_path.open("ab") as log_file:
            self._log_offset = log_file.tell()
            command = [*java_command, "kafka.Kafka", str(properties)]
            self._process = subprocess.Popen(
                command,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _RUNNING.add(self)
        started = time.monotonic()
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        log.info("Kafka broker %s up in %.1f s", self.bootstrap, time.monotonic() - started)

    def _format(self, java_command: list[str], properties: Path) -> None:
        command = [*java_command, "kafka.tools.StorageTool", "format", "--standalone"]
        command += ["-t", random_cluster_id(), "-c", str(properties)]
        for name, password in sorted(self._scram_users.items()):
            for mechanism in SCRAM_MECHANISMS:
                command += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        done = subprocess.run(
            command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
        if done.returncode != 0:
            raise LocalKafkaError(
                f"formatting Kafka storage in {self.data_dir} failed "
                f"(exit {done.returncode}):\n{_tail(done.stdout + done.stderr, 30)}"
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer yet"
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise LocalKafkaError(
                    f"the Kafka broker exited (code {code}) before accepting connections; "
                    f"from {self.log_path}:\n{self._failure_excerpt()}"
                )
            try:
                if broker_ready(self.bootstrap):
                    return
                last_error = "no live broker in the metadata yet"
            except OSError as error:
                last_error = str(error) or type(error).__name__
            if time.monotonic() > deadline:
                raise LocalKafkaError(
                    f"the Kafka broker did not accept connections on {self.bootstrap} within "
                    f"{self.startup_timeout:.0f} s ({last_error}); from {self.log_path}:\n"
                    f"{self._failure_excerpt()}"
                )
            time.sleep(0.25)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the broker logged since its latest start."""
        return _tail(self._log_since_start(), lines) or "(broker log is empty)"

    def _log_since_start(self) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _failure_excerpt(self) -> str:
        """The first error the broker logged (with its stack's head) and its last lines."""
        lines = self._log_since_start().splitlines()
        first = next((i for i, line in enumerate(lines) if _ERROR_LINE.match(line)), None)
        parts = []
        if first is not None:
            error = [line for line in lines[first:] if not line.startswith(("\tat ", "\t..."))]
            parts = ["first error:", *error[:8], "..."]
        return "\n".join([*parts, "last lines:", *lines[-12:]])

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down with SIGTERM; SIGKILL it if it takes over ``timeout`` s."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Kafka broker ignored SIGTERM for %.0f s; killing it", timeout)
                _signal_group(process, signal.SIGKILL)
                process.wait()
        self._process = None
        _RUNNING.discard(self)

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self._process = None
        _RUNNING.discard(self)


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


# --- a minimal Kafka wire-protocol probe: ApiVersions, then Metadata --------------------

_API_VERSIONS = 18
_METADATA = 3
_METADATA_VERSION = 4  # non-flexible; Kafka 4 serves Metadata v4 and newer (KIP-896)


def broker_ready(bootstrap: str, timeout: float = 5.0) -> bool:
    """Whether the broker at ``bootstrap`` answers ApiVersions and lists a live broker.

    Raises ``OSError`` when it cannot be reached or answers garbage.
    """
    host, _, port = bootstrap.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        versions = _api_versions(conn)
        low, high = versions.get(_METADATA, (0, -1))
        if not low <= _METADATA_VERSION <= high:
            raise OSError(f"broker serves Metadata v{low}-v{high}, not v{_METADATA_VERSION}")
        return _live_brokers(conn) > 0


def _request(
    conn: socket.socket, api_key: int, version: int, correlation: int, body: bytes
) -> bytes:
    client = b"driftline-probe"
    header = struct.pack(">hhih", api_key, version, correlation, len(client)) + client
    message = header + body
    conn.sendall(struct.pack(">i", len(message)) + message)
    (size,) = struct.unpack(">i", _read_exactly(conn, 4))
    payload = _read_exactly(conn, size)
    (answered,) = struct.unpack_from(">i", payload)
    if answered != correlation:
        raise OSError(f"response to correlation id {answered}, expected {correlation}")
    return payload[4:]


def _api_versions(conn: socket.socket) -> dict[int, tuple[int, int]]:
    body = _request(conn, _API_VERSIONS, 0, 1, b"")
    error, count = struct.unpack_from(">hi", body)
    if error != 0:
        raise OSError(f"ApiVersions error code {error}")
    ranges = {}
    for i in range(count):
        key, low, high = struct.unpack_from(">hhh", body, 6 + 6 * i)
        ranges[key] = (low, high)
    return ranges


def _live_brokers(conn: socket.socket) -> int:
    # topics: empty array (no topics), allow_auto_topic_creation: false
    body = _request(conn, _METADATA, _METADATA_VERSION, 2, struct.pack(">ib", 0, 0))
    _throttle, brokers = struct.unpack_from(">ii", body)
    return int(brokers)


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks += chunk
    return bytes(chunks)


# --- `driftline local-kafka` --------------------------------------------------------------


class _StopRequestedError(Exception):
    """Raised by the signal handler to leave the foreground run."""


def run_local_kafka(port: int | None, data_dir: Path | None) -> int:
    """Run a broker in the foreground until SIGTERM / SIGINT; print its bootstrap address.

    Without ``data_dir`` the data lives in a temporary directory removed at exit. Returns
    the process exit code: 0 after a clean stop, 1 if the broker could not start or died.
    """
    stopping = False

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _StopRequestedError

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    scratch = None if data_dir is not None else Path(tempfile.mkdtemp(prefix="driftline-kafka-"))
    broker: LocalKafka | None = None
    try:
        directory = data_dir if data_dir is not None else scratch
        assert directory is not None
        broker = LocalKafka(directory, port=port)
        _status(f"starting Apache Kafka {KAFKA_VERSION} in {broker.data_dir} ...")
        broker.start()
        print(f"bootstrap: {broker.bootstrap}", flush=True)
        _status(f"broker log: {broker.log_path}; stop with Ctrl-C or SIGTERM")
        while broker.running:
            time.sleep(0.5)
        _status(f"the Kafka broker exited; end of its log:\n{broker.log_tail()}")
        return 1
    except _StopRequestedError:
        _status("stopping the Kafka broker ...")
        return 0
    except LocalKafkaError as error:
        _status(f"error: {error}")
        return 1
    finally:
        try:
            if broker is not None:
                broker.stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


def _status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


__all__ = [
    "CACHE_ENV",
    "KAFKA_VERSION",
    "LocalKafka",
    "LocalKafkaError",
    "broker_ready",
    "default_cache_dir",
    "ensure_jars",
    "find_java",
    "run_local_kafka",
]
