# A short run of the log reader's fuzz target (tests/fuzz), and proof that
# the harness reports a bug when there is one.  The long run is
# "make fuzz" (tooling/run-fuzz.sh); see docs/devel/replay.rst.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest

import qrrtest as q

FUZZ = q.BUILD / 'fuzz'
SECONDS = int(os.environ.get('QRR_FUZZ_TEST_SECONDS', '20'))


def fuzzer_runtime():
    """Path of clang's libFuzzer runtime, or None."""
    if not shutil.which('clang'):
        return None
    p = subprocess.run(['clang', '-print-file-name=libclang_rt.fuzzer-x86_64.a'],
                       capture_output=True, text=True)
    path = p.stdout.strip()
    if p.returncode == 0 and os.path.isabs(path) and os.path.exists(path):
        return path
    p = subprocess.run(['clang', '-print-resource-dir'], capture_output=True,
                       text=True)
    path = os.path.join(p.stdout.strip(), 'lib', 'linux',
                        'libclang_rt.fuzzer-x86_64.a')
    return path if os.path.exists(path) else None


pytestmark = pytest.mark.skipif(
    fuzzer_runtime() is None,
    reason="clang's libFuzzer runtime is missing "
           '(apt-get install clang libclang-rt-14-dev)')


@pytest.fixture(scope='module')
def built():
    subprocess.run(['bash', str(q.TOP / 'tooling' / 'build-fuzz.sh'),
                    '--selftest'], check=True)
    return FUZZ


def make_log(fingerprint):
    """A complete log: @fingerprint and one empty final chunk."""
    fp = fingerprint.encode()
    hdr = b'QRRLOG\r\n' + struct.pack('<III', 1, 24 + len(fp), len(fp)) + fp
    hdr += struct.pack('<I', zlib.crc32(hdr))
    chunk = b'QRCK' + struct.pack('<IQQIIIBBHI', 0, 0, 0, 0, 0, 0, 0, 1, 0,
                                  zlib.crc32(b''))
    return hdr + chunk + struct.pack('<I', zlib.crc32(chunk))


def test_short_fuzz_run(built, tmp_path):
    """~20 s over the seed corpus: no finding, mutated inputs run."""
    env = dict(os.environ, QRR_FUZZ_CORPUS=str(tmp_path / 'corpus'))
    p = subprocess.run(['bash', str(q.TOP / 'tooling' / 'run-fuzz.sh'),
                        str(SECONDS)], env=env, capture_output=True,
                       text=True, timeout=SECONDS + 900)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    m = re.search(r'stat::number_of_executed_units: (\d+)', out)
    assert m, out
    # past the seed corpus into mutations (a count, not a speed: a loaded
    # host runs fewer)
    seeds = re.search(r'\((\d+) inputs in ', out)
    assert seeds, out
    assert int(m.group(1)) > int(seeds.group(1)), out


def test_regressions_pass(built):
    """The inputs of past findings (tests/fuzz/regressions) run clean."""
    regressions = sorted((q.TOP / 'tests' / 'fuzz' / 'regressions').iterdir())
    assert regressions
    p = subprocess.run([str(built / 'fuzz-replay-log')] +
                       [str(f) for f in regressions],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_harness_reports_a_planted_bug(built, tmp_path):
    """The -DQRR_FUZZ_SELFTEST build has a use-after-free that a log with
    fingerprint "qrr-fuzz-selftest" triggers.  Started from a log one byte
    away, the fuzzer must find it and fail with ASan's report and the input
    saved; the regular build must read that same input without complaint."""
    corpus = tmp_path / 'corpus'
    corpus.mkdir()
    (corpus / 'near.rr').write_bytes(make_log('qrr-fuzz-selftesT'))
    p = subprocess.run([str(built / 'fuzz-replay-log-selftest'),
                        '-max_total_time=120', '-timeout=30',
                        f'-artifact_prefix={tmp_path}/', str(corpus)],
                       capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert p.returncode != 0, p.stderr[-3000:]
    assert 'ERROR: AddressSanitizer: heap-use-after-free' in p.stderr, \
        p.stderr[-3000:]
    assert 'selftest_bug' in p.stderr, p.stderr[-3000:]
    crashes = list(tmp_path.glob('crash-*'))
    assert len(crashes) == 1, p.stderr[-3000:]

    # the saved input reproduces, and is clean for the real target
    p = subprocess.run([str(built / 'fuzz-replay-log-selftest'),
                        str(crashes[0])], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0
    p = subprocess.run([str(built / 'fuzz-replay-log'), str(crashes[0])],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
