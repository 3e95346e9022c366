#!/usr/bin/env python3
"""Writes the SFT demo dataset Examples/sft-sentiment/{train,eval,heldout}.jsonl: short review sentences made from
templates and word lists, each labelled positive or negative, as OpenAI chat JSONL:

  {"messages": [{"role": "system", "content": "Answer with one word: positive or negative."},
                {"role": "user", "content": "Review: <sentence>\\nIs this review positive or negative?"},
                {"role": "assistant", "content": "positive"}]}          (or "negative")

train (600) and eval (100) use the TRAIN templates and word lists (eval sentences never occur in train); heldout (200)
uses templates, adjectives, verbs, intensifiers and nouns that are all disjoint from train's, so it measures
generalisation rather than memorisation. Every split has exactly half positive, half negative.

Pure Python (any python3 >= 3.8), no dependencies; deterministic (random.Random seeded per split), so re-running gives
byte-identical files.  Run:  python3 scripts/make-sft-demo-data.py [OUT_DIR]   (default Examples/sft-sentiment)
"""
import json, os, random, sys

SYSTEM = "Answer with one word: positive or negative."
QUESTION = "Review: {sentence}\nIs this review positive or negative?"
SIZES = {"train": 600, "eval": 100, "heldout": 200}
SEEDS = {"train": 1001, "eval": 1002, "heldout": 1003}

# Sentiment carriers. {adj} and {a_adj} ("a"/"an" + adjective) take an adjective, {verb} a past-tense verb,
# {intens} an intensifier. TRAIN and HELDOUT lists share no word.
WORDS = {
    "train": {
        "adj": {"positive": ["great", "wonderful", "fantastic", "superb", "lovely", "amazing", "brilliant",
                             "excellent", "pleasant", "outstanding"],
                "negative": ["terrible", "awful", "horrible", "disappointing", "dreadful", "poor", "bad",
                             "unpleasant", "lousy", "mediocre"]},
        "verb": {"positive": ["loved", "enjoyed", "liked"],
                 "negative": ["hated", "disliked", "regretted"]},
        "intens": ["really", "very", "truly"],
    },
    "heldout": {
        "adj": {"positive": ["marvelous", "delightful", "splendid", "terrific", "impressive", "fabulous",
                             "exceptional", "magnificent"],
                "negative": ["abysmal", "atrocious", "dismal", "appalling", "shoddy", "miserable", "pathetic",
                             "subpar"]},
        "verb": {"positive": ["adored", "appreciated", "admired"],
                 "negative": ["detested", "loathed", "despised"]},
        "intens": ["genuinely", "remarkably", "incredibly"],
    },
}

# Per domain: nouns (singular) and templates. TRAIN and HELDOUT share no noun and no template.
DOMAINS = {
    "food": {
        "train_nouns": ["pasta", "pizza", "soup", "steak", "curry", "salad", "burger", "dessert"],
        "heldout_nouns": ["ramen", "risotto", "omelette", "lasagna", "sandwich", "cheesecake"],
        "train_templates": [
            "The {noun} at this place was {adj}.",
            "We ordered the {noun} and it was {adj}.",
            "I {verb} the {noun} here.",
            "Honestly, the {noun} was {intens} {adj}.",
        ],
        "heldout_templates": [
            "Their {noun} tasted {adj} tonight.",
            "My partner said the {noun} was {adj}, and I agree.",
            "We {verb} the {noun} at this restaurant.",
        ],
    },
    "product": {
        "train_nouns": ["phone", "laptop", "blender", "vacuum cleaner", "backpack", "kettle", "keyboard", "toaster"],
        "heldout_nouns": ["tablet", "camera", "printer", "microwave", "suitcase", "drill"],
        "train_templates": [
            "The {noun} I bought last month is {adj}.",
            "This {noun} is {intens} {adj}.",
            "I {verb} this {noun}.",
            "It is {a_adj} {noun} for the price.",
        ],
        "heldout_templates": [
            "After two weeks of use, my new {noun} seems {adj}.",
            "Overall, I found the {noun} {intens} {adj}.",
            "I have {verb} this {noun} since day one.",
        ],
    },
    "film": {
        "train_nouns": ["film", "movie", "documentary", "concert", "play", "show", "cartoon", "ballet"],
        "heldout_nouns": ["series", "musical", "opera", "sequel", "thriller", "sitcom"],
        "train_templates": [
            "The {noun} we watched yesterday was {adj}.",
            "What {a_adj} {noun}!",
            "I {verb} the {noun}.",
            "The {noun} was {intens} {adj} from beginning to end.",
        ],
        "heldout_templates": [
            "Critics can say what they want; the {noun} was {adj}.",
            "From start to finish, this {noun} felt {intens} {adj}.",
            "My friends and I {verb} the {noun}.",
        ],
    },
    "travel": {
        "train_nouns": ["hotel room", "breakfast buffet", "check-in", "room service", "pool", "shuttle bus",
                        "flight", "beach"],
        "heldout_nouns": ["guesthouse", "spa", "ferry ride", "lobby", "tour guide", "rental car"],
        "train_templates": [
            "The {noun} during our trip was {adj}.",
            "I {verb} the {noun} at this hotel.",
            "The {noun} was {intens} {adj}, to be honest.",
            "We had {a_adj} experience with the {noun}.",
        ],
        "heldout_templates": [
            "Looking back on the vacation, the {noun} was {adj}.",
            "For the price, the {noun} was {intens} {adj}.",
            "We {verb} the {noun} on this holiday.",
        ],
    },
}


