"""The words of the user's own guide (English and Tetum) are the words on screen.

The guide (shared with the project as the journey to make easy) sends the user to the "Training" /
"Treinamentu" tab, the "Dataset" section and the "Start Training" / "Hahu Treinamentu" button, and
names épokas, taxa aprendizajen, tamañu lote, pasu akumulasaun gradiente, pasu aklimatasaun, afina
total ka LoRA and saída konsola. A user looks for exactly these; a synonym on screen is a wrong turn."""

import pytest

from tunestudio.webui.i18n.texts import t

GUIDE = {   # key: (English guide, Tetum guide)
    "tabs.training": ("Training", "Treinamentu"),
    "training.dataset": ("Dataset", "Dataset"),
    "training.start": ("Start Training", "Hahu Treinamentu"),
    "param.epochs": ("Epochs", "Épokas"),
    "param.lr": ("Learning rate", "Taxa aprendizajen"),
    "param.batch_size": ("Batch size", "Tamañu lote"),
    "param.grad_accum": ("Gradient accumulation steps", "Pasu akumulasaun gradiente"),
    "param.warmup_steps": ("Warmup steps", "Pasu aklimatasaun"),
}


@pytest.mark.parametrize("key, words", GUIDE.items())
def test_the_labels_the_guide_names_are_the_guides_words(key, words):
    assert (t("en", key), t("tet", key)) == words


def test_the_method_and_the_console_use_the_guides_phrases():
    assert "full (full fine-tuning) or lora (LoRA" in t("en", "param_help.method")
    assert "full (afina total) ka lora (LoRA" in t("tet", "param_help.method")
    assert t("en", "training.console") == "Console output" and t("tet", "training.console") == "Saída konsola"
    assert t("tet", "training.loss_plot") == "Perda treinamentu no validasaun"   # "perda treinamentu no validasaun"


def test_no_older_synonym_is_left_on_tetum_screens():
    from tunestudio.webui.i18n.texts import catalog

    text = "\n".join(str(v) for v in catalog("tet").values())
    older = ["Komesa " + "treinu", "Pasu " + "warmup", "hadi'a" + " ona", "Log " + "konsola", "Loss " + "treinu"]   # before
    for old in older:
        assert old not in text, old
