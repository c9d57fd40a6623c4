# Sound on intel-hda with hda-duplex (x86_64 pc and q35) and on usb-audio
# on qemu-xhci (AArch64 virt; qrr's x86_64 build has no usb-audio):
# record the Linux test guest with qrr.audio=N, which loads snd_hda_intel,
# snd_usb_audio and the OSS emulation, plays N bytes of /dev/urandom on
# /dev/dsp (unsigned 8-bit mono at 8 kHz) and then captures N bytes from
# it, printing what it played and captured (bytes, md5).  Then replay the
# log.  The replay must print what the recording printed and exit 0; with
# -audiodev wav it must write the same samples to its own wav file as the
# recording did (and these must be the sound of N bytes, not silence);
# with -audiodev none (which, unlike wav, captures: silence) the guest
# must have captured its N bytes, and the log must hold the frames played
# and captured.  usb-audio is a speaker only: nothing to capture there.
#
# Copyright (c) 2026 The qrr authors
# SPDX-License-Identifier: GPL-2.0-or-later

import re
import wave

import pytest

import qrrtest as q

N = 16000           # bytes the guest plays and captures: 2 s at 8 kHz
OSS_RATE = 8000     # OSS's default rate, 1 byte a frame
# the fraction of the frames N bytes make at the host's rate that the
# wav file and the log must at least hold
ENOUGH = 0.9

HDA = (['-device', 'intel-hda', '-device', 'hda-duplex,audiodev=snd0'],
       b'audio:  0 [Intel ]: HDA-Intel - HDA Intel')
USB = (['-device', 'qemu-xhci', '-device', 'usb-audio,audiodev=snd0'],
       b'audio:  0 [Audio ]: USB-Audio - QEMU USB Audio')

# cell: machine, audio backend, (devices, the guest's line naming its card)
CELLS = {
    'q35-hda-wav': ('q35', 'wav', HDA),
    'pc-hda-none': ('pc', 'none', HDA),
    'virt-usb-audio-wav': ('virt-a57', 'wav', USB),
}

PLAYING = re.compile(rb'^audio: playing (\d+) bytes ([0-9a-f]{32}) ', re.M)
CAPTURED = re.compile(rb'^audio: captured (\d+) bytes ([0-9a-f]{32}) ', re.M)


def audio_args(machine, backend, devices, wav=None):
    dev = f'{backend},id=snd0' + (f',path={wav}' if wav else '')
    return q.linux_args(machine, f'qrr.audio={N}') + \
        ['-audiodev', dev] + devices


def log_frames(log):
    """The frames the log says were played and captured: (out, in)."""
    out = inn = 0
    for e in q.log_events(log):
        if e['kind'] == 'audio-out':
            out += e['args']['played']
        elif e['kind'] == 'audio-in':
            inn += e['args']['captured']
    return out, inn


def wav_frames(path):
    """The wav file's rate and its sample data."""
    with wave.open(str(path)) as w:
        return w.getframerate(), w.readframes(w.getnframes())


@pytest.mark.parametrize('cell', CELLS)
def test_audio_replays(tmp_path, cell):
    machine, backend, (devices, card) = CELLS[cell]
    arch = q.MACHINES[machine][0]
    log = tmp_path / 'audio.rr'
    wavs = [tmp_path / f'{m}.wav' if backend == 'wav' else None
            for m in ('record', 'replay')]

    rec = q.run(arch, audio_args(machine, backend, devices, wavs[0]) +
                q.icount_opt('record', log), timeout=300)
    assert rec.rc == 0, 'record failed: ' + rec.describe()
    out = rec.guest_output()
    assert card in out, rec.describe()
    played = PLAYING.search(out)
    assert played and int(played.group(1)) == N, rec.describe()
    # (the kernel may print between the two lines)
    assert b'audio: played rc 0 ' in out, rec.describe()
    captured = CAPTURED.search(out)
    assert captured, rec.describe()

    rep = q.run(arch, audio_args(machine, backend, devices, wavs[1]) +
                q.icount_opt('replay', log), timeout=300)
    assert rep.rc == 0, 'replay failed: ' + rep.describe()
    q.assert_same_output(rec, rep)

    # what N bytes at OSS's rate make at @rate
    def least(rate):
        return ENOUGH * N / OSS_RATE * rate

    out_frames, in_frames = log_frames(log)
    if backend == 'wav':
        rate, samples = wav_frames(wavs[0])
        assert len(samples) // 4 >= least(rate), (rate, len(samples))
        assert len(set(samples)) > 16, 'the recording played silence'
        assert wav_frames(wavs[1]) == (rate, samples), \
            'the replay played other samples than the recording'
        assert out_frames >= least(rate), out_frames
        # the wav backend captures nothing (the guest's read timed out),
        # nor does usb-audio (no capture device)
        assert int(captured.group(1)) == 0, rec.describe()
    else:
        assert int(captured.group(1)) == N, rec.describe()
        assert out_frames >= least(44100), out_frames
        assert in_frames >= least(44100), in_frames
    assert b'error' not in rep.err.lower(), rep.describe()
