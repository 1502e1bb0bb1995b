"""Fixtures for the IPP endpoint tests: the real cloud on 127.0.0.1 with a user ready to print."""

from __future__ import annotations

import base64
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.container import Decryptor
from cloud.identity import StationPrincipal, UserPrincipal
from cloud.server import RunningServer, start_in_thread
from cloud.service import CloudService
from cloud.states import ReleaseState
from cloud.tls import ServerCertificates
from hardware.ipp.codec import Attribute, IppMessage, decode_message, encode_message
from hardware.ipp.enums import Operation, Tag
from tests.cloud.conftest import make_config, pair_station, random_tag
from tools.cupsd import PrivateCupsd, environment_without_proxies  # noqa: F401  (used by the tests)

EMAIL = "ada@example.org"


@dataclass
class IppWorld:
    """A running cloud, its service, and a user with an app passcode, a badge and a station."""

    server: RunningServer
    service: CloudService
    user: UserPrincipal
    api_token: str
    passcode: str
    tag: str
    station: StationPrincipal

    @property
    def scheme(self) -> str:
        """`ipps` when the server speaks TLS, else `ipp`."""
        return "ipps" if self.server.certificates is not None else "ipp"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx trusts: the server's own (self-signed) certificate when it speaks TLS."""
        if self.server.certificates is None:
            return True
        return ssl.create_default_context(cafile=self.server.certificates.cert_file)

    @property
    def url(self) -> str:
        """The HTTP URL of the endpoint."""
        return f"{self.server.url}/ipp/print"

    @property
    def printer_uri(self) -> str:
        """The queue's URI without credentials."""
        return f"{self.scheme}://127.0.0.1:{self.server.port}/ipp/print"

    def uri_with_credentials(self) -> str:
        """ipp://email:passcode@host:port/ipp/print, as CUPS and ipptool take credentials."""
        user = urllib.parse.quote(EMAIL, safe="")
        return f"{self.scheme}://{user}:{self.passcode}@127.0.0.1:{self.server.port}/ipp/print"

    def basic(self) -> dict[str, str]:
        """HTTP Basic credentials of the user."""
        raw = base64.b64encode(f"{EMAIL}:{self.passcode}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def post(self, body: bytes, **headers: str) -> httpx.Response:
        """POST raw bytes to /ipp/print as the user."""
        return httpx.post(
            self.url,
            content=body,
            headers={"Content-Type": "application/ipp", **self.basic(), **headers},
            timeout=30,
            verify=self.verify,
        )

    def call(
        self,
        operation: Operation,
        *attributes: Attribute,
        data: bytes = b"",
        job: list[Attribute] | None = None,
        request_id: int = 1,
    ) -> IppMessage:
        """Send one IPP request and decode the response."""
        request = IppMessage.request(
            operation,
            request_id,
            Attribute.of("printer-uri", Tag.URI, self.printer_uri),
            *attributes,
        )
        if job:
            request.add_group(Tag.JOB_ATTRIBUTES, *job)
        reply = self.post(encode_message(request) + data)
        assert reply.status_code == 200, reply.text
        message, _ = decode_message(reply.content)
        return message


class ReleasingUser:
    """The user at a printer: taps their badge whenever they have held jobs, and the station
    prints them (fetches and decrypts the content, then reports "printed").

    ipp-1.1.test waits for a job to complete and then expects a completed job to exist, which in
    pull printing happens only once its owner releases it at a printer: this plays that part.
    """

    def __init__(self, world: IppWorld, interval_s: float = 0.05) -> None:
        self.world = world
        self.interval_s = interval_s
        self.printed: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="releasing-user", daemon=True)

    def __enter__(self) -> ReleasingUser:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        service, station = self.world.service, self.world.station
        while not self._stop.wait(self.interval_s):
            if not service.jobs.list_held(self.world.user.id):
                continue
            session = service.sessions.open(station, self.world.tag)
            for grant in service.releases.create(station, session.id, None):
                stream = service.releases.open_content(station, grant.id)
                decryptor = Decryptor(grant.data_key, grant.job_id, grant.site)
                try:
                    plain = b"".join(decryptor.update(chunk) for chunk in stream)
                finally:
                    stream.close()
                self.printed.append(plain + decryptor.finalize())
                service.releases.report_outcome(station, grant.id, ReleaseState.PRINTED)
            service.sessions.end(station, session.id)


def start_world(config: CloudConfig, certificates: ServerCertificates | None = None) -> IppWorld:
    app = create_app(config, run_sweeper=False)
    server = start_in_thread(app, certificates=certificates)
    service: CloudService = app.state.service
    issued = service.identity.create_user(EMAIL, "Ada Lovelace")
    passcode = service.passcodes.issue(issued.id, "ipptool").passcode
    tag = random_tag()
    service.identity.add_card(issued.id, tag, "badge")
    station = pair_station(service)
    return IppWorld(
        server=server,
        service=service,
        user=service.identity.authenticate_user(issued.api_token),
        api_token=issued.api_token,
        passcode=passcode,
        tag=tag,
        station=station.principal,
    )


@pytest.fixture
def ipp_world(tmp_path: Path) -> Iterator[IppWorld]:
    world = start_world(make_config(tmp_path / "data"))
    try:
        yield world
    finally:
        world.server.stop()


def lpadmin(cupsd: PrivateCupsd, *args: str) -> subprocess.CompletedProcess[str]:
    """`lpadmin ARGS` against a private cupsd, retried while cupsd is still settling in.

    Right after start-up cupsd sometimes drops the first connection ("Unable to connect to
    server: Bad file descriptor"), as tools/bench_ipp.py found too.
    """
    for _attempt in range(20):
        added = cupsd.run("lpadmin", *args)
        if "Unable to connect" not in added.stderr:
            return added
        time.sleep(0.25)
    return added
