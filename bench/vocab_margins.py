"""How far a query phrase must clear the label descriptions before the embedding fallback gives it a slot.

    python bench/vocab_margins.py [--scifact ../shared/datasets/scifact] [--vocab full|core] [--sweep]

Compares, for each context slot, the best similarity between a query's phrases and the label descriptions
(as `search.intent` computes it) on two kinds of text:

- phrases that describe a slot without naming it (POSITIVES below, written for this check: the lexicon misses
  them, so only the embedding can fill the slot), each with the labels that would be right;
- text that names no scene context at all: generic prompt fragments (NEGATIVES) and the 300 SciFact test
  claims, where any slot is spurious.

It prints, per slot, how many positives resolve to an acceptable label and how many to a wrong one (the rest get
no slot), and how many negatives get a slot, under the floors in `search.intent` (`--sweep`: also floors 0.05
lower and higher, and margins over the runner-up that is not a near-synonym). `--vocab core` measures the
hand-written vocabulary alone (labels.toml), as before Places365.

`--scenes` measures the index-time fallback instead: each of the 202 fixture scenes as if its setting and tone
were left out, resolved from the whole scene text by similarity (no lexicon) over the core labels or over all
labels of the slot, against the true labels in fixtures/truth/scene_labels.jsonl.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from indexer.catalog import read_scenes
from indexer.context import SIMILARITY_FLOOR, scene_text
from indexer.encoders import Encoder, load_text_encoder
from indexer.vocab import Vocabulary, resolve
from search.intent import EMBED_FLOOR, load_lexicon, query_phrases

# phrase -> slot -> acceptable labels (the lexicon names none of them for that slot)
POSITIVES: list[tuple[str, dict[str, set[str]]]] = [
    ("rows of grapevines on a sunny hillside", {"setting": {"vineyard"}}),
    ("tall shelves of old books and reading lamps", {"setting": {"library", "bookstore", "archive_room"}}),
    ("steaming natural pools among rocks", {"setting": {"hot_spring", "swimming_hole"}}),
    ("a surgeon leaning over a patient under bright lights", {"setting": {"operating_room", "hospital_room"}}),
    ("kids sliding down a twisting slide into a splash pool", {"setting": {"water_park", "playground"}}),
    ("racks of blinking servers and tangled cables", {"setting": {"server_room"}}),
    ("a chef plating dishes beside flaming pans", {"setting": {"restaurant_kitchen", "kitchen"}}),
    ("students taking notes while a teacher writes on the board", {"setting": {"classroom", "lecture_room"}}),
    ("rows of desks with people typing at computers", {"setting": {"office", "computer_room"}}),
    ("passengers waiting for the next train underground", {"setting": {"subway_station", "train_station"}}),
    ("travellers pulling suitcases past departure boards", {"setting": {"airport_terminal", "train_station"}}),
    ("cars queuing at the fuel pumps", {"setting": {"gas_station"}}),
    ("a couple sharing pasta by candlelight", {"setting": {"restaurant", "dining_room", "pizzeria"}}),
    ("fresh loaves and croissants behind a glass counter", {"setting": {"bakery", "cafe", "delicatessen"}}),
    ("a dusty trail between red sandstone walls", {"setting": {"desert", "butte", "rock_arch", "cliff"}}),
    ("ferns and moss along a shaded path", {"setting": {"forest"}}),
    ("waves rolling onto white sand under palm trees", {"setting": {"beach", "lagoon", "small_island"}}),
    ("a snowboarder carving down fresh powder", {"setting": {"alpine", "snowfield"}}),
    ("a hammock between palm trees by turquoise water", {"setting": {"beach", "lagoon", "small_island"}}),
    ("steel and glass towers seen from street level", {"setting": {"skyscraper", "city_street", "office_building"}}),
    ("a toddler stacking blocks on a soft rug surrounded by toys", {"setting": {"playroom", "childs_room"}}),
    ("a fisherman casting a line from a rowing boat on still water", {"setting": {"lakeside", "fishpond"}}),
    ("grazing sheep on a green hill behind a stone wall", {"setting": {"pasture", "farm", "meadow"}}),
    ("a plough cutting long furrows in brown earth", {"setting": {"farm_field", "farm"}}),
    ("the roar of fans in packed stands under floodlights", {"setting": {"stadium", "concert_arena"}}),
    ("a runner's feet pounding the red rubber lanes", {"setting": {"athletics_track", "gym"}}),
    ("a tiled room with a clawfoot tub and a fogged mirror", {"setting": {"bathroom"}}),
    ("racks of dresses and mannequins", {"setting": {"clothing_store", "shopfront", "department_store"}}),
    ("someone shaking cocktails under moody pendant lights", {"setting": {"cocktail_bar", "pub", "wet_bar"}}),
    ("dancers under strobe lights as the dj drops the beat", {"setting": {"nightclub", "outdoor_stage"}}),
    ("a family roasting marshmallows beside their tents", {"setting": {"campsite"}}),
    ("a quiet row of graves under old oak trees", {"setting": {"cemetery"}}),
    ("a pilot flipping switches high above the ground", {"setting": {"cockpit", "airplane_cabin"}}),
    ("coloured light falling across wooden pews", {"setting": {"church"}}),
    ("kids on swings and a slide in the sun", {"setting": {"playground"}}),
    ("ancient columns and crumbling stone walls", {"setting": {"ruins", "amphitheater"}}),
    ("water plunging over a rocky ledge into a pool below", {"setting": {"waterfall", "swimming_hole"}}),
    ("a glowing flow of molten rock", {"setting": {"volcano"}}),
    ("an elephant drinking at a muddy waterhole", {"setting": {"watering_hole"}}),
    ("penguins on floating sheets of ice", {"setting": {"ice_floe", "ice_shelf", "iceberg"}}),
    ("a dim room with a giant screen and reclining seats", {"setting": {"home_theater", "movie_theater"}}),
    ("shelves of canned food and a shopping cart", {"setting": {"supermarket", "general_store"}}),
    ("a barista pouring latte art", {"setting": {"cafe"}}),
    ("a patient resting with a drip in the arm", {"setting": {"hospital_room"}}),
    ("a koi swimming under lily pads", {"setting": {"fishpond", "japanese_garden"}}),
    ("row upon row of white turbines on a ridge", {"setting": {"wind_farm"}}),
    ("a red telephone kiosk on a rainy corner", {"setting": {"phone_booth"}}),
    ("climbers roped together crossing a crack in blue ice", {"setting": {"crevasse", "alpine"}}),
    ("a boxer throwing punches between the ropes", {"setting": {"boxing_ring", "martial_arts_gym"}}),
    ("a crowd waving lighters at a festival", {"setting": {"outdoor_stage", "concert_arena"}}),
    ("hushed white rooms hung with paintings in gilded frames", {"setting": {"art_gallery", "museum"}}),
    ("an endless flat white expanse of frozen ground", {"setting": {"snowfield", "tundra", "ice_shelf"}}),
    ("sunflowers stretching to the horizon", {"setting": {"farm_field", "meadow"}}),
    ("a sofa and a rug by a crackling hearth", {"setting": {"living_room"}}),
    ("pots simmering while someone chops onions", {"setting": {"kitchen", "restaurant_kitchen"}}),
    ("someone asleep under a duvet with the curtains drawn", {"setting": {"bedroom", "hotel_room"}}),
    ("an espresso and a croissant at a small round table", {"setting": {"cafe", "bakery"}}),
    ("barbells clanking and mirrors along the wall", {"setting": {"gym"}}),
    ("a plain white sweep lit by softboxes", {"setting": {"studio", "television_studio"}}),
    ("heat shimmering over cracked dry earth", {"setting": {"desert"}}),
    ("neon signs reflected between honking cabs", {"setting": {"city_street"}}),
    ("metal cabinets and benches where the team changes after practice", {"setting": {"locker_room"}}),
    ("a judge banging a gavel", {"setting": {"courthouse"}}),
    ("laundry spinning in rows of machines", {"setting": {"laundromat", "utility_room"}}),
    ("a baby asleep in a cot under a mobile", {"setting": {"baby_nursery", "childs_room"}}),
    ("a vet examining a puppy", {"setting": {"vet_clinic"}}),
    ("a monk sweeping the steps beneath golden curved roofs", {"setting": {"asian_temple", "pagoda"}}),
    ("surfers paddling out past the break", {"setting": {"beach"}}),
    ("a kayak gliding between tangled roots in dark still water", {"setting": {"swamp", "marsh", "natural_canal"}}),
    ("tumbleweed rolling across an empty plain", {"setting": {"desert", "meadow"}}),
    ("commuters swaying as the carriage rattles along", {"setting": {"train_interior", "subway_station"}}),
    ("a grandmother hugging her grandson after years apart", {"tone": {"heartwarming", "romantic"}}),
    ("a comedian slipping on a banana peel", {"tone": {"humorous", "playful"}}),
    ("a shadowy figure at the end of an abandoned hallway", {"tone": {"eerie", "mysterious", "suspenseful"}}),
    ("a countdown clock ticking as the wire is cut", {"tone": {"suspenseful", "dramatic"}}),
    ("an athlete crossing the finish line with arms raised", {"tone": {"triumphant", "inspiring", "empowering"}}),
    ("rain on the window and an empty chair", {"tone": {"melancholic", "serene"}}),
    ("a woman striding into the boardroom owning the room", {"tone": {"empowering", "luxurious"}}),
    ("skateboarders spray-painting a wall", {"tone": {"rebellious", "gritty", "energetic"}}),
    ("fireworks and clinking glasses", {"tone": {"festive", "romantic"}}),
    ("soft pastel clouds and floating petals", {"tone": {"dreamy", "serene", "romantic"}}),
    ("holographic displays and chrome robots", {"tone": {"futuristic"}}),
    ("ice cubes splashing into a cold fizzy lemonade", {"tone": {"refreshing", "playful", "energetic"}}),
    ("silk sheets and slow candlelit glances", {"tone": {"sensual", "romantic"}}),
    ("a doctor calmly explaining the results to a family", {"tone": {"reassuring", "serene"}}),
    ("friends laughing unposed around a table", {"tone": {"authentic", "playful", "heartwarming"}}),
    ("handmade clay pots and dried flowers", {"tone": {"earthy", "nostalgic", "minimalist"}}),
    ("a dusty old photograph beside a record player", {"tone": {"nostalgic", "melancholic"}}),
    ("a sports car tearing through a tunnel", {"tone": {"energetic", "dramatic", "adventurous"}}),
    ("champagne on the deck of a yacht", {"tone": {"luxurious", "festive"}}),
    ("rock climbers scaling a sheer wall", {"tone": {"adventurous", "empowering"}}),
    ("a white room with a single chair", {"tone": {"minimalist", "serene"}}),
    ("a secret door hidden behind a bookshelf", {"tone": {"mysterious"}}),
    ("the sun just peeking over the horizon", {"time_of_day": {"dawn", "golden_hour"}}),
    ("long shadows as the sun dips low", {"time_of_day": {"golden_hour", "dusk"}}),
    ("lamps flickering on as the sky turns deep blue", {"time_of_day": {"dusk", "night"}}),
    ("under a full moon", {"time_of_day": {"night"}}),
    ("the sun directly overhead", {"time_of_day": {"midday"}}),
    ("heavy drops hitting the pavement", {"weather": {"rain", "storm"}}),
    ("flakes drifting down past the streetlight", {"weather": {"snow"}}),
    ("a thick grey ceiling of cloud", {"weather": {"overcast", "storm"}}),
    ("visibility down to a few meters", {"weather": {"fog"}}),
    ("trees bending in a howling wind", {"weather": {"storm"}}),
    ("not a single cloud in the sky", {"weather": {"clear"}}),
]

# Prompt fragments that name no setting, time, weather or tone.
NEGATIVES = [
    "a slow dolly-in on the product",
    "a woman smiling at the camera",
    "the bottle rotating on a turntable",
    "shot on 35mm, shallow depth of field",
    "4k, highly detailed, photorealistic",
    "hands unboxing a new phone",
    "a man adjusting his tie",
    "text appears: limited edition",
    "a logo reveal with particles",
    "a dog running towards the camera",
    "a hand pouring sauce",
    "smooth camera motion",
    "colorful abstract shapes morphing",
    "a 3d animated character waving",
    "a model turning to face the lens",
    "macro shot of skin texture",
    "an explainer animation of a banking app",
    "a split screen comparison",
    "the price tag flipping",
    "a person typing on a phone",
    "a spinning coin",
    "ultra wide lens, symmetrical composition",
    "a glass of water",
    "purple monkey dishwasher",
    "qwerty asdf zxcv",
    "lorem ipsum dolor sit amet",
    "the quarterly revenue grew by twelve percent",
    "how to reset my password",
    "top 10 tips",
    "new collection out now",
]


class CachedEncoder:
    """Encodes each text once: the sweep measures the same phrases under many thresholds."""

    def __init__(self, encoder: Encoder):
        self.inner, self.id, self.dim, self.modality = encoder, encoder.id, encoder.dim, encoder.modality
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            self.cache.update(zip(missing, self.inner.encode(missing), strict=True))
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def phrase_sims(texts: list[str], slot: str, vocab: Vocabulary, encoder: Encoder) -> list[np.ndarray]:
    """Per text, its phrases x the slot's labels similarity matrix (as the intent parser computes it)."""
    filler = load_lexicon().filler
    split = [query_phrases(" ".join(t.lower().split()), filler) or [t.lower()] for t in texts]
    vectors = encoder.encode([p for phrases in split for p in phrases])
    _, sims = vocab.nearest(vectors, slot, encoder)
    out, start = [], 0
    for phrases in split:
        out.append(sims[start : start + len(phrases)])
        start += len(phrases)
    return out


