"""Training data: dumped features (or audio, featurised on the fly) + token ids, and length-bucketed
batching by total frames.

Batches are built from utterance lengths only, so the batch plan for an epoch is a pure function
of (seed, epoch): every DDP rank computes the same global batches and takes its own slice of each,
and a resumed run sees the same batches as an uninterrupted one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import AudioError, DataDirError, TextError
from .datadir import read_kaldi_map


@dataclass
class Utterance:
    utt: str
    feats_path: str  # the dumped .npy (AudioDataset: the utterance id in its data dir)
    num_frames: int
    tokens: list[int]


def load_feature_file(path: str | os.PathLike, utt: str, dim: int | None = None) -> np.ndarray:
    """A dumped (T, F) feature matrix; DataDirError naming ``utt`` if it is unreadable, truncated,
    of the wrong shape (``dim``: expected F) or not finite."""
    try:
        x = np.load(path)
    except (OSError, ValueError, EOFError) as e:
        raise DataDirError(f"{utt}: cannot read features {path} ({e}); rerun feature extraction") from None
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim) or not np.isfinite(x).all():
        want = f"(T, {dim})" if dim is not None else "(T, F)"
        raise DataDirError(f"{utt}: features {path} are malformed (shape {x.shape}, expected {want} and finite "
                           "values); delete the file and rerun feature extraction")
    return x


class FeatureDataset:
    """Utterances of a data dir with ``feats.scp`` (dumped .npy features) and ``text``.

    ``cmvn``: an object with ``apply(np.ndarray) -> np.ndarray`` (global CMVN) or None.
    ``cache``: keep loaded features in memory after the first epoch (fast CPU training).
    """

    _source_name = "feats.scp"  # where the utterances come from (named in problems)

    def __init__(self, data_dir: str | os.PathLike, tokenizer, cmvn=None, cache: bool = False,
                 min_frames: int = 1, subsampling: int = 1, receptive_field: int = 1, dim: int | None = None):
        self.data_dir = Path(data_dir)
        self.dim = dim  # expected feature dimension (None: not checked)
        feats_scp = self.data_dir / "feats.scp"
        if not feats_scp.is_file():
            raise DataDirError(f"{feats_scp} is missing: run feature extraction (asr extract-features) first")
        feats = read_kaldi_map(feats_scp)
        text = _read_text(self.data_dir)
        n2f_file = self.data_dir / "utt2num_frames"
        n2f = read_kaldi_map(n2f_file) if n2f_file.is_file() else {}
        frames = {utt: int(n2f[utt]) if utt in n2f else int(np.load(path, mmap_mode="r").shape[0])
                  for utt, path in feats.items() if utt in text}
        self._select(feats, frames, text, tokenizer, min_frames, subsampling, receptive_field)
        self.cmvn = cmvn
        self.cache: dict[int, np.ndarray] | None = {} if cache else None

    def _select(self, sources: dict[str, str], frames: dict[str, int], text: dict[str, str], tokenizer,
                min_frames: int, subsampling: int, receptive_field: int) -> None:
        """``self.items`` / ``self.skipped`` from utt -> source (feature file or audio) and frame count;
        DataDirError listing every utterance without a transcript or with untokenisable text."""
        problems: list[str] = []
        self.items: list[Utterance] = []
        self.skipped: list[str] = []
        for utt in sorted(sources):
            if utt not in text:
                problems.append(f"{utt}: in {self._source_name} but not in text")
                continue
            try:
                ids = tokenizer.encode(text[utt])
            except TextError as e:
                problems.append(f"{utt}: {e}")
                continue
            nf = frames[utt]
            # CTC needs at least as many output frames as labels (plus repeats); drop impossible ones.
            out_frames = (nf - receptive_field) // subsampling + 1 if nf >= receptive_field else 1
            if nf < min_frames or out_frames < len(ids):
                self.skipped.append(utt)
                continue
            self.items.append(Utterance(utt, sources[utt], nf, ids))
        if problems:
            shown = "\n  ".join(problems[:50])
            more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
            raise DataDirError(f"{self.data_dir}: {len(problems)} problem(s):\n  {shown}{more}")
        if not self.items:
            raise DataDirError(f"{self.data_dir}: no usable utterances (skipped {len(self.skipped)} too short)")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> list[int]:
        return [u.num_frames for u in self.items]

    def load(self, i: int) -> np.ndarray:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        u = self.items[i]
        x = load_feature_file(u.feats_path, u.utt, self.dim)
        if self.cmvn is not None:
            x = self.cmvn.apply(x)
        x = x.astype(np.float32, copy=False)
        if self.cache is not None:
            self.cache[i] = x
        return x

    def collate(self, indices: Sequence[int], epoch: int | None = None) -> dict:
        """The padded batch of ``indices``. ``epoch``: the training epoch (None: dev/test); dumped
        features are the same every epoch, so it is unused here (:class:`AudioDataset` draws its
        waveform augmentation from it)."""
        return self._pad(indices, [self.load(i) for i in indices])

    def _pad(self, indices: Sequence[int], feats: Sequence[np.ndarray]) -> dict:
        lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
        dim = feats[0].shape[1]
        x = torch.zeros(len(feats), int(lens.max()), dim)
        for j, f in enumerate(feats):
            x[j, : f.shape[0]] = torch.from_numpy(f)
        toks = [self.items[i].tokens for i in indices]
        return {
            "utts": [self.items[i].utt for i in indices],
            "feats": x,
            "feat_lens": lens,
            "targets": torch.tensor([t for ts in toks for t in ts], dtype=torch.long),
            "target_lens": torch.tensor([len(t) for t in toks], dtype=torch.long),
        }


def _read_text(data_dir: Path) -> dict[str, str]:
    text_file = data_dir / "text"
    if not text_file.is_file():
        raise DataDirError(f"{text_file} is missing: a training data dir needs transcripts")
    return read_kaldi_map(text_file)


class AudioDataset(FeatureDataset):
    """Utterances of a data dir with audio (``wav.scp`` [+ ``segments``]) and ``text``, whose
    features are computed when a batch is collated (in the DataLoader workers with ``num_workers``
    > 0) instead of read from a dump: for corpora too big to dump.

    The features are those of ``asr extract-features`` (the same :class:`FeatureExtractor` on the
    same samples), then ``cmvn``. Lengths for batching come from ``utt2dur`` (or the audio headers).
    ``augment``: a :class:`~asr.features.noise_reverb.WaveAugment` applied to the waveforms of
    training batches (``collate(..., epoch=N)``), never to dev batches (``epoch=None``). Nothing is
    cached (augmented audio differs every epoch).
    """

    _source_name = "wav.scp"

    def __init__(self, data_dir: str | os.PathLike, tokenizer, feature_config, cmvn=None, augment=None,
                 min_frames: int = 1, subsampling: int = 1, receptive_field: int = 1):
        from ..features.config import num_frames
        from .datadir import DataDir

        self.data_dir = Path(data_dir)
        self.feature_config = feature_config
        self.dim = feature_config.dim
        text = _read_text(self.data_dir)
        self.datadir = DataDir.load(self.data_dir)
        sr = feature_config.sample_rate
        durs = self.datadir.durations(progress=True)
        frames = {u: num_frames(int(round(d * sr)), feature_config) for u, d in durs.items()}
        self._select({u: u for u in self.datadir.utt_ids}, frames, text, tokenizer, min_frames, subsampling,
                     receptive_field)
        self.cmvn = cmvn
        self.cache = None
        self.augment = augment if augment is not None and augment.active else None
        self._extractor = None  # made on first use, in the process that uses it

    def wave(self, i: int) -> np.ndarray:
        """The samples of utterance ``i`` at the feature config's rate (float32)."""
        return self.datadir.audio(self.items[i].utt, sample_rate=self.feature_config.sample_rate)

    def features(self, wave: np.ndarray, utt: str) -> np.ndarray:
        """Features (+ CMVN) of a waveform, float32 ``(T, F)``."""
        if self._extractor is None:
            from ..features.extract import FeatureExtractor

            self._extractor = FeatureExtractor(self.feature_config).eval()
        x = self._extractor.compute(wave)
        if x.shape[0] == 0:
            raise AudioError(f"utt '{utt}' ({self.data_dir}): {len(wave)} samples is shorter than one "
                             f"{self.feature_config.win_length}-sample window")
        if self.cmvn is not None:
            x = self.cmvn.apply(x)
        return x.astype(np.float32, copy=False)

    def load(self, i: int) -> np.ndarray:
        return self.features(self.wave(i), self.items[i].utt)

    def collate(self, indices: Sequence[int], epoch: int | None = None) -> dict:
        """The padded batch of ``indices``; with an ``augment`` and a training ``epoch``, its
        waveforms are augmented first (draws seeded by (seed, epoch, utterance))."""
        waves = [self.wave(i) for i in indices]
        utts = [self.items[i].utt for i in indices]
        if self.augment is not None and epoch is not None:
            waves = self.augment.batch(waves, utts, epoch)
        return self._pad(indices, [self.features(w, u) for w, u in zip(waves, utts)])


