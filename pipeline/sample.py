"""Generate the embedded synthetic sample: reviews in the exact Kaggle fastText format.

    python -m pipeline.sample            # rewrites data/sample/{train,test}.ft.txt.bz2

The reviews are synthetic (template-generated, deterministic for a seed), made so that word
order decides the label and a bag of words cannot: every sentiment word appears in both
classes. Each review holds one deciding construction, chosen at random:

- plain:     "the battery is excellent."                        (label from the adjective)
- negated:   "the battery is not bad."                          ("not" flips the adjective)
- contrast:  "it looked great at first, but it broke in a week." (the clause after "but" wins)
- concession "although the price is high, it is excellent."     (the main clause wins)
- distant:   any of the above, then several neutral sentences, so the deciding phrase is far
             from the end and the model must carry it.

plus neutral filler sentences (with digits, URLs and ``<br />`` tags, so cleaning has work to
do), made-up brand names (rare words that exercise ``<unk>``) and a title that is neutral or
itself a (possibly negated) verdict consistent with the label.
Like real star ratings, a few labels (``LABEL_NOISE``) disagree with the text, so a perfect
score is impossible: expect test accuracy near ``1 - LABEL_NOISE`` from a model that learned it.
"""

from __future__ import annotations

import argparse
import bz2
import random
from pathlib import Path

PRODUCTS = [
    "blender",
    "toaster",
    "headphones",
    "phone case",
    "backpack",
    "coffee maker",
    "keyboard",
    "desk lamp",
    "vacuum",
    "charger",
    "tent",
    "watch",
    "kettle",
    "camera",
    "mouse",
    "speaker",
    "jacket",
    "drill",
    "novel",
    "album",
    "router",
    "mattress",
    "stroller",
    "printer",
]
ASPECTS = [
    "sound",
    "battery",
    "build quality",
    "design",
    "screen",
    "fit",
    "motor",
    "handle",
    "packaging",
    "manual",
    "finish",
    "cable",
    "zipper",
    "lid",
    "grip",
    "display",
    "story",
    "strap",
]
POSITIVE = [
    "great",
    "excellent",
    "good",
    "fantastic",
    "solid",
    "reliable",
    "wonderful",
    "sturdy",
    "impressive",
    "comfortable",
    "perfect",
    "amazing",
    "superb",
    "decent",
    "lovely",
]
NEGATIVE = [
    "terrible",
    "awful",
    "bad",
    "poor",
    "flimsy",
    "disappointing",
    "useless",
    "cheap",
    "horrible",
    "weak",
    "defective",
    "noisy",
    "mediocre",
    "fragile",
    "dreadful",
]
POSITIVE_EVENTS = [
    "it works perfectly now",
    "it has held up well",
    "support fixed it the same day",
    "it does exactly what i wanted",
    "it is still going strong",
    "i use it every day happily",
    "it exceeded my expectations",
    "it was worth every penny",
]
NEGATIVE_EVENTS = [
    "it broke after a week",
    "it stopped working within days",
    "it fell apart quickly",
    "support never answered",
    "it died after {n} uses",
    "i had to return it",
    "it was a waste of money",
    "it failed the second time i used it",
]
FILLERS = [
    "i bought this for my {who} last month.",
    "it arrived on a tuesday in a plain box.",
    "my {who} has the older model.",
    "the box includes a manual and a cable.",
    "i use it mostly on weekends.",
    "shipping took {n} days.",
    "it comes in black and silver.",
    "i have had it for {n} weeks now.",
    "i read a few reviews before ordering.",
    "the color matches the photos.",
    "it weighs about {n} pounds.",
    "i ordered it on {n}/{n}/20{n}{n}.",
    "more details are at http://www.example.com/item/{n}{n}{n} if you care.",
    "we keep it in the {room}.",
    "the model number is {n}{n}{n}{n}.",
    "i paid ${n}{n}.99 for it.",
    "it replaced the one i had for {n} years.",
    "my {who} picked the color.",
    "i compared it with two other brands.",
    "the instructions are in {n} languages.",
    "it is made by {brand}.",
    "{brand} also sells a bigger version.",
    "i found it through a {brand} ad.",
]
LABEL_NOISE = 0.03
SYLLABLES = ["zor", "vex", "qua", "lin", "tro", "mak", "pel", "dri", "nox", "bel", "kin", "sta", "fu", "ra"]
WHO = ["wife", "husband", "son", "daughter", "mom", "dad", "roommate", "brother", "sister", "friend"]
ROOMS = ["kitchen", "garage", "office", "bedroom", "living room", "basement"]
NEUTRAL_TITLES = [
    "{product} review",
    "my thoughts on this {product}",
    "bought for my {who}",
    "{product}",
    "second {product} this year",
    "review after {n} weeks",
    "honest review",
    "read this before buying",
    "a {product} for the {room}",
]


