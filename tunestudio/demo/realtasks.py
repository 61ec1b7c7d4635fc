"""Demo tasks for a real pretrained instruct model (the imported SmolLM2-135M-Instruct).

A real instruct model already answers questions, so a demo task must be one it cannot do *as
asked* before training and learns from a few hundred rows: routing a support ticket to a team
code it has never seen (`tickets`). `general` is the guard set: everyday questions whose short
answer the base model gets right, asked again after training to see what the tuned model keeps
(a model that answers "How many days are there in a week?" with a team code has forgotten).
"""

from __future__ import annotations

import random

from tunestudio.demo.tasks import ITEMS, MONTHS

TICKET_SYSTEM = "You route customer support tickets. Answer with the code of the team that handles the ticket."
# Codes the base model cannot guess: it has to learn them from the data.
TEAMS = {
    "BIL-7": [  # billing
        "I was charged twice for my {month} invoice.",
        "Why is there an extra fee on my {month} bill?",
        "Please refund the payment I made in {month}.",
        "My card was declined when I paid for the {item}.",
        "Can I get a receipt for the {item} I bought in {month}?",
        "The price of the {item} on my invoice is wrong.",
        "I cancelled my subscription in {month} but I am still being billed.",
    ],
    "SHP-2": [  # shipping
        "My {item} has not arrived yet.",
        "The parcel with my {item} was delivered to the wrong address.",
        "When will the {item} I ordered in {month} be shipped?",
        "The box with the {item} arrived damaged.",
        "Can you track the delivery of my {item}?",
        "The courier left my {item} outside in the rain.",
        "Can I change the delivery address for my {item} order?",
    ],
    "TEC-4": [  # technical
        "The {item} will not turn on after the update.",
        "My {item} keeps crashing when I open the app.",
        "The {item} does not connect to the wifi.",
        "The screen of my {item} flickers since {month}.",
        "How do I reset the {item} to factory settings?",
        "The battery of my {item} drains in an hour.",
        "The {item} shows an error code when it starts.",
    ],
    "ACC-1": [  # account
        "I forgot the password to my account.",
        "Please change the email address on my account.",
        "How do I delete my account?",
        "I cannot log in since {month}.",
        "Can I add a second user to my account for the {item}?",
        "Someone else may have logged in to my account.",
        "Please turn on two-factor sign-in for my account.",
    ],
    "RET-5": [  # returns
        "I want to return the {item}, it is not what I expected.",
        "How do I send back the {item} I bought in {month}?",
        "Can I exchange my {item} for a different colour?",
        "The {item} is too big, I would like to swap it.",
        "Is it too late to return a {item} bought in {month}?",
        "Please send me a return label for the {item}.",
        "I returned the {item} two weeks ago, has it been received?",
    ],
}
OPENERS = ["", "", "", "Hi, ", "Hello, ", "Good morning. ", "Quick question: ", "Hey team, "]
CLOSERS = ["", "", "", " Thanks.", " Thank you!", " Please help.", " Order number {num}."]


def tickets(n: int, seed: int) -> list[dict]:
    """`n` distinct tickets, balanced over the teams; held-out rows are new combinations."""
    rng = random.Random(seed)
    codes = list(TEAMS)
    rows, seen = [], set()
    while len(rows) < n:
        code = codes[len(rows) % len(codes)]
        text = rng.choice(TEAMS[code]).format(month=rng.choice(MONTHS), item=rng.choice(ITEMS))
        text = (rng.choice(OPENERS) + text[0].lower() + text[1:] if rng.random() < 0.5 else text)
        text = text[0].upper() + text[1:] + rng.choice(CLOSERS).format(num=rng.randint(10000, 99999))
        if text in seen:
            continue
        seen.add(text)
        rows.append({"messages": [{"role": "system", "content": TICKET_SYSTEM},
                                  {"role": "user", "content": text},
                                  {"role": "assistant", "content": code}]})
    rng.shuffle(rows)
    return rows


# (question, the word a right answer contains): questions SmolLM2-135M-Instruct answers right
# (checked on the imported model), so a tuned model that stops answering them has lost something.
GENERAL = [
    ("What is the capital of France?", "Paris"),
    ("How many days are there in a week?", "7|seven"),
    ("What colour is the sky on a clear day?", "blue"),
    ("What is the boiling point of water in degrees Celsius?", "100"),
    ("What is the opposite of hot?", "cold"),
    ("How many months are there in a year?", "12|twelve"),
    ("What gas do plants take in from the air?", "carbon dioxide|CO2"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("What is the chemical symbol for water?", "H2O"),
    ("What is 2 plus 2?", "4|four"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the largest ocean on Earth?", "Pacific"),
    ("What language is spoken in Brazil?", "Portuguese"),
    ("Write one sentence about the sea.", "sea|ocean"),
    ("What is the capital of Germany?", "Berlin"),
    ("How many hours are there in a day?", "24|twenty-four"),
    ("What is the opposite of up?", "down"),
    ("How many sides does a triangle have?", "3|three"),
    ("Who painted the Mona Lisa?", "Leonardo|da Vinci"),
    ("What is the capital of the United Kingdom?", "London"),
]


def general() -> list[dict]:
    """The guard prompts as chat rows: the user's question and, as the reference, the word a right
    answer contains ('a|b': either; empty: any non-empty answer that is not the task's)."""
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in GENERAL]