def measure(vocab: Vocabulary, encoder: Encoder, claims: list[str], floor: dict[str, float], margin: float) -> None:
    lexicon = Vocabulary.load()  # the same texts for either vocabulary: those the full lexicon leaves to the embedding
    for slot in ("setting", "time_of_day", "weather", "tone"):
        labels = vocab.by_slot[slot]
        pos = [(t, want[slot]) for t, want in POSITIVES if slot in want and not lexicon.find(t, slot)]
        near = vocab.neighbours(slot, encoder)
        right = wrong = empty = 0
        for (_, want), sims in zip(pos, phrase_sims([t for t, _ in pos], slot, vocab, encoder), strict=True):
            hit = resolve(sims, floor[slot], margin, near)
            if hit is None:
                empty += 1
            elif labels[hit.column].name in want:
                right += 1
            else:
                wrong += 1
        neg = [t for t in NEGATIVES if not lexicon.find(t, slot)]
        sci = [t for t in claims if not lexicon.find(t, slot)]
        fp = sum(resolve(s, floor[slot], margin, near) is not None for s in phrase_sims(neg, slot, vocab, encoder))
        fs = sum(resolve(s, floor[slot], margin, near) is not None for s in phrase_sims(sci, slot, vocab, encoder))
        print(
            f"| {slot} | {floor[slot]:.2f} | {margin:.2f} | {right}/{len(pos)} | {wrong}/{len(pos)} "
            f"| {fp}/{len(neg)} | {fs}/{len(sci)} |"
        )


