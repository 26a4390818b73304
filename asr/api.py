"""Python API: ``transcribe(path)`` and ``load_model(dir)``; also the ``asr transcribe`` command.

>>> import asr
>>> asr.transcribe("speech.flac")                      # default model location, see below
>>> m = asr.load_model("recipes/tts_en/exp/model")     # load once ...
>>> m.transcribe("a.wav"); m.transcribe(samples, sample_rate=8000)   # ... use many times

Any file soundfile reads, at any rate and channel count, of any length: a file is read in blocks
and cut at quiet points into ≤ 30 s pieces as it is read (:func:`asr.segment.iter_pieces`), so
memory stays bounded however long the file is. A package with ``model.pt`` runs in PyTorch; a package with
only ``model.onnx`` (``asr export``) runs in the torch-free runtime.

Default model location when ``model`` is not given: ``$ASR_MODEL`` if set, else
``recipes/tts_en/exp/model`` of this checkout (written by ``make recipe``), else
``~/.local/share/asr/model``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelPackageError

DEFAULT_LOCATIONS = (
    Path(__file__).resolve().parent.parent / "recipes" / "tts_en" / "exp" / "model",
    Path.home() / ".local" / "share" / "asr" / "model",
)
GROUP_PIECES = 4  # pieces batched through the model at once (at most 4 x 30 s of audio in memory)


def default_model_dir() -> Path:
    env = os.environ.get("ASR_MODEL")
    if env:
        return Path(env)
    for p in DEFAULT_LOCATIONS:
        if (p / "package.json").is_file():
            return p
    raise ModelPackageError(
        "no model given and none found at the default locations ($ASR_MODEL, "
        + ", ".join(str(p) for p in DEFAULT_LOCATIONS)
        + "). Train one with `make recipe` (writes recipes/tts_en/exp/model), or pass model=DIR / set ASR_MODEL."
    )


class Model:
    """A loaded PyTorch model package: features, CMVN, acoustic model, decoder, optional LM."""

    def __init__(self, package_dir: str | os.PathLike, device: str = "cpu", decode=None):
        import torch

        from . import config as config_mod
        from .decode.config import DecodeConfig
        from .features import CMVN, FeatureConfig, FeatureExtractor
        from .package import check_package, load_torch_model
        from .text import load_tokenizer

        self.info = check_package(package_dir)
        if not self.info.has_torch_model:
            raise ModelPackageError(f"{package_dir} has no model.pt; use asr.runtime for ONNX packages")
        self.device = torch.device(device)
        self.model, _ = load_torch_model(self.info, device)
        p = self.info.path
        self.tokenizer = load_tokenizer(p / "tokens.txt")
        if self.tokenizer.vocab_size != self.model.vocab_size:
            raise ModelPackageError(f"{p}: tokens.txt has {self.tokenizer.vocab_size} tokens but the model outputs "
                                    f"{self.model.vocab_size}: tokens.txt is from another model")
        self.feature_config = config_mod.load(FeatureConfig, p / "features.yaml")
        self.features = FeatureExtractor(self.feature_config).to(self.device).eval()
        self.cmvn = CMVN.load(p / "cmvn.npz") if (p / "cmvn.npz").is_file() else None
        dim = self.feature_config.dim
        for name, got in (("model.pt", self.model.input_dim), ("cmvn.npz", self.cmvn.dim if self.cmvn else dim)):
            if got != dim:
                raise ModelPackageError(f"{p}: {name} expects {got}-dimensional features but features.yaml gives "
                                        f"{dim}: the files come from different models; re-create the package")
        self.decode_config = decode or config_mod.load(DecodeConfig, p / "decode.yaml")
        self.lm = None
        if self.decode_config.method == "beam" and self.decode_config.use_lm and (p / "lm.pt").is_file():
            from .models.lm import load_lm_scorer

            self.lm = load_lm_scorer(p / "lm.pt")

    @property
    def sample_rate(self) -> int:
        return self.feature_config.sample_rate

    # -- emissions
    def feats(self, wave: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            f = self.features(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).to(self.device))
        f = f.cpu().numpy()
        return self.cmvn.apply(f).astype(np.float32) if self.cmvn is not None else f

    def emissions(self, feats_list: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Log-probabilities (T', V) for each normalised feature matrix, batched."""
        import torch

        out: list[np.ndarray] = [None] * len(feats_list)  # type: ignore[list-item]
        order = np.argsort([len(f) for f in feats_list])
        batch: list[int] = []
        budget = self.decode_config.batch_frames

        def flush(idx: list[int]) -> None:
            lens = torch.tensor([len(feats_list[i]) for i in idx])
            x = torch.zeros(len(idx), int(lens.max()), feats_list[idx[0]].shape[1])
            for j, i in enumerate(idx):
                x[j, : len(feats_list[i])] = torch.from_numpy(feats_list[i])
            with torch.no_grad():
                lp, ol = self.model(x.to(self.device), lens.to(self.device))
            lp = lp.cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = lp[j, : int(ol[j])]

        for i in order:
            if batch and len(feats_list[i]) * (len(batch) + 1) > budget:
                flush(batch)
                batch = []
            batch.append(int(i))
        if batch:
            flush(batch)
        return out

    def decode_emission(self, lp: np.ndarray) -> str:
        return self.decode_emissions([lp])[0]

    def decode_emissions(self, lps: Sequence[np.ndarray], chunk: int = 64) -> list[str]:
        """Greedy, or beam (+LM) search over many utterances; the LM is queried for all at once."""
        cfg = self.decode_config
        if cfg.method == "greedy":
            from .decode.greedy import greedy_decode

            return [self.tokenizer.decode(greedy_decode(lp)[0]) for lp in lps]
        from .decode.beam import beam_search_batch

        out: list[str] = []
        for i in range(0, len(lps), chunk):
            hyps = beam_search_batch(list(lps[i:i + chunk]), self.tokenizer, cfg, lm=self.lm)
            out += [h[0].text for h in hyps]
        return out

    # -- public
    def transcribe(self, audio, sample_rate: int | None = None) -> str:
        """Text of a file path, or of a 1-D/2-D (samples[, channels]) array at ``sample_rate``."""
        from .audio import iter_audio_blocks, resample
        from .segment import MAX_PIECE_SECONDS, group_pieces, iter_pieces

        if isinstance(audio, (str, os.PathLike)):
            blocks = iter_audio_blocks(audio, self.sample_rate, MAX_PIECE_SECONDS)
        else:
            wave = _array_to_mono(audio, sample_rate)
            if sample_rate != self.sample_rate:
                wave = resample(wave, sample_rate, self.sample_rate)
            blocks = [wave]
        pieces = iter_pieces(blocks, self.sample_rate, MAX_PIECE_SECONDS)
        texts: list[str] = []
        for group in group_pieces(pieces, int(GROUP_PIECES * MAX_PIECE_SECONDS * self.sample_rate)):
            texts += self.decode_emissions(self.emissions([self.feats(p) for p in group]))
        return " ".join(t for t in texts if t)

    def transcribe_many(self, paths: Sequence[str | os.PathLike]) -> list[str]:
        return [self.transcribe(p) for p in paths]


