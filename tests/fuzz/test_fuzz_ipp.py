"""A bounded atheris run over the IPP decoder, seeded with the regression corpus."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.fuzz.make_corpus import CORPUS, MAX_FILE_BYTES, entries

TARGET = Path(__file__).resolve().parent / "fuzz_ipp_decode.py"


def test_the_corpus_on_disk_is_what_the_generator_writes() -> None:
    stored = {p.stem: p.read_bytes() for p in CORPUS.glob("*.ipp")}
    expected = {n: d for n, (d, _) in entries().items() if len(d) <= MAX_FILE_BYTES}
    assert stored == expected, "run: python -m tests.fuzz.make_corpus"


def test_fuzzing_the_decoder_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"  # libFuzzer writes new inputs here, not into the checked-in one
    shutil.copytree(CORPUS, corpus)
    (corpus / "EXPECTED").unlink()
    result = subprocess.run(
        [
            sys.executable,
            str(TARGET),
            "-atheris_runs=60000",
            "-max_total_time=20",
            "-max_len=4096",
            "-timeout=5",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-"))]
    assert result.returncode == 0 and not crashes, result.stderr[-4000:]
    assert "Done" in result.stderr, result.stderr[-2000:]
