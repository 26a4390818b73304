"""DataLoader-worker batch loading (train.num_workers > 0) yields exactly the in-process batches."""
from __future__ import annotations

import numpy as np
import torch


def test_iter_batches_with_workers_equals_in_process(tmp_path):
    from asr.data.dataset import FeatureDataset, bucket_batches, iter_batches, shard_batches
    from asr.text import CharTokenizer

    rng = np.random.default_rng(0)
    scp, text = [], []
    for i in range(10):
        p = tmp_path / f"u{i}.npy"
        np.save(p, rng.standard_normal((int(rng.integers(20, 60)), 8)).astype(np.float32))
        scp.append(f"s-u{i} {p}")
        text.append(f"s-u{i} " + "ab c"[: 1 + i % 4])
    (tmp_path / "feats.scp").write_text("\n".join(scp) + "\n")
    (tmp_path / "text").write_text("\n".join(text) + "\n")
    ds = FeatureDataset(tmp_path, CharTokenizer())
    plan = list(shard_batches(bucket_batches(ds.lengths, 120, 4, seed=3, epoch=2), 1, 2))
    ref = list(iter_batches(ds, plan, num_workers=0))
    got = list(iter_batches(ds, plan, num_workers=2, prefetch_factor=2))
    assert len(got) == len(ref) == len(plan)
    for (a, na), (b, nb) in zip(ref, got):
        assert na == nb and a["utts"] == b["utts"]
        for k in ("feats", "feat_lens", "targets", "target_lens"):
            assert torch.equal(a[k], b[k]), k
