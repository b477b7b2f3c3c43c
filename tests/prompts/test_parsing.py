"""Parsing reads the completion only, never raises, and counts every repair."""

from hypothesis import given
from hypothesis import strategies as st

from components.parsing import STATUSES, completion_text, extract_answer, parse_answer

LABELS = {"A": "d1", "B": "d2", "C": "d3", "D": "d4"}
TEXTS = {"d1": "The flea life cycle lasts 30 to 75 days", "d2": "Capstar treats adult fleas", "d3": "Fleas have four stages", "d4": "Cats groom often"}


def test_last_answer_block_wins():
    assert parse_answer("<answer>A > B > C > D</answer> wait <answer>D > C > B > A</answer>", LABELS).labels == ["D", "C", "B", "A"]


def test_no_answer_is_not_an_empty_answer():
    """Reference mistake 3: the prompt's example `<answer> </answer>` came back as an empty answer."""
    prompt_example = "for example <answer> </answer>"
    result = parse_answer("I would pick B.", LABELS)
    assert result.status == "no_answer" and result.ids == []
    assert extract_answer("I would pick B.") is None
    assert extract_answer(prompt_example) == " "  # a block in the *prompt* would parse: so we never look there
    assert parse_answer("<answer> </answer>", LABELS).status == "invalid"


def test_separators_and_normalised_labels():
    for answer in ["[C] > [A] > [B] > [D]", "C, A, B, D", "C\nA\nB\nD", "C A B D", "Passage C > passage a > (B) > d.", "C -> A -> B -> D"]:
        result = parse_answer(f"<answer>{answer}</answer>", LABELS)
        assert result.status == "ok", answer
        assert result.ids == ["d3", "d1", "d2", "d4"], answer


def test_repair_is_explicit_and_counted():
    completion = "<answer>Capstar treats adult fleas > A > C > D</answer>"
    assert parse_answer(completion, LABELS, texts=TEXTS).status == "invalid"  # no repair unless asked
    repaired = parse_answer(completion, LABELS, texts=TEXTS, repair=True)
    assert repaired.status == "repaired" and repaired.repaired == 1
    assert repaired.ids == ["d2", "d1", "d3", "d4"]


def test_statuses():
    assert parse_answer("<answer>A > B</answer>", LABELS).status == "missing"
    assert parse_answer("<answer>A > B</answer>", LABELS).missing == ["d3", "d4"]
    assert parse_answer("<answer>A > A > B > C > D</answer>", LABELS).status == "duplicate"
    assert parse_answer("<answer>A > B > C > D > E</answer>", LABELS).status == "invalid"
    assert parse_answer("<answer>B</answer>", LABELS, mode="single").ids == ["d2"]
    assert parse_answer("<answer>B > C</answer>", LABELS, mode="single").status == "invalid"
    assert parse_answer("<answer>E</answer>", {"A": "d1", "B": "d2"}, mode="single").status == "invalid"


def test_chat_message_completions():
    assert completion_text([{"role": "assistant", "content": "<answer>A</answer>"}]) == "<answer>A</answer>"
    assert completion_text(None) == ""


@given(st.text(max_size=300), st.sampled_from(["ranking", "single"]), st.booleans())
def test_never_raises_on_model_output(text, mode, repair):
    for completion in (text, f"<answer>{text}</answer>", f"<think>{text}</think><answer>{text}"):
        result = parse_answer(completion, LABELS, mode, TEXTS, repair)
        assert result.status in STATUSES
        assert set(result.ids) <= set(LABELS.values())
