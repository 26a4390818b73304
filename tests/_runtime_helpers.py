"""Helpers for the export/runtime/stream/live tests: tiny model packages and generated speech."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np

TOKENS = ["<blank>", "|", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


def write_tokens(path: Path) -> None:
    path.write_text("".join(f"{t} {i}\n" for i, t in enumerate(TOKENS)))


def make_package(out: Path, model=None, *, bidirectional: bool = True, hidden: int = 32, layers: int = 2,
                 feat_kind: str = "fbank", n_mels: int = 40, cmvn=None, seed: int = 0, subsampling: int = 4) -> Path:
    """Write a torch model package (model.pt, tokens.txt, features.yaml, cmvn.npz, decode.yaml)."""
    import torch
    import yaml

    from asr.features import FeatureConfig
    from asr.models.acoustic import AcousticModel, AcousticModelConfig

    out.mkdir(parents=True, exist_ok=True)
    fc = FeatureConfig(kind=feat_kind, n_mels=n_mels, n_mfcc=min(20, n_mels))
    if model is None:
        torch.manual_seed(seed)
        cfg = AcousticModelConfig(conv_channels=8, subsampling=subsampling, hidden=hidden, layers=layers,
                                  bidirectional=bidirectional, dropout=0.0)
        model = AcousticModel(cfg, fc.dim, len(TOKENS)).eval()
    torch.save({"format_version": 1, "model_config": dataclasses.asdict(model.cfg), "input_dim": model.input_dim,
                "vocab_size": model.vocab_size, "state_dict": model.state_dict()}, out / "model.pt")
    write_tokens(out / "tokens.txt")
    (out / "features.yaml").write_text(yaml.safe_dump(dataclasses.asdict(fc)))
    if cmvn is None:
        rng = np.random.default_rng(seed)
        mean = rng.normal(-5, 1, fc.dim).astype(np.float32)
        std = rng.uniform(1, 3, fc.dim).astype(np.float32)
    else:
        mean, std = cmvn
    np.savez(out / "cmvn.npz", mean=mean, std=std, count=np.int64(100))
    (out / "decode.yaml").write_text("method: greedy\nbeam: 4\nalpha: 0.5\nbeta: 1.0\nuse_lm: true\n")
    try:
        from asr.package import write_manifest

        write_manifest(out)
    except ImportError:
        pass
    return model


def espeak(text: str, path: Path, rate: int = 16000, speed: int = 150) -> np.ndarray | None:
    """Synthesise ``text`` with espeak-ng, resampled to ``rate``; None when espeak-ng is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    raw = path.with_suffix(".raw.wav")
    subprocess.run([exe, "-s", str(speed), "-w", str(raw), text], check=True, capture_output=True)
    from asr.audio import read_audio, write_wav

    x = read_audio(raw, rate)
    write_wav(path, x, rate)
    raw.unlink()
    return x


def spaced_words(text: str, root: Path, gap: float = 0.3, rate: int = 16000,
                 speed: int = 130) -> tuple[np.ndarray, list[tuple[str, float, float]]] | None:
    """Each word of ``text`` synthesised alone by espeak-ng, trimmed to its sound (|x| > 1e-3) and
    joined with ``gap`` seconds of silence: (audio, [(word, start, end) seconds]); None without espeak-ng."""
    root.mkdir(parents=True, exist_ok=True)
    parts, spans, pos = [], [], 0
    for i, word in enumerate(text.split()):
        x = espeak(word, root / f"word{i}.wav", rate, speed)
        if x is None:
            return None
        active = np.flatnonzero(np.abs(x) > 1e-3)
        x = x[active[0]:active[-1] + 1]
        if i:
            parts.append(np.zeros(int(gap * rate), np.float32))
            pos += int(gap * rate)
        spans.append((word, pos / rate, (pos + len(x)) / rate))
        parts.append(x)
        pos += len(x)
    return np.concatenate(parts), spans


_CACHE: dict = {}


def exported_package(root: Path, *, bidirectional: bool, int8: bool = False, **kw) -> Path:
    """A random tiny model exported to ``root/onnx`` (cached per session by arguments)."""
    key = ("random", bidirectional, int8, tuple(sorted(kw.items())))
    if key in _CACHE:
        return _CACHE[key]
    from asr.export import export_package

    make_package(root / "pkg", bidirectional=bidirectional, **kw)
    export_package(root / "pkg", root / "onnx", int8=int8, log=lambda *a: None)
    _CACHE[key] = root / "onnx"
    return root / "onnx"


UTTERANCE = "turn on the light"
ESPEAK_SPEED = 130


def _cache_dir() -> Path:
    import os
    import tempfile

    return Path(os.environ.get("ASR_TEST_CACHE", Path(tempfile.gettempdir()) / "asr-test-cache"))


