"""The forgetting check's arithmetic (evaluate/guard.py) and the warnings of an evaluation that shows
a model learnt nothing (the chat guard through the CLI: test_eval_guard_cli.py)."""

from __future__ import annotations

from eval_helpers import make_full_run

from tunestudio.data.formats.records import Record
from tunestudio.evaluate import guard as G
from tunestudio.webui.i18n import texts as i18n

QUESTIONS = [("What is the capital of France?", "Paris"), ("How many days are there in a week?", "7|seven"),
             ("What colour is the sky on a clear day?", "blue"), ("Who wrote Romeo and Juliet?", "Shakespeare"),
             ("What is the chemical symbol for water?", "H2O")]
BASE = ["The capital of France is Paris.", "There are seven days in a week.", "The sky is blue on a clear day.",
        "Romeo and Juliet was written by William Shakespeare.", "The chemical symbol for water is H₂O."]


def _records(questions=QUESTIONS) -> list[Record]:
    return [Record("g.jsonl", i + 1, messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}])
            for i, (q, a) in enumerate(questions)]


def test_a_right_answer_contains_a_reference_word():
    assert G.answer_right("A week has 7 days.", "7|seven") and G.answer_right("SEVEN days", "7|seven")
    assert not G.answer_right("It has 17 days.", "7|seven")       # whole words only
    assert not G.answer_right("TEC-4", "4|four") and not G.answer_right("a 7-day week", "7")   # hyphen-joined
    assert G.answer_right("Answer - 4", "4") and G.answer_right("It is twenty-four.", "24|twenty-four")
    assert not G.answer_right("Parisian food", "Paris")
    assert G.answer_right("It is H₂O.", "H2O")                      # subscripts folded (NFKC)
    assert G.answer_right("Leonardo da  Vinci painted it", "Leonardo|da Vinci")
    assert G.answer_right("anything", "") and not G.answer_right("  ", "")   # no reference: any answer


def test_similarity_to_the_base_answer():
    assert G.similarity("Paris is the capital of France.", BASE[0]) >= G.CLOSE   # the same answer reworded
    assert G.similarity("BIL-7", BASE[0]) == 0.0
    assert G.similarity("", "") == 1.0 and G.similarity("x", "") == 0.0


def test_a_model_that_kept_its_answers_is_not_flagged():
    warnings: list = []
    tuned = ["Paris is the capital of France.", *BASE[1:]]
    g = G.chat_summary("g.jsonl", _records(), tuned, BASE, warnings)
    assert (g["kind"], g["n"], g["base_right"], g["kept_right"], g["kept_close"]) == ("chat", 5, 5, 5, 5)
    assert g["forgetting"] is False and not warnings
    assert set(g["rows"][0]) == {"prompt", "reference", "base", "tuned", "right_base", "right_tuned", "similarity"}
    assert g["rows"][0]["prompt"] == "What is the capital of France?" and g["rows"][1]["similarity"] == 1.0


def test_answering_everything_with_the_label_is_forgetting():
    """The collapse perplexity on prose misses: every question answered with a team code."""
    warnings: list = []
    g = G.chat_summary("g.jsonl", _records(), ["BIL-7"] * 5, BASE, warnings)
    assert (g["base_right"], g["kept_right"], g["kept_close"], g["mean_similarity"]) == (5, 0, 0, 0.0)
    assert g["forgetting"] is True and g["repeated"] == {"answer": "BIL-7", "count": 5}
    assert [w.code for w in warnings] == ["forgetting_chat", "guard_repeated"]
    assert str(warnings[0]).startswith("possible catastrophic forgetting: of the 5 guard prompts in g.jsonl the base "
                                       "model answers right, the fine-tuned model still answers 0 right (0%)")
    tet = i18n.engine_warning("tet", warnings[1])
    assert tet.startswith("modelu afina ona fó resposta hanesan 'BIL-7' ba pergunta 5 husi 5")


def test_losing_a_fifth_of_the_right_answers_or_moving_away_is_flagged():
    warnings: list = []
    tuned = [*BASE[:3], "William wrote it.", "The chemical symbol for water is H₂O."]   # 4 of 5 kept: 80%
    assert G.chat_summary("g.jsonl", _records(), tuned, BASE, warnings)["forgetting"] is False
    tuned = [*BASE[:3], "I do not know.", "I do not know."]   # 3 of 5: below 80%
    g = G.chat_summary("g.jsonl", _records(), tuned, BASE, warnings)
    assert (g["kept_right"], g["forgetting"]) == (3, True) and warnings[-1].code == "forgetting_chat"
    # still right but every answer a different text: most answers moved far from the base's
    tuned = ["Paris.", "7", "Blue!", "Shakespeare, I think, but I am not sure at all.", "H2O"]
    g = G.chat_summary("g.jsonl", _records(), tuned, BASE, [])
    assert g["kept_right"] == 5 and g["kept_close"] < G.CLOSE_SHARE * 5 and g["forgetting"] is True


def test_a_base_that_knows_nothing_cannot_be_forgotten():
    warnings: list = []
    g = G.chat_summary("g.jsonl", _records(), ["zq"] * 5, ["xx yy"] * 5, warnings)
    assert g["base_right"] == 0 and g["forgetting"] is None
    assert [w.code for w in warnings] == ["guard_base_wrong", "guard_repeated"]
    alone = G.chat_summary("g.jsonl", _records(), BASE, None, [])   # eval --model: no base to compare
    assert alone["tuned_right"] == 5 and alone["base_right"] is None and alone["forgetting"] is None


def test_empty_answers_are_counted_and_explained(demo_ws, monkeypatch):
    """A model that ends its turn at once (generation faked: the tiny model always says something)."""
    from tunestudio.core.workspace import Workspace
    from tunestudio.evaluate import run_eval
    from tunestudio.models.generate import Generated

    def ends_at_once(model, tok, prompts, *args, **kwargs):
        texts = ["" if i % 4 else "positive" for i in range(len(prompts))]
        return Generated(texts=texts, stopped=[True] * len(prompts), tokens=len(prompts), seconds=1.0)

    monkeypatch.setattr(run_eval, "generate_timed", ends_at_once)
    make_full_run(demo_ws, "full-run")
    out = run_eval.evaluate(Workspace(demo_ws), run="full-run", limit=8, metrics="exact_match", save=False,
                            progress=False)
    (part,) = [p for p in out["warning_parts"] if p["code"] == "eval_empty_answers"]
    assert (part["side"], part["empty"], part["rows"]) == ("fine-tuned", 6, 8)
    assert str(part["message"]).startswith("fine-tuned: 6 of 8 answers are empty: the model ends its turn at once")
    assert i18n.engine_warning("tet", part).startswith("afina ona: resposta 6 husi 8 mamuk")
    assert run_eval.empty_answers_warning("model", ["a"] * 19 + [""], ["x"] * 20, 8) is None   # 1 in 20: no warning
