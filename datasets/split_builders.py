"""How CoOp builds a split when a dataset ships without a split file.

Both builders draw from Python's global ``random`` in the same order as CoOp, so a split
built right after seeding is the one CoOp would build (the published split files remain
the reference: a user who has them gets exactly those).
"""
import os
import random

from .datum import Datum

# What a class folder may hold as an image (compared lower-case). Anything else there (a
# notes.txt, a Thumbs.db, a README) is skipped with a message instead of becoming a sample.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def listdir_nohidden(path, sort=False):
    """Dassl's ``listdir_nohidden``: entries not starting with '.', in os.listdir order
    unless ``sort`` (CoOp relies on that order when it shuffles)."""
    items = [name for name in os.listdir(path) if not name.startswith(".")]
    return sorted(items) if sort else items


def is_image_name(name):
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder, sort=False):
    """The image files of ``folder`` (``listdir_nohidden`` order, so CoOp's shuffles see the
    same list when the folder holds images only); other entries are skipped and named once.
    Every dataset that lists a class folder goes through here."""
    names = listdir_nohidden(folder, sort=sort)
    images = [name for name in names if is_image_name(name)]
    skipped = [name for name in names if not is_image_name(name)]
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        print(f"Skipping {len(skipped)} non-image entr{'y' if len(skipped) == 1 else 'ies'} in {folder} "
              f"(not {'/'.join(IMAGE_EXTENSIONS)}): {', '.join(skipped[:5])}{more}")
    return images


def read_and_split_data(image_dir, p_trn=0.5, p_val=0.2, ignored=(), new_cnames=None):
    """One folder per class under ``image_dir`` (sorted names are the labels); split each
    class with ``split_per_class`` (CoOp's DescribableTextures.read_and_split_data)."""
    categories = sorted(c for c in listdir_nohidden(image_dir) if c not in ignored)
    groups = []
    for label, category in enumerate(categories):
        category_dir = os.path.join(image_dir, category)
        images = [os.path.join(category_dir, name) for name in list_images(category_dir)]
        groups.append((label, (new_cnames or {}).get(category, category), images, category_dir))
    return split_per_class(groups, p_trn, p_val)


def split_per_class(groups, p_trn=0.5, p_val=0.2):
    """``groups``: ``(label, classname, impaths, source)`` per class, in CoOp's order. Per class
    shuffle the paths, then take round(n * p_trn) train, round(n * p_val) val, the rest test."""
    p_tst = 1 - p_trn - p_val
    print(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {p_tst:.0%} test")
    train, val, test = [], [], []
    for label, classname, images, source in groups:
        random.shuffle(images)
        n_train = round(len(images) * p_trn)
        n_val = round(len(images) * p_val)
        if not (n_train > 0 and n_val > 0 and len(images) - n_train - n_val > 0):
            raise ValueError(f"class {classname!r} ({source}) has {len(images)} images: too few for a "
                             f"{p_trn:.0%}/{p_val:.0%}/{p_tst:.0%} split")
        for part, paths in ((train, images[:n_train]), (val, images[n_train:n_train + n_val]),
                            (test, images[n_train + n_val:])):
            part.extend(Datum(impath=path, label=label, classname=classname) for path in paths)
    return train, val, test


def split_trainval(trainval, p_val=0.2):
    """Per label, shuffle the indices and move round(n * p_val) of them to val
    (CoOp's OxfordPets.split_trainval)."""
    print(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    by_label = {}
    for idx, item in enumerate(trainval):
        by_label.setdefault(item.label, []).append(idx)
    train, val = [], []
    for label, idxs in by_label.items():
        n_val = round(len(idxs) * p_val)
        if n_val <= 0:
            raise ValueError(f"class {trainval[idxs[0]].classname!r} (label {label}) has {len(idxs)} "
                             "train+val images: too few to hold out a validation image")
        random.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val
