"""Seeded per-utterance augmentation of synthetic speech.

``sample_augment(rng, cfg)`` draws a JSON-serialisable parameter dict (what is done to one
utterance); ``apply_augment(x, sr, params, noise_bank)`` does it, deterministically: any random
signal (noise, room response) is drawn from a generator seeded by ``params["seed"]``.

Chain: speed (resample, like Kaldi's sox speed perturbation; applied at the resampling step in
generate.py) -> band-limit (low-pass, telephone-like) -> reverberation (synthetic exponentially
decaying room response) -> leading/trailing silence -> additive noise (white, pink or babble) at a
random SNR -> random gain (peak level) -> optional low-level noise (white or pink, at a set RMS
level in dBFS) in the leading/trailing padding instead of digital silence -> lossy codec (GSM
06.10, G.711 mu-law, MP3, Opus or Vorbis through libsndfile, encoded and decoded in memory;
telephone codecs run at 8 kHz).

The codec and padding-noise draws come from generators of their own (seeded by ``params["seed"]``),
so turning either on or off changes no other draw.

:func:`resample` is the corpus's one resampler (engine rate and speed factor -> 16 kHz, the babble
tracks, the 8 kHz codecs). It is not :func:`asr.audio.resample` (the model-input resampler,
torchaudio's Kaiser sinc, numpy only): the filters differ, so most 16-bit samples of a corpus wav
would change, and the corpus (and the recipe's figures for a seed) is defined by this one.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np
from scipy import signal
from ..errors import ConfigError

NOISE_TYPES = ("white", "pink", "babble")
# codec -> (sample rate it runs at, soundfile format, subtype, takes a compression level)
CODEC_SPECS = {
    "gsm": (8000, "WAV", "GSM610", False),               # GSM 06.10 full rate, 13 kbit/s (mobile phone)
    "ulaw": (8000, "WAV", "ULAW", False),                # G.711 mu-law, 64 kbit/s (landline telephony)
    "mp3": (8000, "MP3", "MPEG_LAYER_III", True),        # MPEG layer III at 8 kHz, ~8-24 kbit/s
    "opus": (16000, "OGG", "OPUS", True),                # Opus (VoIP), wideband
    "vorbis": (16000, "OGG", "VORBIS", True),            # Ogg Vorbis
}
CODECS = tuple(CODEC_SPECS)


@dataclass(frozen=True)
class AugmentConfig:
    p_speed: float = 0.5            # probability of a speed change
    speed_range: tuple[float, float] = (0.9, 1.1)
    p_bandlimit: float = 0.15       # probability of a low-pass (telephone-ish bandwidth)
    cutoff_range: tuple[float, float] = (3000.0, 6500.0)
    p_reverb: float = 0.3
    rt60_range: tuple[float, float] = (0.15, 0.8)   # seconds
    drr_range: tuple[float, float] = (-3.0, 12.0)   # direct-to-reverberant ratio, dB
    p_noise: float = 0.6
    snr_range: tuple[float, float] = (5.0, 30.0)    # dB, relative to the speech
    noise_weights: tuple[float, float, float] = (0.3, 0.35, 0.35)  # white, pink, babble
    pad_range: tuple[float, float] = (0.05, 0.4)    # seconds of silence added at each end
    peak_db_range: tuple[float, float] = (-24.0, -1.0)  # final peak level, dBFS
    p_codec: float = 0.0            # probability of a lossy codec (drawn from its own generator)
    codec_level_range: tuple[float, float] = (0.5, 0.95)  # libsndfile compression level (higher = lower bit rate; LAME refuses 1.0)
    pad_noise_db: float | None = None  # RMS level (dBFS) of white/pink noise in the padding; None: exact zeros

    @classmethod
    def none(cls) -> "AugmentConfig":
        """Clean audio: no speed, band-limit, reverb or noise (gain and padding still vary)."""
        return cls(p_speed=0.0, p_bandlimit=0.0, p_reverb=0.0, p_noise=0.0)


def sample_augment(rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> dict:
    p: dict = {"seed": int(rng.integers(0, 2**31 - 1))}
    p["speed"] = round(float(rng.uniform(*cfg.speed_range)), 2) if rng.random() < cfg.p_speed else 1.0
    if rng.random() < cfg.p_bandlimit:
        p["cutoff"] = round(float(rng.uniform(*cfg.cutoff_range)), 0)
    if rng.random() < cfg.p_reverb:
        p["rt60"] = round(float(rng.uniform(*cfg.rt60_range)), 3)
        p["drr"] = round(float(rng.uniform(*cfg.drr_range)), 2)
    if rng.random() < cfg.p_noise:
        w = np.asarray(cfg.noise_weights, dtype=float)
        p["noise"] = str(rng.choice(NOISE_TYPES, p=w / w.sum()))
        p["snr"] = round(float(rng.uniform(*cfg.snr_range)), 2)
    p["pad"] = [round(float(rng.uniform(*cfg.pad_range)), 3), round(float(rng.uniform(*cfg.pad_range)), 3)]
    p["peak_db"] = round(float(rng.uniform(*cfg.peak_db_range)), 2)
    if cfg.p_codec > 0:
        p.update(sample_codec(p["seed"], cfg))
    if cfg.pad_noise_db is not None:
        p.update(sample_pad_noise(p["seed"], cfg.pad_noise_db))
    return p


PAD_NOISE_TYPES = ("white", "pink")


def sample_pad_noise(seed: int, level_db: float) -> dict:
    """``{"pad_noise": "white" | "pink", "pad_noise_db": level_db}``, the kind drawn from a generator
    of its own (seeded by the utterance's augmentation ``seed``)."""
    nrng = np.random.default_rng([int(seed), 0x9AD])
    return {"pad_noise": PAD_NOISE_TYPES[int(nrng.integers(0, len(PAD_NOISE_TYPES)))],
            "pad_noise_db": float(level_db)}


def sample_codec(seed: int, cfg: AugmentConfig) -> dict:
    """``{"codec": name[, "codec_level": level]}`` with probability ``cfg.p_codec``, else ``{}``; drawn
    from a generator of its own (seeded by the utterance's augmentation ``seed``)."""
    crng = np.random.default_rng([int(seed), 0xC0DEC])
    if not crng.random() < cfg.p_codec:
        return {}
    name = CODECS[int(crng.integers(0, len(CODECS)))]
    out: dict = {"codec": name}
    if CODEC_SPECS[name][3]:
        out["codec_level"] = round(float(crng.uniform(*cfg.codec_level_range)), 2)
    return out


KINDS = ("speed", "bandlimit", "reverb", "noise", "codec")  # what ``sample_augment`` may add
_KIND_KEYS = {"speed": (), "bandlimit": ("cutoff",), "reverb": ("rt60", "drr"), "noise": ("noise", "snr"),
              "codec": ("codec", "codec_level")}


def without(p: dict, kinds: Sequence[str]) -> dict:
    """``p`` (a ``sample_augment`` dict) with the given ``KINDS`` left out (speed becomes 1.0)."""
    q = {k: v for k, v in p.items() if not any(k in _KIND_KEYS[kind] for kind in kinds)}
    if "speed" in kinds:
        q["speed"] = 1.0
    return q


def resample(x: np.ndarray, orig_sr: float | Fraction, new_sr: int) -> np.ndarray:
    """``x`` (float32 out) resampled from ``orig_sr`` to ``new_sr`` by scipy's polyphase FIR filter
    (``resample_poly``, Kaiser window) at the rational ratio ``new_sr / orig_sr`` (limited to a
    denominator of 2000). ``orig_sr`` may be fractional: ``Fraction(sr) * speed`` is a speed change
    (Kaldi/sox ``speed``: pitch and tempo together) folded into the rate conversion."""
    ratio = (Fraction(new_sr) / Fraction(orig_sr)).limit_denominator(2000)
    if ratio == 1:
        return x.astype(np.float32)
    return signal.resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / (np.std(x) + 1e-12)


def synthetic_rir(sr: int, rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying Gaussian tail after a direct-path impulse, with a short pre-delay."""
    n = max(int(rt60 * sr), 16)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)
    predelay = int(rng.integers(int(0.002 * sr), int(0.02 * sr)))
    tail[:predelay] = 0.0
    tail /= np.sqrt(np.sum(tail**2)) + 1e-12
    h = tail * 10 ** (-drr_db / 20)
    h[0] = 1.0
    return h


def loop_to(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if x.size >= n:
        start = int(rng.integers(0, x.size - n + 1))
        return x[start:start + n]
    reps = int(np.ceil(n / x.size)) + 1
    y = np.tile(x, reps)
    start = int(rng.integers(0, x.size))
    return y[start:start + n]


def apply_augment(x: np.ndarray, sr: int, params: dict, noise_bank: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Everything after the speed change (which the caller folds into resampling)."""
    rng = np.random.default_rng(int(params["seed"]))
    y = x.astype(np.float64)
    if "cutoff" in params and params["cutoff"] < sr / 2 - 100:
        sos = signal.butter(8, params["cutoff"], btype="low", fs=sr, output="sos")
        y = signal.sosfilt(sos, y)
    if "rt60" in params:
        h = synthetic_rir(sr, float(params["rt60"]), float(params["drr"]), rng)
        dry_rms = np.sqrt(np.mean(y**2)) + 1e-12
        y = signal.fftconvolve(y, h)[: y.size + int(0.1 * sr)]
        y *= dry_rms / (np.sqrt(np.mean(y**2)) + 1e-12)
    speech_power = float(np.mean(y**2)) + 1e-12
    lead, trail = (int(s * sr) for s in params.get("pad", (0.0, 0.0)))
    y = np.concatenate([np.zeros(lead), y, np.zeros(trail)])
    if "noise" in params:
        kind = params["noise"]
        if kind == "babble" and len(noise_bank) > 0:
            src = noise_bank[int(rng.integers(0, len(noise_bank)))]
            noise = loop_to(np.asarray(src, dtype=np.float64), y.size, rng)
        elif kind in ("pink", "babble"):
            noise = pink_noise(y.size, rng)
        else:
            noise = rng.standard_normal(y.size)
        noise_power = float(np.mean(noise**2)) + 1e-12
        scale = np.sqrt(speech_power / (noise_power * 10 ** (float(params["snr"]) / 10)))
        y = y + scale * noise
    peak = float(np.max(np.abs(y))) + 1e-12
    y *= 10 ** (float(params.get("peak_db", -3.0)) / 20) / peak
    if "pad_noise" in params and lead + trail > 0:
        # the utterance's own generator; its last draw, so every draw before it is unchanged
        n = lead + trail
        noise = pink_noise(n, rng) if params["pad_noise"] == "pink" else rng.standard_normal(n)
        noise *= 10 ** (float(params["pad_noise_db"]) / 20) / (np.sqrt(np.mean(noise**2)) + 1e-12)
        y[:lead] += noise[:lead]
        y[y.size - trail:] += noise[lead:]
    if "codec" in params:
        y = apply_codec(y, sr, params["codec"], params.get("codec_level"))
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def apply_codec(x: np.ndarray, sr: int, codec: str, level: float | None = None) -> np.ndarray:
    """``x`` encoded with ``codec`` (``CODECS``) and decoded again, in memory through libsndfile;
    same rate and length as ``x`` (8 kHz codecs resample down and back up, i.e. telephone band)."""
    import soundfile as sf

    if codec not in CODEC_SPECS:
        raise ConfigError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    rate, fmt, subtype, has_level = CODEC_SPECS[codec]
    rate = min(rate, sr)
    y = np.asarray(x, dtype=np.float64)
    if rate != sr:
        y = resample(y, sr, rate)
    buf = io.BytesIO()
    kw = {"compression_level": float(level)} if has_level and level is not None else {}
    try:
        sf.write(buf, np.clip(y, -1.0, 1.0).astype(np.float32), rate, format=fmt, subtype=subtype, **kw)
        buf.seek(0)
        z, _ = sf.read(buf, dtype="float64")
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise RuntimeError(f"codec {codec} ({fmt}/{subtype}) failed in libsndfile {sf.__libsndfile_version__}: {e}") from e
    z = _fit_length(z, y.size)  # codec frames pad the end
    if rate != sr:
        z = _fit_length(resample(z, rate, sr), x.shape[0])
    return z


def _fit_length(z: np.ndarray, n: int) -> np.ndarray:
    return z[:n] if z.size >= n else np.concatenate([z, np.zeros(n - z.size)])