class ReviewWriter:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.product = PRODUCTS[0]  # one product per review

    def fill(self, template: str) -> str:
        choice = self.rng.choice
        while "{" in template:
            template = (
                template.replace("{n}", str(self.rng.randint(1, 9)), 1)
                .replace("{who}", choice(WHO), 1)
                .replace("{room}", choice(ROOMS), 1)
                .replace("{product}", self.product, 1)
                .replace("{brand}", self.brand(), 1)
            )
        return template

    def brand(self) -> str:
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(2, 3))).capitalize()

    def adjective(self, positive: bool) -> str:
        return self.rng.choice(POSITIVE if positive else NEGATIVE)

    def clause(self, positive: bool) -> str:
        """A short clause of the given polarity, sometimes built with a negation."""
        aspect = self.rng.choice(ASPECTS)
        kind = self.rng.random()
        if kind < 0.4:
            return f"the {aspect} is {self.adjective(positive)}"
        if kind < 0.7:
            return f"the {aspect} is not {self.adjective(not positive)}"
        return self.fill(self.rng.choice(POSITIVE_EVENTS if positive else NEGATIVE_EVENTS))

    def deciding(self, positive: bool) -> str:
        """One sentence whose polarity only word order reveals."""
        rng = self.rng
        product = self.product
        kind = rng.random()
        if kind < 0.25:
            return f"the {product} is {self.adjective(positive)}."
        if kind < 0.5:
            verb = rng.choice(["is not", "is not at all", "was never", "is definitely not"])
            return f"this {product} {verb} {self.adjective(not positive)}."
        if kind < 0.8:
            first = rng.choice(
                [
                    f"it looked {self.adjective(not positive)} at first",
                    f"i expected it to be {self.adjective(not positive)}",
                    self.clause(not positive),
                ]
            )
            return f"{first}, but {self.clause(positive)}."
        return f"although {self.clause(not positive)}, {self.clause(positive)}."

    def review(self, positive: bool) -> tuple[str, str]:
        rng = self.rng
        self.product = rng.choice(PRODUCTS)
        sentences = [self.fill(rng.choice(FILLERS)) for _ in range(rng.randint(0, 2))]
        sentences.append(self.deciding(positive))
        if rng.random() < 0.3:  # distant: the verdict comes early, neutral talk follows
            sentences += [self.fill(rng.choice(FILLERS)) for _ in range(rng.randint(2, 4))]
        elif rng.random() < 0.5:
            sentences.append(self.fill(rng.choice(FILLERS)))
        body = (" <br /><br />" if rng.random() < 0.1 else " ").join(s[0].upper() + s[1:] for s in sentences)
        if rng.random() < 0.6:
            title = self.fill(rng.choice(NEUTRAL_TITLES))
        elif rng.random() < 0.5:
            title = f"{self.adjective(positive)} {self.product}"
        else:
            title = f"not {self.adjective(not positive)}"
        return title[0].upper() + title[1:], body


def generate(rows: int, seed: int) -> list[str]:
    """``rows`` lines ``__label__1|2 <title>: <text>``, about half of each label."""
    rng = random.Random(seed)
    writer = ReviewWriter(rng)
    lines = []
    for _ in range(rows):
        positive = rng.random() < 0.5
        title, body = writer.review(positive)
        label = positive if rng.random() >= LABEL_NOISE else not positive
        lines.append(f"__label__{2 if label else 1} {title}: {body}")
    return lines


def write_bz2(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime-free raw bz2 of the text: the same lines give the same bytes
    path.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/sample"), help="output folder (default: data/sample)")
    parser.add_argument("--train-rows", type=int, default=24_000, help="train reviews (default: 24000)")
    parser.add_argument("--test-rows", type=int, default=4_000, help="test reviews (default: 4000)")
    parser.add_argument("--seed", type=int, default=2015, help="random seed (default: 2015)")
    args = parser.parse_args()
    for name, rows, seed in (("train", args.train_rows, args.seed), ("test", args.test_rows, args.seed + 1)):
        path = args.out / f"{name}.ft.txt.bz2"
        write_bz2(path, generate(rows, seed))
        print(f"wrote {path}: {rows} reviews, {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
