"""Reading images for feature extraction, with errors that name the file.

``ImageViews`` decodes each image once and returns it under every requested view, so the
ten augmented views of a few-shot image cost one decode. A seeded view applies its random
transform under its own RNG seed, so view ``i`` of an image is the same in every process.
"""
import torch
from PIL import Image
from torch.utils.data import Dataset


class ImageReadError(OSError):
    """An image file is missing, truncated, or not an image.

    A DataLoader worker's error comes back as ``ImageReadError("Caught ImageReadError in
    DataLoader worker ... Original Traceback ...")``; only our own line is kept, so the user
    reads which file failed, not a worker traceback.
    """

    PREFIX = "cannot read image "

    def __init__(self, message):
        ours = [line for line in message.splitlines() if self.PREFIX in line]
        super().__init__(self.PREFIX + ours[-1].split(self.PREFIX, 1)[1] if ours else message)


def read_image(path):
    """Dassl's ``read_image`` (PIL, converted to RGB), failing with the file's name."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"{ImageReadError.PREFIX}{path}: {e}") from e


class ImageViews(Dataset):
    """Item ``i``: ``(tensor [V, 3, H, W], i)``, the image under each of ``views``.

    ``views`` is a list of ``(transform, seed_of)`` where ``seed_of(i)`` gives the RNG seed of
    a random view of item ``i``, or ``seed_of`` is None for a deterministic transform.
    """

    def __init__(self, paths, views):
        self.paths = list(paths)
        self.views = views

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        image = read_image(self.paths[i])
        out = []
        for transform, seed_of in self.views:
            if seed_of is None:
                out.append(transform(image))
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed_of(i))
                    out.append(transform(image))
        return torch.stack(out), i