def trained_package(root: Path, *, bidirectional: bool = True, text: str = UTTERANCE, max_seconds: float = 150.0):
    """Overfit a tiny model on one espeak-ng utterance and export it to ``root/onnx``.

    Returns (onnx_dir, audio (16 kHz float32, with 0.2 s silence each side), text), or a string
    saying why not (espeak-ng missing, or the model did not overfit within ``max_seconds`` on a
    very busy machine): tests skip with it. The trained torch package is cached on disk (``$ASR_TEST_CACHE``, default
    /tmp/asr-test-cache) keyed by the settings, so only the first run pays for training (~250 steps:
    15 s on an idle 2-core machine, ~40 s on a busy one).
    """
    key = ("trained", bidirectional, text)
    if key in _CACHE:
        return _CACHE[key]
    import hashlib
    import time

    import torch

    from asr.export import export_package
    from asr.features import FeatureConfig, FeatureExtractor
    from asr.models.acoustic import AcousticModel, AcousticModelConfig

    root.mkdir(parents=True, exist_ok=True)
    speech = espeak(text, root / "utt.wav", speed=ESPEAK_SPEED)
    if speech is None:
        return "espeak-ng is not installed"
    # trim espeak's own leading/trailing silence, then pad 0.2 s each side
    active = np.flatnonzero(np.abs(speech) > 1e-3)
    speech = speech[active[0]:active[-1] + 1]
    z = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
    audio = np.concatenate([z(0.2), speech, z(0.2)])
    fc = FeatureConfig(kind="fbank", n_mels=40)
    cfg = AcousticModelConfig(conv_channels=8, subsampling=4, hidden=48, layers=2,
                              bidirectional=bidirectional, dropout=0.0)
    tag = hashlib.sha256(repr((3, text, ESPEAK_SPEED, cfg, fc, torch.__version__, audio.tobytes())).encode()).hexdigest()[:16]
    cached = _cache_dir() / f"pkg-{tag}"
    if (cached / "model.pt").is_file():
        shutil.copytree(cached, root / "pkg", dirs_exist_ok=True)
    else:
        # variants (silence padding as VAD segments cut it, 44.1/48 kHz round trips as a microphone
        # path gives, level changes, a little noise) so the overfit model is not thrown off by them
        from asr.audio import resample

        rng = np.random.default_rng(0)

        def rt(x, sr):
            return resample(resample(x, 16000, sr), sr, 16000)

        variants = [audio,
                    np.concatenate([z(0.5), speech, z(0.5)]),
                    np.concatenate([z(0.05), speech, z(0.1)]),
                    rt(np.concatenate([z(0.2), speech, z(0.35)]), 44100),
                    rt(np.concatenate([z(0.3), speech, z(0.2)]), 48000),
                    0.6 * audio + (1e-3 * rng.standard_normal(len(audio))).astype(np.float32),
                    np.clip(1.5 * np.concatenate([z(0.1), speech, z(0.6)]), -1, 1)]
        fe = FeatureExtractor(fc)
        fl = [fe.compute(v) for v in variants]
        allf = np.concatenate(fl)
        mean, std = allf.mean(0), allf.std(0) + 1e-5
        T = max(len(f) for f in fl)
        x = torch.zeros(len(fl), T, fc.dim)
        for i, f in enumerate(fl):
            x[i, : len(f)] = torch.from_numpy((f - mean) / std)
        n = torch.tensor([len(f) for f in fl])
        ids = [TOKENS.index("|" if c == " " else c) for c in text]
        torch.manual_seed(0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        model = AcousticModel(cfg, fc.dim, len(TOKENS))
        opt = torch.optim.Adam(model.parameters(), lr=0.02)
        ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
        y = torch.tensor([ids] * len(fl))
        yl = torch.tensor([len(ids)] * len(fl))
        t0 = time.time()
        step = ok = 0
        while time.time() - t0 < max_seconds and ok < 3:
            model.train()
            lp, ol = model(x, n)
            loss = ctc(lp.transpose(0, 1), y, ol, yl)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
            if step % 10 == 0:
                model.eval()
                with torch.no_grad():
                    lp, ol = model(x, n)
                best = lp.argmax(-1)
                good = True
                for i in range(len(fl)):
                    b = best[i, : int(ol[i])].tolist()
                    hyp = [t for j, t in enumerate(b) if t != 0 and (j == 0 or t != b[j - 1])]
                    good &= hyp == ids
                ok = ok + 1 if good else 0
        torch.set_num_threads(threads)
        model.eval()
        if ok < 3:
            _CACHE[key] = f"the tiny model did not overfit {text!r} within {max_seconds:.0f} s ({step} steps)"
            return _CACHE[key]
        make_package(root / "pkg", model, cmvn=(mean.astype(np.float32), std.astype(np.float32)))
        if ok >= 3:
            tmp = cached.with_name(cached.name + f".tmp{time.time_ns()}")
            shutil.copytree(root / "pkg", tmp)
            try:
                tmp.rename(cached)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
    export_package(root / "pkg", root / "onnx", int8=False, log=lambda *a: None, check_lengths=(7, 100))
    _CACHE[key] = (root / "onnx", audio, text)
    return _CACHE[key]
