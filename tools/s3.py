"""A private S3 server on 127.0.0.1 for tests and benchmarks: moto's server mode, as a process.

moto (`moto[server]`) implements the S3 API in memory, multipart uploads included; it runs as
its own process on a free port, like a real S3 endpoint would be another machine, and is stopped
by PID. Its credentials are fixed dummies: the server accepts any, and they must never be real
ones (they are put into the environment boto3 reads).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import boto3
import httpx

from tools.procs import ServerProcess, ServerProcessContext, free_tcp_port

# moto accepts any credentials; these say plainly that they are not real.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "pullprint-test",
    "AWS_SECRET_ACCESS_KEY": "pullprint-test-not-a-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_START_TIMEOUT_S = 30.0


class PrivateS3(ServerProcessContext):
    """moto's S3 server on 127.0.0.1 (a free port), with in-memory buckets.

    Args:
        log_path: where the server's output goes (a failed start shows its end); None discards it.
    """

    def __init__(self, log_path: Path | None = None) -> None:
        self.port = free_tcp_port()
        self._server = ServerProcess("the moto S3 server", log_path)

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
        self._server.start(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            ready=self._answers,
            timeout_s=_START_TIMEOUT_S,
            env=env,
            interval_s=0.1,
        )

    def _answers(self) -> bool:
        try:
            httpx.get(self.endpoint_url, timeout=1.0, trust_env=False)
        except httpx.TransportError:
            return False
        return True

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
        self._server.stop()
