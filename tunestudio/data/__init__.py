"""The dataset layer: load any supported file into Records, check, clean, split, encode."""