def _array_to_mono(audio, sample_rate: int | None) -> np.ndarray:
    from .errors import AudioError

    if sample_rate is None:
        raise AudioError("transcribe(array) needs sample_rate=; pass the rate of the samples")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] <= 16 else x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise AudioError(f"audio array must be 1-D (samples) or 2-D (samples, channels) and non-empty; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise AudioError("audio array contains NaN or Inf samples")
    return x


_CACHE: dict[tuple[str, str], object] = {}


def load_model(model: str | os.PathLike | None = None, device: str = "cpu"):
    """Load a model package (PyTorch ``model.pt`` or ONNX ``model.onnx``) once for repeated use."""
    from .package import check_package

    path = Path(model) if model is not None else default_model_dir()
    info = check_package(path)
    if info.has_torch_model:
        return Model(path, device=device)
    from .runtime import Recognizer

    return Recognizer(path)


def transcribe(path, model: str | os.PathLike | None = None, sample_rate: int | None = None) -> str:
    """Text of one audio file (or array with ``sample_rate``); the loaded model is cached."""
    key = (str(Path(model).resolve()) if model is not None else str(default_model_dir().resolve()), "cpu")
    if key not in _CACHE:
        _CACHE[key] = load_model(key[0])
    return _CACHE[key].transcribe(path, sample_rate=sample_rate)


def add_arguments(p) -> None:
    p.add_argument("--model", default=None, help="model package dir (default: $ASR_MODEL or the recipe's exp/model)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("files", nargs="+", help="audio files")


def run(args) -> int:
    from .errors import AudioError

    m = load_model(args.model, device=args.device)
    rc = 0
    for f in args.files:
        try:
            print(f"{f}\t{m.transcribe(f)}", flush=True)
        except AudioError as e:
            print(f"asr transcribe: {e}", file=__import__('sys').stderr)
            rc = 1
    return rc
