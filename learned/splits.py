"""Which real scenes the learned matchers may train on, and which are held out for validation and benchmarks."""

# Held out from every training run; the learned-vs-classical accuracy targets are measured on these.
VALIDATION_SCENES = ("teddy", "Art", "Wood2")
# The other shared Middlebury scenes, usable for training and fine-tuning.
TRAIN_SCENES = ("sawtooth", "tsukuba", "venus", "cones", "Books", "Dolls", "Reindeer", "Cloth3")