def bucket_batches(lengths: Sequence[int], max_frames: int, max_batch: int = 256, seed: int = 0,
                   epoch: int = 0, shuffle: bool = True) -> list[list[int]]:
    """Group indices into batches of similar length whose padded size (max_len × n) ≤ ``max_frames``.

    With ``shuffle``, lengths get ±10 % jitter before sorting and the batch order is shuffled, both
    seeded by (seed, epoch). An utterance longer than ``max_frames`` gets a batch of its own.
    """
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([seed, epoch])
    keys = lengths * (1.0 + rng.uniform(-0.1, 0.1, size=len(lengths))) if shuffle else lengths.astype(float)
    order = np.argsort(keys, kind="stable")
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_max = 0
    for i in order:
        n = int(lengths[i])
        new_max = max(cur_max, n)
        if cur and (new_max * (len(cur) + 1) > max_frames or len(cur) >= max_batch):
            batches.append(cur)
            cur, new_max = [], n
        cur.append(int(i))
        cur_max = new_max
    if cur:
        batches.append(cur)
    if shuffle:
        perm = rng.permutation(len(batches))
        batches = [batches[j] for j in perm]
    return batches


def shard_batches(batches: list[list[int]], rank: int, world: int) -> Iterator[tuple[list[int], int]]:
    """Each global batch split across ranks (utterance ``k`` goes to rank ``k % world``).

    Yields ``(local_indices, global_size)``. Global batches smaller than ``world`` are dropped so
    every rank takes the same number of steps (DDP needs matching collective calls).
    """
    for b in batches:
        if len(b) < world:
            continue
        yield b[rank::world], len(b)


