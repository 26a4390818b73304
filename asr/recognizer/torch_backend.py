"""The PyTorch backend: ``model.pt`` (+ ``lm.pt``) of a package written by ``asr package``."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import ModelPackageError
from .backend import AcousticInfo


class TorchAcoustic:
    """:class:`~asr.recognizer.backend.AcousticBackend` over ``model.pt`` and the torch front end."""

    streaming = False  # chunked streaming with carried LSTM state runs on the ONNX export (stream.onnx)

    def __init__(self, pkg_info, device: str = "cpu", threads: int = 0):
        from .. import config as config_mod
        from ..features import FeatureConfig, FeatureExtractor
        from ..package import load_torch_model

        if threads > 0:
            torch.set_num_threads(threads)
        p = pkg_info.path
        self.pkg = p
        self.device = torch.device(device)
        self.model, _ = load_torch_model(pkg_info, device)
        self.feature_config = config_mod.load(FeatureConfig, p / "features.yaml")
        if self.feature_config.dither > 0:  # a training-time option (features of dithered audio);
            # recognition is deterministic, as the numpy runtime of the ONNX backend is
            self.feature_config = dataclasses.replace(self.feature_config, dither=0.0)
        self.extractor = FeatureExtractor(self.feature_config).to(self.device).eval()
        c, m = self.feature_config, self.model
        if m.input_dim != c.dim:
            raise ModelPackageError(f"{p}: model.pt expects {m.input_dim}-dimensional features but features.yaml "
                                    f"gives {c.dim}: the files come from different models; re-create the package")
        self.info = AcousticInfo(
            sample_rate=int(c.sample_rate), hop_length=int(c.hop_length), input_dim=int(c.dim),
            vocab_size=int(m.vocab_size), subsampling=int(m.subsampling), min_input_frames=int(m.min_input_frames()),
            bidirectional=bool(m.cfg.bidirectional), layers=int(m.cfg.layers), hidden=int(m.cfg.hidden))

    def features(self, wave: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            f = self.extractor(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).to(self.device))
        return f.cpu().numpy()

    def log_probs(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        lens = torch.tensor([len(f) for f in feats])
        x = torch.zeros(len(feats), int(lens.max()), feats[0].shape[1])
        for j, f in enumerate(feats):
            x[j, : len(f)] = torch.from_numpy(f)
        with torch.no_grad():
            lp, ol = self.model(x.to(self.device), lens.to(self.device))
        lp = lp.cpu().numpy()
        return [lp[j, : int(ol[j])] for j in range(len(feats))]

    def decode_settings(self):
        """The package's decode settings (decode.yaml)."""
        from .. import config as config_mod
        from ..decode.config import DecodeConfig

        path = self.pkg / "decode.yaml"
        return config_mod.load(DecodeConfig, path) if path.is_file() else DecodeConfig()

    def load_lm(self):
        from ..models.lm import load_lm_scorer

        path = Path(self.pkg) / "lm.pt"
        return load_lm_scorer(path, str(self.device)) if path.is_file() else None
