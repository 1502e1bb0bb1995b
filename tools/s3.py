"""A private S3 server on 127.0.0.1 for tests and benchmarks: moto's server mode, as a process.

moto (`moto[server]`) implements the S3 API in memory, multipart uploads included; it runs as
its own process on a free port, like a real S3 endpoint would be another machine, and is stopped
by PID. Its credentials are fixed dummies: the server accepts any, and they must never be real
ones (they are put into the environment boto3 reads).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from types import TracebackType
from typing import Self

import boto3
import httpx

# moto accepts any credentials; these say plainly that they are not real.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "pullprint-test",
    "AWS_SECRET_ACCESS_KEY": "pullprint-test-not-a-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateS3:
    """moto's S3 server on 127.0.0.1 (a free port), with in-memory buckets."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """Where boto3 reaches the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server; returns once it answers."""
        env = {
            **{k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
            **DUMMY_CREDENTIALS,
        }
        self._process = subprocess.Popen(  # noqa: S603 - moto's server, our arguments
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                httpx.get(self.endpoint_url, timeout=1.0, trust_env=False)
                return
            except httpx.TransportError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.1)

    def create_bucket(self, name: str) -> None:
        """Create a bucket (idempotent)."""
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the server by PID."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            self._process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