class _PlannedBatches(torch.utils.data.Dataset):
    """Batch ``k`` of a plan, collated (what DataLoader workers compute ahead of the training step)."""

    def __init__(self, dataset: FeatureDataset, plan: Sequence[tuple[list[int], int]], epoch: int | None = None):
        self.dataset = dataset
        self.plan = list(plan)
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int):
        idx, n = self.plan[k]
        return self.dataset.collate(idx, epoch=self.epoch), n


def iter_batches(dataset: FeatureDataset, plan: Sequence[tuple[list[int], int]], num_workers: int = 0,
                 pin_memory: bool = False, prefetch_factor: int = 4,
                 epoch: int | None = None) -> Iterator[tuple[dict, int]]:
    """``(collated batch, global size)`` for each planned batch, in plan order.

    ``num_workers`` > 0 collates in DataLoader worker processes, ``prefetch_factor`` batches each
    ahead of the training step (loading .npy files, CMVN and padding overlap the GPU's work);
    ``pin_memory`` puts batches in page-locked memory for asynchronous copies to CUDA. The batches
    are the same as with ``num_workers=0``. Workers do not fill the parent's feature cache, so use
    ``cache_features: false`` with workers (as conf/train/gpu.yaml does).
    """
    if num_workers <= 0:
        for idx, n in plan:
            yield dataset.collate(idx, epoch=epoch), n
        return
    loader = torch.utils.data.DataLoader(_PlannedBatches(dataset, plan, epoch), batch_size=None, shuffle=False,
                                         num_workers=num_workers, pin_memory=pin_memory,
                                         prefetch_factor=prefetch_factor)
    yield from loader
