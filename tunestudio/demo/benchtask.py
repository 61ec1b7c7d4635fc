"""The demo benchmark: a small multiple-choice task in lm-evaluation-harness's own format
(training/benchmarks/demo-mc.yaml over demo-mc.jsonl), scored by loglikelihood: the harness asks
which of the four answers the model finds likeliest after "Question: ...\\nAnswer:".

General knowledge and arithmetic written for this project, easy enough that a small instruct
model (SmolLM2-135M-Instruct) scores well above chance (0.25), so a fine-tune that damages what it
knew shows as a drop (`eval --run R --benchmark demo-mc.yaml`, or `--guard-benchmark demo-mc.yaml`).
"""

from __future__ import annotations

import json
import os

from tunestudio.core.workspace import Workspace

TASK_FILE = "demo-mc.yaml"
DATA_FILE = "demo-mc.jsonl"

# (question, right answer, three wrong ones); the right answer's position is set by `rows`
QUESTIONS = [
    ("What is the capital of France?", "Paris", "Berlin", "Madrid", "Rome"),
    ("What is the capital of Japan?", "Tokyo", "Beijing", "Seoul", "Bangkok"),
    ("What is the capital of Italy?", "Rome", "Vienna", "Athens", "Lisbon"),
    ("What is the capital of Spain?", "Madrid", "Barcelona", "Porto", "Paris"),
    ("What is the capital of Germany?", "Berlin", "Munich", "Warsaw", "Prague"),
    ("What is the capital of Egypt?", "Cairo", "Nairobi", "Tunis", "Accra"),
    ("How many days are there in a week?", "seven", "five", "ten", "twelve"),
    ("How many months are there in a year?", "twelve", "ten", "fourteen", "six"),
    ("How many hours are there in a day?", "24", "12", "60", "100"),
    ("How many minutes are there in an hour?", "60", "100", "24", "30"),
    ("How many legs does a spider have?", "eight", "six", "four", "ten"),
    ("How many legs does a dog have?", "four", "two", "six", "eight"),
    ("What colour is the sky on a clear day?", "blue", "green", "red", "brown"),
    ("What colour is fresh grass?", "green", "purple", "white", "orange"),
    ("What colour are ripe bananas?", "yellow", "blue", "black", "grey"),
    ("What is frozen water called?", "ice", "steam", "sand", "glass"),
    ("At what temperature in degrees Celsius does water boil at sea level?", "100", "50", "0", "212"),
    ("At what temperature in degrees Celsius does water freeze?", "0", "100", "-40", "37"),
    ("Which planet do we live on?", "Earth", "Mars", "Venus", "Jupiter"),
    ("Which planet is known as the red planet?", "Mars", "Saturn", "Neptune", "Mercury"),
    ("What is the largest planet in the solar system?", "Jupiter", "Mars", "Earth", "Mercury"),
    ("What star is at the centre of our solar system?", "the Sun", "the Moon", "Sirius", "Polaris"),
    ("What do bees make?", "honey", "milk", "silk", "wool"),
    ("What animal says moo?", "a cow", "a cat", "a duck", "a horse"),
    ("What animal is known as the king of the jungle?", "the lion", "the mouse", "the rabbit", "the sheep"),
    ("Which animal has a long neck and eats leaves from tall trees?", "the giraffe", "the penguin",
     "the snake", "the frog"),
    ("What is the largest ocean on Earth?", "the Pacific Ocean", "the Indian Ocean", "the Arctic Ocean",
     "the Atlantic Ocean"),
    ("What gas do people need to breathe to live?", "oxygen", "helium", "neon", "argon"),
    ("What gas do plants take in from the air to make food?", "carbon dioxide", "oxygen", "helium",
     "hydrogen"),
    ("What is the opposite of hot?", "cold", "warm", "loud", "tall"),
    ("What is the opposite of up?", "down", "left", "over", "near"),
    ("What is the opposite of day?", "night", "morning", "noon", "week"),
    ("Who wrote Romeo and Juliet?", "William Shakespeare", "Charles Dickens", "Jane Austen", "Mark Twain"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", "Pablo Picasso", "Vincent van Gogh", "Claude Monet"),
    ("What language is mostly spoken in Brazil?", "Portuguese", "Spanish", "French", "German"),
    ("What do you use to write on a blackboard?", "chalk", "a spoon", "a hammer", "soap"),
    ("Which meal is eaten in the morning?", "breakfast", "dinner", "supper", "dessert"),
    ("What do you call a baby cat?", "a kitten", "a puppy", "a calf", "a foal"),
    ("What do you call a baby dog?", "a puppy", "a kitten", "a lamb", "a chick"),
    ("What is the tallest mountain on Earth?", "Mount Everest", "Mont Blanc", "Mount Fuji", "Kilimanjaro"),
    ("Which season comes after winter?", "spring", "autumn", "summer", "winter"),
    ("What shape has three sides?", "a triangle", "a square", "a circle", "a hexagon"),
    ("How many sides does a square have?", "four", "three", "five", "six"),
    ("What is 2 plus 2?", "4", "3", "5", "22"),
    ("What is 3 plus 5?", "8", "7", "9", "35"),
    ("What is 10 minus 4?", "6", "5", "14", "7"),
    ("What is 7 plus 6?", "13", "12", "14", "76"),
    ("What is 9 minus 3?", "6", "12", "3", "5"),
    ("What is 2 times 3?", "6", "5", "8", "23"),
    ("What is 4 times 5?", "20", "9", "25", "45"),
    ("What is 10 times 10?", "100", "20", "1000", "110"),
    ("What is 12 divided by 3?", "4", "3", "9", "36"),
    ("What is 20 divided by 5?", "4", "5", "15", "100"),
    ("What is half of 50?", "25", "20", "100", "5"),
    ("What is 15 plus 15?", "30", "25", "35", "1515"),
    ("What is 100 minus 1?", "99", "101", "90", "9"),
    ("What number comes after 19?", "20", "18", "21", "29"),
    ("How many wheels does a bicycle have?", "two", "three", "four", "six"),
    ("How many zeros are there in one thousand written as a number?", "three", "two", "four", "one"),
    ("What is 8 plus 1?", "9", "7", "10", "81"),
]


def rows() -> list[dict]:
    """The task's documents: {question, choices, answer (the right choice's index)}, the right answer
    moved through the four positions in turn so position alone scores 0.25."""
    out = []
    for i, (question, right, *wrong) in enumerate(QUESTIONS):
        choices = list(wrong)
        choices.insert(i % 4, right)
        out.append({"question": question, "choices": choices, "answer": i % 4})
    return out


TASK_YAML = f"""# A local lm-evaluation-harness task (its own YAML format), written by `tunestudio demo`.
# Score a run and its base on it:  tunestudio eval --run RUN --benchmark {TASK_FILE}
# data_files is read relative to this file's folder (and must stay inside the workspace).
task: demo_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {DATA_FILE}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: choices
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write(ws: Workspace) -> dict:
    """training/benchmarks/demo-mc.yaml and demo-mc.jsonl where missing (never overwritten: a user may
    have edited them). Returns {name: {path, rows, created}}."""
    folder = ws.benchmarks_dir
    folder.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in rows())
    report = {}
    for name, content in ((DATA_FILE, data), (TASK_FILE, TASK_YAML)):
        path = folder / name
        created = not path.exists()
        if created:
            tmp = folder / f".{name}.tmp-{os.getpid()}"
            tmp.write_text(content, encoding="utf-8")
            os.replace(tmp, path)
        report[name] = {"path": str(path), "rows": len(QUESTIONS), "created": created}
    return report
