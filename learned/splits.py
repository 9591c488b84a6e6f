"""Which real scenes the learned matchers may train on, and which are held out for validation and benchmarks.

`is_held_out(name)` is the one rule both trainers use to recognise a held-out scene in a pair name, whatever the
dataset's spelling: each path component (and each word of it, split at ``_ - . space`` and camelCase) is compared
case-insensitively with the held-out scenes after dropping a trailing resolution word (``full``, ``half``, ``third``,
``quarter``) and up to two MiddEval3 suffix letters (``F``/``H``/``Q`` resolution, ``L``/``E``/``P`` variants).
So ``teddy``, ``ArtL``, ``teddyQ``, ``Art_half``, ``Art-2005``, ``wood2-full``, ``middlebury2005/Art`` and
``trainingQ/Teddy`` are held out; ``Artwork`` or ``cones`` are not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stereokit.errors import StereoKitError

# Held out from every training run; the learned-vs-classical accuracy targets are measured on these.
VALIDATION_SCENES = ("teddy", "Art", "Wood2")
# The other shared Middlebury scenes, usable for training and fine-tuning.
TRAIN_SCENES = ("sawtooth", "tsukuba", "venus", "cones", "Books", "Dolls", "Reindeer", "Cloth3")

_HELD_OUT = frozenset(s.lower() for s in VALIDATION_SCENES)
_RESOLUTION_WORDS = ("full", "half", "third", "quarter")
_SUFFIX_LETTERS = "fhqlep"  # MiddEval3: F/H/Q resolution; L lighting, E exposure, P perfect-rectification variants


def _words(name: str) -> set[str]:
    """Lower-case candidates of a pair name: each path component, its words, and the component without separators."""
    out: set[str] = set()
    for comp in re.split(r"[/\\:]+", str(name)):
        comp = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", comp)  # camelCase: ArtL -> Art L
        words = [w for w in re.split(r"[\s_\-.]+", comp.lower()) if w]
        out.update(words)
        out.add("".join(words))
    return out


def _stems(word: str) -> set[str]:
    """`word` and what remains after dropping a trailing resolution word or up to two MiddEval3 suffix letters."""
    stems = {word}
    for suffix in _RESOLUTION_WORDS:
        if word.endswith(suffix) and len(word) > len(suffix):
            stems.add(word[: -len(suffix)])
    for n in (1, 2):
        if len(word) > n and all(c in _SUFFIX_LETTERS for c in word[-n:]):
            stems.add(word[:-n])
    return stems


def is_held_out(name: str) -> bool:
    """True when the pair name denotes a held-out validation scene (see the module docstring for the rule)."""
    return any(_stems(w) & _HELD_OUT for w in _words(name))


def training_indices(spec: str, names: Sequence[str]) -> tuple[list[int], list[str]]:
    """Indices of the pairs of dataset `spec` that may be trained on, and the held-out names skipped.

    A spec whose every pair is held out raises StereoKitError saying so (training on it would use nothing).
    """
    keep = [i for i, n in enumerate(names) if not is_held_out(n)]
    skipped = [n for n in names if is_held_out(n)]
    if names and not keep:
        raise StereoKitError(
            f"all pairs of {spec} are held-out validation scenes: {', '.join(skipped)} "
            f"(learned.splits.VALIDATION_SCENES are never trained on)"
        )
    return keep, skipped
