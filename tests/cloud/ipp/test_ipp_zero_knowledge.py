"""The IPP endpoint in a zero-knowledge site seals on intake: IPP clients (CUPS, the OS print
dialogs) cannot encrypt, so the cloud encrypts the document as it streams in and wraps the data
key to the site's public key, never to its master key; nothing of the plaintext is stored, not
even its digest, and only a holder of the site private key can read the job afterwards."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.container import ContainerError, Decryptor, hpke_unwrap_key, unwrap_key
from cloud.db import Job
from cloud.policies import PolicyChange
from hardware.ipp.enums import StatusCode
from tests.cloud.ipp.conftest import IppWorld
from tests.cloud.ipp.test_ipp_endpoint import PDF, print_job


def test_print_job_to_a_zero_knowledge_site_is_sealed_on_intake(ipp_world: IppWorld) -> None:
    service = ipp_world.service
    site_key = X25519PrivateKey.generate()
    public = site_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    service.policies.update(
        ipp_world.user.site, PolicyChange(zero_knowledge=True, public_key=public)
    )
    reply = print_job(ipp_world)
    assert reply.status_code == StatusCode.SUCCESSFUL_OK
    [job] = service.jobs.list_held(ipp_world.user.id, ipp_world.user.site)
    assert (job.key_wrap, job.sha256, job.pages) == ("hpke", None, 1)
    with service.context.read() as db:
        row = db.get(Job, job.id)
        assert row is not None and row.wrapped_key is not None and row.blob_key is not None
        wrapped, blob_key = row.wrapped_key, row.blob_key
    stored = service.blobs.open(blob_key).read()
    assert PDF[:64] not in stored
    with pytest.raises(ContainerError):
        unwrap_key(service.config.master_key, wrapped, job.id)
    data_key = hpke_unwrap_key(site_key, wrapped, job.id, ipp_world.user.site)
    decryptor = Decryptor(data_key, job.id, ipp_world.user.site)
    assert decryptor.update(stored) + decryptor.finalize() == PDF
