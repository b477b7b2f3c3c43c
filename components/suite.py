"""What identifies an evaluation suite: its sample ids (`ids_hash`) and its content (`samples_hash`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from components.schema import RankingSample


def ids_hash(samples: Sequence[RankingSample]) -> str:
    """Identifies the evaluation suite: the same samples give the same hash, whatever their order."""
    return hashlib.sha256("\n".join(sorted(s.sample_id for s in samples)).encode()).hexdigest()[:16]


def samples_hash(samples: Sequence[RankingSample]) -> str:
    """The suite's content (labels, qrels, texts), not only its ids: relabelled samples give another hash."""
    digest = hashlib.sha256()
    for s in sorted(samples, key=lambda s: s.sample_id):
        digest.update(json.dumps(s.to_dict(), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]
