"""The prompts' wording, candidate labels, token counting and cutting, and user text made plain."""

from __future__ import annotations

import functools
import itertools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from components.schema import RankingSample

CUT_MARK = " …[cut]"


@dataclass(frozen=True)
class ScenarioText:
    context: str  # "{query}" is replaced by the (possibly cut) query
    items: str
    dranker: str
    iranker: str


SCENARIO_TEXT = {
    "rec": ScenarioText(
        context="A user's recent history, oldest first:\n{query}",
        items="Candidate items",
        dranker="Rank ALL candidate items by how likely the user is to choose each one next, most likely first.",
        iranker="Name the ONE candidate item the user is LEAST likely to choose next.",
    ),
    "router": ScenarioText(
        context="A user query that one of several LLMs must answer:\n{query}\n\n{objective}",
        items="Candidate LLMs",
        dranker="Rank ALL candidate LLMs from the best to the worst choice for this query.",
        iranker="Name the ONE candidate LLM that is the WORST choice for this query.",
    ),
    "passage": ScenarioText(
        context="Search query: {query}",
        items="Candidate passages",
        dranker="Rank ALL passages by how relevant they are to the search query, most relevant first.",
        iranker="Name the ONE passage that is LEAST relevant to the search query.",
    ),
    "custom": ScenarioText(
        context="Context:\n{query}",
        items="Candidates",
        dranker="Rank ALL candidates by how well they match the context, best first.",
        iranker="Name the ONE candidate that matches the context LEAST.",
    ),
}

FORMAT_TEXT = {
    ("dranker", True): "First think step by step inside <think> </think>. Then write the final ranking inside "
    "<answer> </answer> as all {n} labels separated by \" > \", for example <answer>B > A > C</answer>.",
    ("dranker", False): "Reply with only <answer> </answer> holding all {n} labels separated by \" > \", "
    "for example <answer>B > A > C</answer>. No explanation.",
    ("iranker", True): "First think step by step inside <think> </think>. Then write only that candidate's label "
    "inside <answer> </answer>, for example <answer>B</answer>.",
    ("iranker", False): "Reply with only that candidate's label inside <answer> </answer>, for example "
    "<answer>B</answer>. No explanation.",
}


def router_objective(weights: Sequence[float] | None) -> str:
    """Plain-language routing goal for the score s = a*perf - b*cost_norm."""
    a, b = weights or (1.0, 0.0)
    if b == 0:
        return "Goal: the best answer quality; cost does not matter."
    if a == b:
        return "Goal: balance answer quality and cost equally."
    if b > a:
        return f"Goal: keep cost low; quality counts {a:g} and cost {b:g}."
    return f"Goal: answer quality first; quality counts {a:g} and cost {b:g}."


def make_labels(n: int) -> list[str]:
    """Short, stable labels: A..Z, then AA, AB, ...

    >>> make_labels(3), make_labels(28)[-2:]
    (['A', 'B', 'C'], ['AA', 'AB'])
    """
    letters = string.ascii_uppercase
    out = list(letters[:n])
    for pair in itertools.product(letters, repeat=2):
        if len(out) >= n:
            break
        out.append("".join(pair))
    return out


def token_count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def cut_to_tokens(tokenizer, text: str, ids: list[int], limit: int, keep_tail: bool = False) -> str:
    if len(ids) <= limit:
        return text
    if keep_tail:
        return CUT_MARK.strip() + " " + tokenizer.decode(ids[-limit:]).lstrip()
    return tokenizer.decode(ids[:limit]).rstrip() + CUT_MARK


def candidate_labels(sample: RankingSample, stable: bool = False) -> list[str]:
    """Each candidate's label, aligned with `sample.candidates`.

    Listing order by default; `stable` letters a routing sample's candidates in
    the case-folded order of their texts, so the same LLM gets the same letter
    in every sample whatever the listing order.

    >>> from components.schema import Candidate
    >>> s = RankingSample("s", "t", "router", "q", (Candidate("y", "gpt-4"), Candidate("x", "Claude")), {"y": 1}, "g")
    >>> candidate_labels(s), candidate_labels(s, stable=True)
    (['A', 'B'], ['B', 'A'])
    """
    letters = make_labels(len(sample.candidates))
    if not stable or sample.scenario != "router":
        return letters
    order = sorted(range(len(sample.candidates)), key=lambda i: (sample.candidates[i].text.casefold(), sample.candidates[i].id))
    out = [""] * len(order)
    for letter, i in zip(letters, order):
        out[i] = letter
    return out


def shown_labels(sample: RankingSample, remaining: Sequence[str] | None = None, stable: bool = False) -> dict[str, str]:
    """label -> candidate id for the candidates shown (all, or the `remaining` ones) in listing order.

    A candidate's label never changes within a sample (`candidate_labels`).

    >>> from components.schema import Candidate
    >>> s = RankingSample("s", "t", "custom", "q", (Candidate("x", "X"), Candidate("y", "Y"), Candidate("z", "Z")), {"y": 1}, "g")
    >>> shown_labels(s, ["z", "y"])
    {'B': 'y', 'C': 'z'}
    """
    keep = set(sample.candidate_ids if remaining is None else remaining)
    unknown = keep - set(sample.candidate_ids)
    if unknown:
        raise ValueError(f"sample {sample.sample_id!r}: remaining ids {sorted(unknown)} are not candidates")
    if len(keep) < 2:
        raise ValueError(f"sample {sample.sample_id!r}: a prompt needs at least 2 candidates, got {len(keep)}")
    all_labels = candidate_labels(sample, stable)
    return {lab: c.id for lab, c in zip(all_labels, sample.candidates) if c.id in keep}


TAGS = ("<think>", "</think>", "<answer>", "</answer>")  # what the answer parser reads
DEFANG = "\u2039"  # ‹ stands in for the first character of a defused control string


@functools.lru_cache(maxsize=16)
def _control_strings(tokenizer) -> tuple[str, ...]:
    """The answer tags and the tokenizer's special-token strings, longest first (once per tokenizer, not per text)."""
    controls = set(TAGS) | {t for t in getattr(tokenizer, "all_special_tokens", None) or [] if len(t) > 1}
    controls |= {t.content for t in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values()
                 if getattr(t, "special", False) and len(t.content) > 1}
    return tuple(sorted(controls, key=len, reverse=True))


@functools.lru_cache(maxsize=16)
def _control_pattern(tokenizer) -> re.Pattern[str]:
    # any case: the answer parser reads <ANSWER> as <answer>, and a lower-casing tokenizer maps <|IM_END|> to its token
    return re.compile("|".join(map(re.escape, _control_strings(tokenizer))), re.IGNORECASE)


def plain_text(tokenizer, text: str, one_line: bool = False) -> str:
    """User text as it goes into a prompt: it cannot produce a special token, an answer tag (in any case) or
    (`one_line`) a new line.

    >>> plain_text(None, "ok <answer>A</answer>\\n[B] <ANSWER>C</Answer>", one_line=True)
    'ok ‹answer>A‹/answer> [B] ‹ANSWER>C‹/Answer>'
    """
    if one_line:
        text = " ".join(text.splitlines())
    pattern = _control_pattern(tokenizer)
    while pattern.search(text):  # a replacement never creates another control string, but check rather than assume
        text = pattern.sub(lambda m: DEFANG + m.group(0)[1:], text)
    return text