def article(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def sentence(rng, kind, label):
    """One review sentence from `kind`'s ("train" or "heldout") templates and words, carrying sentiment `label`."""
    domain = DOMAINS[rng.choice(sorted(DOMAINS))]
    template = rng.choice(domain[f"{kind}_templates"])
    words = WORDS[kind]
    adj = rng.choice(words["adj"][label])
    s = template.format(noun=rng.choice(domain[f"{kind}_nouns"]), adj=adj, a_adj=article(adj),
                        verb=rng.choice(words["verb"][label]), intens=rng.choice(words["intens"]))
    return s[0].upper() + s[1:]


def example(s, label):
    return {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": QUESTION.format(sentence=s)},
                         {"role": "assistant", "content": label}]}


def split(name, avoid):
    rng = random.Random(SEEDS[name])
    kind = "heldout" if name == "heldout" else "train"
    seen, rows = set(avoid), []
    for i in range(SIZES[name]):
        label = "positive" if i % 2 == 0 else "negative"
        for _ in range(10000):
            s = sentence(rng, kind, label)
            if s not in seen:
                break
        else:
            raise RuntimeError(f"{name}: ran out of distinct sentences")
        seen.add(s)
        rows.append((s, label))
    rng.shuffle(rows)
    return rows


def check_disjoint():
    tr, ho = WORDS["train"], WORDS["heldout"]
    train_words = set(tr["intens"]) | {w for k in ("adj", "verb") for l in tr[k].values() for w in l}
    held_words = set(ho["intens"]) | {w for k in ("adj", "verb") for l in ho[k].values() for w in l}
    assert not train_words & held_words, train_words & held_words
    train_nouns = {n for d in DOMAINS.values() for n in d["train_nouns"]}
    held_nouns = {n for d in DOMAINS.values() for n in d["heldout_nouns"]}
    assert not train_nouns & held_nouns, train_nouns & held_nouns
    train_t = {t for d in DOMAINS.values() for t in d["train_templates"]}
    held_t = {t for d in DOMAINS.values() for t in d["heldout_templates"]}
    assert not train_t & held_t
    for kind in WORDS:  # no word carries both labels
        for k in ("adj", "verb"):
            assert not set(WORDS[kind][k]["positive"]) & set(WORDS[kind][k]["negative"])


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "Examples", "sft-sentiment")
    os.makedirs(out, exist_ok=True)
    check_disjoint()
    train = split("train", set())
    splits = {"train": train, "eval": split("eval", {s for s, _ in train}), "heldout": split("heldout", set())}
    for name, rows in splits.items():
        assert len(rows) == SIZES[name] and sum(l == "positive" for _, l in rows) == SIZES[name] // 2
        with open(os.path.join(out, f"{name}.jsonl"), "w", encoding="utf-8") as f:
            for s, label in rows:
                f.write(json.dumps(example(s, label), ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} examples ({SIZES[name] // 2} positive), e.g. {rows[0][0]!r} -> {rows[0][1]}")


if __name__ == "__main__":
    main()