def measure_scenes(vocab: Vocabulary, encoder: Encoder, fixtures: Path) -> None:
    scenes = read_scenes(fixtures / "catalog" / "scenes.jsonl").records
    truth = {}
    for line in (fixtures / "truth" / "scene_labels.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        truth[record["scene_id"]] = record
    vectors = encoder.encode([scene_text(s) for s in scenes])
    print("| slot | labels | floor | right | wrong | none |")
    print("| --- | --- | --- | --- | --- | --- |")
    for slot in ("setting", "tone"):
        for core_only in (True, False):
            labels, sims = vocab.nearest(vectors, slot, encoder, core_only=core_only)
            right = wrong = 0
            for scene, row in zip(scenes, sims, strict=True):
                hit = resolve(row[None, :], SIMILARITY_FLOOR[slot])
                want = truth[scene.scene_id][slot]
                if hit is not None:
                    ok = labels[hit.column].name in (want if isinstance(want, list) else [want])
                    right, wrong = right + ok, wrong + (not ok)
            which = "core" if core_only else "all"
            none = len(scenes) - right - wrong
            print(f"| {slot} | {which} ({len(labels)}) | {SIMILARITY_FLOOR[slot]:.2f} | {right} | {wrong} | {none} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scifact", type=Path, default=Path("../shared/datasets/scifact"), help="BEIR SciFact folder")
    parser.add_argument("--vocab", choices=("full", "core"), default="full", help="vocabulary (default: full)")
    parser.add_argument("--sweep", action="store_true", help="also sweep floor offsets and margins")
    parser.add_argument("--scenes", action="store_true", help="measure the index-time fallback on the fixture scenes")
    parser.add_argument("--fixtures", type=Path, default=Path("fixtures"), help="fixtures folder (default: fixtures)")
    args = parser.parse_args()
    vocab = Vocabulary.load() if args.vocab == "full" else Vocabulary.load(extra=(), places=None)
    encoder = CachedEncoder(load_text_encoder())
    if args.scenes:
        measure_scenes(vocab, encoder, args.fixtures)
        return
    test = {line.split("\t")[0] for line in (args.scifact / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    rows = [json.loads(line) for line in (args.scifact / "queries.jsonl").read_text().splitlines()]
    claims = [r["text"] for r in rows if r["_id"] in test]
    counts = {slot: len(labels) for slot, labels in vocab.by_slot.items()}
    print(f"vocabulary: {args.vocab}, {counts}")
    print("| slot | floor | margin | positives right | positives wrong | prompt fragments | SciFact claims |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    measure(vocab, encoder, claims, EMBED_FLOOR, 0.0)
    if args.sweep:
        for offset in (-0.05, 0.0, 0.05):
            for margin in (0.0, 0.03, 0.06):
                if (offset, margin) != (0.0, 0.0):
                    measure(vocab, encoder, claims, {k: v + offset for k, v in EMBED_FLOOR.items()}, margin)


if __name__ == "__main__":
    main()
