"""Answer extraction and label matching, applied to the completion only.

The reference implementation parsed prompt + completion, so the prompt's own
example tags leaked into rewards, and it returned the prompt's example
`<answer> </answer>` as an empty answer when the model gave none. Here the
parser only ever sees the completion, and "no answer block" is its own status.

Matching, per answer item: the exact label, then a normalised form (`[b]`,
`(B)`, `Passage B` -> `B`), then - only if `repair=True` - a fuzzy match of the
item against candidate texts (rapidfuzz), which is counted in `repaired` and
reflected in the status, never silent. Nothing here raises on model output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
SEPARATORS_RE = re.compile(r"\s*(?:>|,|;|\||\n|→|->)\s*")
NOUNS_RE = re.compile(r"^(?:candidate|passage|item|llm|model|label|option)s?\s+", re.IGNORECASE)
STATUSES = ("ok", "repaired", "no_answer", "invalid", "duplicate", "missing")
FUZZY_THRESHOLD = 85.0


@dataclass(frozen=True)
class ParseResult:
    status: str  # one of STATUSES
    ids: list[str] = field(default_factory=list)  # matched candidate ids, answer order, first occurrence
    labels: list[str] = field(default_factory=list)  # the labels those ids carry
    invented: list[str] = field(default_factory=list)  # items that match no candidate
    duplicates: int = 0
    missing: list[str] = field(default_factory=list)  # candidate ids the answer left out (ranking mode)
    repaired: int = 0

    @property
    def valid(self) -> bool:
        return self.status in ("ok", "repaired")


def extract_answer(completion: str) -> str | None:
    """The content of the last `<answer>...</answer>` block of the completion, or None.

    >>> extract_answer("<think>maybe <answer>A</answer>?</think><answer> C > B </answer>")
    ' C > B '
    >>> extract_answer("I think C is best.") is None
    True
    """
    if not isinstance(completion, str):
        return None
    blocks = ANSWER_RE.findall(completion)
    return blocks[-1] if blocks else None


def normalise_label(item: str) -> str:
    """`[b]`, `(B).`, `Passage B` -> `B`.

    >>> [normalise_label(x) for x in ["[b]", "(B).", "Passage  c", " 'D' "]]
    ['B', 'B', 'C', 'D']
    """
    item = NOUNS_RE.sub("", item.strip())
    return re.sub(r"[^A-Za-z0-9]", "", item).upper()


def _split_items(answer: str, labels: Sequence[str]) -> list[str]:
    items = [p for p in SEPARATORS_RE.split(answer.strip()) if p.strip()]
    out = []
    label_set = set(labels)
    for item in items:
        words = item.split()
        # "B A C": space-separated labels are several items, a title with spaces is one
        if len(words) > 1 and all(normalise_label(w) in label_set for w in words):
            out.extend(words)
        else:
            out.append(item)
    return out


def parse_answer(
    completion: str,
    labels: Mapping[str, str],
    mode: str = "ranking",
    texts: Mapping[str, str] | None = None,
    repair: bool = False,
) -> ParseResult:
    """Parse a completion against `labels` (label -> candidate id).

    mode="ranking" (DRanker) expects every label once, best first; mode="single"
    (IRanker) expects exactly one label. `texts` (candidate id -> text) enables
    the counted fuzzy repair when `repair` is True.

    >>> labels = {"A": "d1", "B": "d2", "C": "d3"}
    >>> parse_answer("<think>..</think><answer>C > A > B</answer>", labels).ids
    ['d3', 'd1', 'd2']
    >>> parse_answer("<answer>C\\nA\\nB</answer>", labels).status
    'ok'
    >>> parse_answer("<answer>C > A</answer>", labels).status, parse_answer("no tags", labels).status
    ('missing', 'no_answer')
    >>> r = parse_answer("<answer>C > C > A > B</answer>", labels); (r.status, r.duplicates)
    ('duplicate', 1)
    >>> r = parse_answer("<answer>Z</answer>", labels, mode="single"); (r.status, r.invented)
    ('invalid', ['Z'])
    >>> parse_answer("<answer>Flea lifespan</answer>", labels, "single", {"d2": "Flea lifespan"}, repair=True).status
    'repaired'
    """
    if mode not in ("ranking", "single"):
        raise ValueError(f"mode must be 'ranking' or 'single', got {mode!r}")
    answer = extract_answer(completion)
    if answer is None:
        return ParseResult(status="no_answer", missing=list(labels.values()) if mode == "ranking" else [])
    by_norm = {normalise_label(lab): lab for lab in labels}
    text_choices = {cid: t for cid, t in (texts or {}).items()} if repair else {}
    ids: list[str] = []
    invented: list[str] = []
    duplicates = repaired = 0
    for item in _split_items(answer, list(labels)):
        cid = labels.get(item.strip())
        if cid is None:
            lab = by_norm.get(normalise_label(item))
            cid = labels.get(lab) if lab else None
        if cid is None and text_choices:
            match = process.extractOne(item.strip(), text_choices, scorer=fuzz.WRatio, score_cutoff=FUZZY_THRESHOLD)
            if match is not None:
                cid = match[2]
                repaired += 1
        if cid is None:
            invented.append(item.strip())
        elif cid in ids:
            duplicates += 1
        else:
            ids.append(cid)
    id_to_label = {cid: lab for lab, cid in labels.items()}
    missing = [cid for cid in labels.values() if cid not in ids] if mode == "ranking" else []
    if not ids:
        status = "invalid"
    elif mode == "single" and (len(ids) > 1 or invented or duplicates):
        status = "invalid"
    elif invented:
        status = "invalid"
    elif duplicates:
        status = "duplicate"
    elif missing:
        status = "missing"
    elif repaired:
        status = "repaired"
    else:
        status = "ok"
    return ParseResult(
        status=status,
        ids=ids,
        labels=[id_to_label[c] for c in ids],
        invented=invented,
        duplicates=duplicates,
        missing=missing,
        repaired=repaired,
    )


def completion_text(completion) -> str:
    """TRL passes plain strings or chat messages; rewards and parsers take the text.

    >>> completion_text([{"role": "assistant", "content": "<answer>A</answer>"}])
    '<answer>A</answer>'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return ""
