"""The demo tasks: small, templated problems a 4M-parameter model learns from scratch in minutes.

Each generator is deterministic for a given seed and returns rows as plain dicts in a neutral
shape (a list of chat messages, or a text document); `datasets.py` writes them in the file
formats a user would bring. Held-out rows are new combinations of the same parts, so exact match
on them measures learning, not memorising. docs/dev/pitfalls.md: classification and date reformatting
generalise at this size; reversing strings and sorting numbers do not, so they are not here.
"""

from __future__ import annotations

import calendar
import random

MONTHS = list(calendar.month_name)[1:]

# ---- reviews: templated product reviews -> positive / negative / neutral ----

REVIEW_SYSTEM = "Classify the review as positive, negative or neutral."
PRODUCTS = [
    "blender", "kettle", "backpack", "lamp", "phone case", "keyboard", "mouse", "jacket",
    "tent", "coffee maker", "headphones", "chair", "desk", "toaster", "umbrella", "water bottle",
    "camera", "printer", "watch", "pillow", "frying pan", "bicycle", "charger", "speaker",
    "notebook", "sofa", "vacuum", "monitor", "scarf", "suitcase",
]
POSITIVE = [
    "great", "excellent", "fantastic", "wonderful", "reliable", "sturdy", "amazing", "perfect",
    "lovely", "brilliant", "superb", "comfortable", "impressive", "solid", "delightful",
]
NEGATIVE = [
    "terrible", "awful", "flimsy", "useless", "disappointing", "broken", "cheap", "noisy",
    "poor", "horrible", "faulty", "uncomfortable", "fragile", "dreadful", "defective",
]
NEUTRAL = [
    "okay", "average", "fine", "ordinary", "acceptable", "standard", "plain", "decent enough",
    "as expected", "unremarkable",
]
REVIEW_TEMPLATES = [
    "The {product} is {adj}.",
    "I bought this {product} last week and it is {adj}.",
    "My new {product} feels {adj}.",
    "Honestly, the {product} turned out {adj}.",
    "This {product} was {adj} from day one.",
    "Overall the {product} seems {adj} to me.",
    "We use the {product} every day and it is {adj}.",
    "The {product} arrived on time and looks {adj}.",
]
CLOSERS = {
    "positive": ["Would buy again.", "Highly recommended.", "Very happy with it.", ""],
    "negative": ["Would not buy again.", "Sending it back.", "Not worth the money.", ""],
    "neutral": ["Nothing special.", "It does the job.", "Neither good nor bad.", ""],
}


def reviews(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = ("positive", "negative", "neutral")[i % 3]  # balanced classes
        adj = rng.choice({"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}[label])
        text = rng.choice(REVIEW_TEMPLATES).format(product=rng.choice(PRODUCTS), adj=adj)
        closer = rng.choice(CLOSERS[label])
        text = f"{text} {closer}".strip()
        rows.append({"messages": [
            {"role": "system", "content": REVIEW_SYSTEM},
            {"role": "user", "content": text},
            {"role": "assistant", "content": label},
        ], "label": label})
    rng.shuffle(rows)
    return rows


# ---- dates: ISO date -> day, month name, year ----

DATE_INSTRUCTION = "Write this date in words."


def dates(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        y, m = rng.randint(1950, 2049), rng.randint(1, 12)
        d = rng.randint(1, calendar.monthrange(y, m)[1])
        iso = f"{y:04d}-{m:02d}-{d:02d}"
        if iso in seen:  # distinct dates, so a held-out row is never a training row
            continue
        seen.add(iso)
        rows.append({"instruction": DATE_INSTRUCTION, "input": iso, "output": f"{d} {MONTHS[m - 1]} {y}"})
    return rows


# ---- support: which team handles a customer message (ShareGPT, some rows multi-turn) ----

SUPPORT_SYSTEM = "Route the message to billing, shipping, technical or account."
SUPPORT = {
    "billing": [
        "I was charged twice for my {month} invoice.",
        "Why is there an extra fee on my {month} bill?",
        "Please refund the payment I made in {month}.",
        "My card was declined when I paid for the {item}.",
        "Can I get a receipt for the {item} I bought in {month}?",
    ],
    "shipping": [
        "My {item} has not arrived yet.",
        "The parcel with my {item} was delivered to the wrong address.",
        "When will the {item} I ordered in {month} be shipped?",
        "The box with the {item} arrived damaged.",
        "Can you track the delivery of my {item}?",
    ],
    "technical": [
        "The {item} will not turn on after the update.",
        "My {item} keeps crashing when I open the app.",
        "The {item} does not connect to the wifi.",
        "The screen of my {item} flickers since {month}.",
        "How do I reset the {item} to factory settings?",
    ],
    "account": [
        "I forgot the password to my account.",
        "Please change the email address on my account to my {month} one.",
        "How do I delete my account?",
        "I cannot log in since {month}.",
        "Can I add a second user to my account for the {item}?",
    ],
}
ITEMS = ["laptop", "tablet", "router", "phone", "smart watch", "printer", "camera", "speaker",
         "television", "game console", "e-reader", "drone"]
GREETINGS = [("Hi, I need some help.", "Of course. What is the problem?"),
             ("Hello there.", "Hello! How can I help you today?"),
             ("Good morning, quick question.", "Good morning. Go ahead.")]


def support(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    teams = list(SUPPORT)
    rows = []
    for i in range(n):
        team = teams[i % len(teams)]
        text = rng.choice(SUPPORT[team]).format(month=rng.choice(MONTHS), item=rng.choice(ITEMS))
        msgs = [{"role": "system", "content": SUPPORT_SYSTEM}]
        if rng.random() < 0.3:  # a greeting first: multi-turn rows, as real chat logs have
            hello, reply = rng.choice(GREETINGS)
            msgs += [{"role": "user", "content": hello}, {"role": "assistant", "content": reply}]
        msgs += [{"role": "user", "content": text}, {"role": "assistant", "content": team}]
        rows.append({"messages": msgs, "label": team})
    rng.shuffle(rows)
    return rows


# ---- clock: 24-hour time -> 12-hour time (question / answer CSV) ----

def clock(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    pairs = [(h, m) for h in range(24) for m in range(60)]
    rng.shuffle(pairs)
    rows = []
    for h, m in pairs[:n]:  # distinct times: held-out rows are unseen
        h12 = h % 12 or 12
        rows.append({"question": f"What is {h:02d}:{m:02d} in 12-hour time?",
                     "answer": f"{h12}:{m:02d} {'AM' if h < 12 else 'PM'}"})
    return rows


# ---- weather: short templated reports, plain text for language-model training ----

CITIES = ["Paris", "Oslo", "Madrid", "Lima", "Cairo", "Tokyo", "Denver", "Dublin", "Nairobi",
          "Sydney", "Toronto", "Lisbon", "Seoul", "Quito", "Vienna", "Perth"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SKIES = ["sunny", "cloudy", "rainy", "windy", "foggy", "snowy", "stormy", "clear"]


def weather(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        high = rng.randint(-5, 35)
        low = high - rng.randint(3, 12)
        city, day, sky = rng.choice(CITIES), rng.choice(DAYS), rng.choice(SKIES)
        docs.append(
            f"Weather report for {city} on {day}.\n"
            f"The day will be {sky} with a high of {high} degrees and a low of {low} degrees."
        )
    return docs
