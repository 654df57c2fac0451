import numpy as np
import pytest
import soundfile as sf
import torch

from weaktag.audio import AudioError, LogMel, load_audio, mel_filterbank, num_frames, pad_or_truncate

from conftest import write_tone


def test_ten_seconds_give_998_frames():
    assert num_frames(160000) == 998
    feats = LogMel()(torch.zeros(2, 160000))
    assert feats.shape == (2, 998, 64)


def test_logmel_of_silence_is_log_offset_and_tone_lands_in_its_band():
    lm = LogMel()
    assert torch.allclose(lm(torch.zeros(1, 16000)), torch.full((1, 98, 64), float(np.log(0.01))))
    t = torch.arange(16000) / 16000
    feats = lm(0.5 * torch.sin(2 * np.pi * 1000 * t).unsqueeze(0))[0]
    peak_band = int(feats.mean(0).argmax())
    # 1 kHz on a 64-band HTK mel scale over 125-7500 Hz sits near band 19
    assert 16 <= peak_band <= 22


def test_mel_filters_cover_125_to_7500_hz():
    w = mel_filterbank()
    hz = np.linspace(0, 8000, 257)
    active = hz[w.numpy().sum(1) > 0]
    assert active.min() >= 125 - 31.25 and active.max() <= 7500 + 31.25


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_any_rate_and_channel_count_become_mono_16k(tmp_path, sr, channels):
    path = write_tone(tmp_path / "x.wav", seconds=0.5, sr=sr, channels=channels)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 8000) <= 1


@pytest.mark.parametrize("fmt,subtype", [("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")])
def test_compressed_formats(tmp_path, fmt, subtype):
    path = tmp_path / f"x.{fmt}"
    t = np.arange(22050) / 22050
    try:
        sf.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t), 22050, format=fmt.upper(), subtype=subtype)
    except Exception as exc:  # libsndfile built without this codec
        pytest.skip(f"libsndfile cannot write {fmt}: {exc}")
    wave = load_audio(path)
    assert abs(len(wave) - 16000) < 1200 and np.abs(wave).max() > 0.1


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
    with pytest.raises(AudioError, match="corrupt.wav: cannot decode"):
        load_audio(path)


def test_not_audio_at_all(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are my notes, not audio")
    with pytest.raises(AudioError, match="notes.wav"):
        load_audio(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0), 16000)
    with pytest.raises(AudioError, match="empty.wav: .*empty"):
        load_audio(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="zero.wav"):
        load_audio(path)


def test_silent_file_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(str(path), np.zeros(16000), 16000)
    with pytest.raises(AudioError, match="silent.wav: .*silent"):
        load_audio(path)
    assert load_audio(path, allow_silent=True).shape == (16000,)


def test_pad_or_truncate():
    assert pad_or_truncate(np.ones(10, np.float32), 4).tolist() == [1, 1, 1, 1]
    assert pad_or_truncate(np.ones(2, np.float32), 4).tolist() == [1, 1, 0, 0]
