"""CLIP and its frozen features: open_clip loading, the feature cache, text encoding, torchrun
sharding and the cached-feature trainer base that every method trainer builds on."""
