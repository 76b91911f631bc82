"""Audio files (``.wav``, ``.flac``, ``.ogg``) by libsndfile, truncated files refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError

# libsndfile opens a WAV whose data chunk runs past the end of the file and returns only the
# frames that are there; the only trace is this line of its log.
_WAV_DATA_TOO_LONG = re.compile(r"^\s*data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_WAV_UNKNOWN_LENGTH = 0xFFFFFFFF  # streaming writers put this in the header; not a truncation


def read_audio(path: Path) -> tuple[np.ndarray, float]:
    import soundfile

    try:
        with soundfile.SoundFile(path) as audio:
            expected = audio.frames
            frames = audio.read(always_2d=True, dtype="float32")
            sample_rate = float(audio.samplerate)
            log = audio.extra_info
    except (RuntimeError, TypeError, ValueError) as error:
        # soundfile raises LibsndfileError (a RuntimeError) for undecodable data; TypeError and
        # ValueError come from formats it recognises but cannot map.
        raise DeepselfError(f"{path}: cannot be decoded as audio: {error}") from None
    if len(frames) < expected:
        raise DeepselfError(
            f"{path}: cannot be decoded as audio: truncated, {len(frames)} of {expected} frames read"
        )
    too_long = _WAV_DATA_TOO_LONG.search(log)
    if too_long and int(too_long.group(1)) != _WAV_UNKNOWN_LENGTH:
        claimed, present = int(too_long.group(1)), int(too_long.group(2))
        if claimed > present:
            raise DeepselfError(
                f"{path}: cannot be decoded as audio: truncated, the header announces {claimed} "
                f"bytes of samples but the file holds {present}"
            )
    return np.ascontiguousarray(frames.T), sample_rate
